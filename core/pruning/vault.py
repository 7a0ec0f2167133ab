"""Where the original values of pruned weights are kept, so pruning can be undone.

The model's weights always hold the *effective* values (zeros where pruned),
so forward needs no hooks. Before a weight is zeroed for the first time its
value is stashed here, chunk by chunk, in flat order; restoring reads it back.
Only values that were actually pruned are stored, never a full copy.

Values live in memory, or for big models in a spill file inside a temporary
folder (written by a background thread so compute and disk overlap; removed
when the vault closes). The free space is checked before anything is written.
"""

from __future__ import annotations

import itertools
import math
import os
import queue
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.common.chunks import chunk_ranges
from core.common.errors import DiskSpaceError
from core.pruning.masks import PackedMask, empty_bits, pack_into, unpack_bits
from core.pruning.scatter import scatter_packed

_DISK_MARGIN = 64 << 20


#: A chunk's positions are stored as int32 offsets when that is smaller than its bitmap.
_INDEX_BYTES = 4
#: A parameter's segments are merged into one when there are more than this many.
MAX_SEGMENTS = 32
#: Spill-file bytes no longer needed that are tolerated before the file is rewritten.
_RECLAIM_SLACK = 64 << 20


@dataclass(eq=False)
class _Piece:
    """The stashed values of one chunk, and which positions of the chunk they belong to.

    Positions are a packed bitmap of the chunk (``bits``) or, when few values
    are stashed, their offsets in the chunk (``index``): a paint stroke of 50
    weights costs a few hundred bytes, not a bitmap of the whole layer.
    Values are in memory, on disk (``offset`` into the spill file), or both.
    """

    count: int
    array: np.ndarray | None
    bits: np.ndarray | None = None
    index: np.ndarray | None = None
    offset: int = -1

    @property
    def position_bytes(self) -> int:
        """Bytes used by the positions."""
        return sum(a.nbytes for a in (self.bits, self.index) if a is not None)

    def held(self, size: int) -> np.ndarray:
        """The chunk's positions as a bool array of ``size`` entries."""
        if self.bits is not None:
            return unpack_bits(self.bits, 0, size)
        held = np.zeros(size, dtype=bool)
        if self.index is not None:
            held[self.index] = True
        return held


def _make_piece(want: np.ndarray, values: np.ndarray) -> _Piece:
    """A piece holding ``values`` at the True entries of the chunk selector ``want``."""
    count = values.size
    if count * _INDEX_BYTES < (want.size + 7) // 8:
        return _Piece(count, values, index=np.flatnonzero(want).astype(np.int32))
    return _Piece(count, values, bits=np.packbits(want))


@dataclass(eq=False)
class _Segment:
    """Values stashed by one operation for one parameter: one piece per chunk."""

    pieces: list[_Piece] = field(default_factory=list)


@dataclass
class _Record:
    saved: np.ndarray  # packed union of the segments' positions
    shape: tuple[int, ...]
    itemsize: int
    segments: list[_Segment] = field(default_factory=list)


class _SpillFile:
    """An append-only file written by one background thread."""

    def __init__(self, folder: Path, name: str = "values.bin") -> None:
        self.path = folder / name
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._size = 0
        self._queue: queue.Queue[tuple[_Piece, np.ndarray] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="prunescope-spill", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            piece, array = item
            try:
                if self._error is None:
                    os.pwrite(self._fd, memoryview(array.data).cast("B"), piece.offset)
                    piece.array = None  # on disk now: release the memory
            except BaseException as exc:  # reported by flush(); the piece keeps its array
                self._error = exc
            finally:
                self._queue.task_done()

    def append(self, piece: _Piece) -> None:
        """Queue ``piece.array`` for writing; it stays readable throughout."""
        assert piece.array is not None
        piece.offset = self._size
        self._size += piece.array.nbytes
        self._queue.put((piece, piece.array))

    @property
    def size(self) -> int:
        """Bytes appended so far (live or not)."""
        return self._size

    def flush(self) -> None:
        """Wait for queued writes; raise the first write error if any."""
        self._queue.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise OSError(f"could not write original values to {self.path}: {error}") from error

    def read(self, piece: _Piece, dtype: np.dtype) -> np.ndarray:
        array = piece.array
        if array is not None:
            return array
        raw = os.pread(self._fd, piece.count * dtype.itemsize, piece.offset)
        return np.frombuffer(raw, dtype=dtype)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        os.close(self._fd)


class ValueVault:
    """Stashes and restores original values of pruned weights (see module docstring).

    Args:
        spill: keep values in a temporary folder on disk instead of memory.
        spill_dir: where to create that folder (default: the system temp dir).
    """

    def __init__(
        self, spill: bool = False, spill_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self._records: dict[str, _Record] = {}
        self._closed = False
        self._generation = itertools.count(1)
        self._folder: Path | None = None
        self._file: _SpillFile | None = None
        if spill:
            self._folder = Path(tempfile.mkdtemp(prefix="prunescope-", dir=spill_dir))
            self._file = _SpillFile(self._folder)
            self._finalizer = weakref.finalize(self, _cleanup, self._file, self._folder)

    @property
    def spills(self) -> bool:
        """Whether values go to disk."""
        return self._file is not None

    @property
    def folder(self) -> Path | None:
        """The temporary spill folder, if any."""
        return self._folder

    def check_space(self, nbytes: int) -> None:
        """Raise :class:`DiskSpaceError` if ``nbytes`` more would not fit on disk."""
        if self._folder is None or nbytes <= 0:
            return
        free = shutil.disk_usage(self._folder).free
        if free < nbytes + _DISK_MARGIN:
            raise DiskSpaceError(
                f"not enough disk space in {self._folder} to keep original values: "
                f"{nbytes / 2**20:.0f} MiB needed, {free / 2**20:.0f} MiB free"
            )

    def saved(self, name: str) -> PackedMask | None:
        """Positions of ``name`` whose original values are stashed (None: none)."""
        self._check_open()
        record = self._records.get(name)
        if record is None:
            return None
        return PackedMask(record.saved.copy(), record.shape)

    def stash(
        self,
        name: str,
        flat: np.ndarray,
        shape: tuple[int, ...],
        positions: PackedMask,
        on_chunk: Callable[[], None] | None = None,
    ) -> _Segment | None:
        """Stash ``flat[positions]`` that are not stashed yet; return the new segment.

        The segment is registered at once; :meth:`discard` removes it again.
        """
        self._check_open()
        record = self._records.get(name)
        segment = _Segment()
        new_bits = empty_bits(flat.size)
        for start, stop in chunk_ranges(flat.size):
            want = positions.chunk(start, stop)
            if record is not None:
                want = want & ~unpack_bits(record.saved, start, stop)
            pack_into(new_bits, start, want)
            piece = self._piece(want, np.compress(want, flat[start:stop]))
            segment.pieces.append(piece)
            if on_chunk is not None:
                on_chunk()
        if not any(piece.count for piece in segment.pieces):
            return None
        if record is None:
            record = _Record(empty_bits(flat.size), tuple(shape), flat.itemsize)
            self._records[name] = record
        record.segments.append(segment)
        np.bitwise_or(record.saved, new_bits, out=record.saved)
        if len(record.segments) > MAX_SEGMENTS:
            self._compact(name, record, flat.dtype, flat.size)
        return segment

    def _piece(self, want: np.ndarray, values: np.ndarray) -> _Piece:
        """A piece holding ``values`` (those at ``want``'s True entries, in order),
        queued for the spill file if there is one."""
        if not values.size:
            return _Piece(0, None)
        piece = _make_piece(want, values)
        if self._file is not None:
            self._file.append(piece)
        return piece

    def flush(self) -> None:
        """Wait until spilled values are on disk (raises a write error, if any)."""
        if self._file is not None:
            self._file.flush()

    def discard(self, name: str, segment: _Segment) -> None:
        """Forget a segment added by :meth:`stash` (used to roll back a failed operation)."""
        record = self._records[name]
        if segment not in record.segments:
            return  # merged by a compaction: its values stay, harmlessly
        record.segments.remove(segment)
        numel = math.prod(record.shape)
        for (start, stop), piece in zip(chunk_ranges(numel), segment.pieces, strict=True):
            if piece.count:
                held = piece.held(stop - start)
                saved = unpack_bits(record.saved, start, stop) & ~held
                pack_into(record.saved, start, saved)
        if not record.segments:
            del self._records[name]

    def restore(
        self,
        name: str,
        flat: np.ndarray,
        positions: PackedMask,
        on_chunk: Callable[[], None] | None = None,
    ) -> None:
        """Write the original values at ``positions`` (all must be stashed) into ``flat``."""
        self._check_open()
        record = self._records.get(name)
        if record is None:
            if positions.kept:
                raise RuntimeError(f"no original values stashed for {name}")
            return
        for index, (start, stop) in enumerate(chunk_ranges(flat.size)):
            want = positions.bits[start // 8 : (stop + 7) // 8]  # packed: no unpacking
            if not want.any():
                continue
            target = flat[start:stop]
            for segment in record.segments:
                piece = segment.pieces[index]
                if piece.count:
                    self._restore_piece(piece, want, target, flat.dtype)
            if on_chunk is not None:
                on_chunk()

    def _restore_piece(
        self, piece: _Piece, want: np.ndarray, target: np.ndarray, dtype: np.dtype
    ) -> None:
        """Write the piece's values at the positions set in the packed chunk bits ``want``."""
        values = self._read(piece, dtype)
        if piece.index is not None:
            index = piece.index
            take = ((want[index >> 3] >> (7 - (index & 7)).astype(np.uint8)) & 1).astype(bool)
            target[index[take]] = values[take]
            return
        assert piece.bits is not None
        take_bits = np.bitwise_and(want, piece.bits)
        if np.array_equal(take_bits, piece.bits):
            scatter_packed(target, piece.bits, values)
            return
        take = unpack_bits(take_bits, 0, target.size)
        held = piece.held(target.size)
        scatter_packed(target, take_bits, values[take[held]])

    def _read(self, piece: _Piece, dtype: np.dtype) -> np.ndarray:
        """The piece's values seen as ``dtype`` (same item size: bits are moved as they are)."""
        if self._file is not None:
            return self._file.read(piece, np.dtype(dtype)).view(dtype)
        assert piece.array is not None
        return piece.array.view(dtype)

    def forget_positions(self, name: str, positions: PackedMask) -> None:
        """Drop the stashed values at ``positions`` (their live values are the truth now).

        Used when kept weights change (fine-tuning, a change outside the session):
        a value stashed for a position that is kept today would be stale.
        """
        record = self._records.get(name)
        if record is None:
            return
        if not np.bitwise_and(record.saved, positions.bits).any():
            return
        dtype = _dtype_of_itemsize(record.itemsize)
        numel = math.prod(record.shape)
        for segment in record.segments:
            for i, (start, stop) in enumerate(chunk_ranges(numel)):
                piece = segment.pieces[i]
                if not piece.count:
                    continue
                held = piece.held(stop - start)
                keep = held & ~positions.chunk(start, stop)
                if np.array_equal(keep, held):
                    continue
                values = np.compress(keep[held], self._read(piece, dtype))
                segment.pieces[i] = self._piece(keep, values)
        record.segments = [s for s in record.segments if any(p.count for p in s.pieces)]
        np.bitwise_and(record.saved, np.invert(positions.bits), out=record.saved)
        if not record.segments:
            del self._records[name]
        self._reclaim_spill()

    def _compact(self, name: str, record: _Record, dtype: np.dtype, numel: int) -> None:
        """Merge a parameter's segments into one (bounds the bookkeeping per parameter)."""
        merged = _Segment()
        for index, (start, stop) in enumerate(chunk_ranges(numel)):
            full = np.zeros(stop - start, dtype=dtype)
            for segment in record.segments:
                piece = segment.pieces[index]
                if piece.count:
                    everything = np.full((stop - start + 7) // 8, 0xFF, dtype=np.uint8)
                    self._restore_piece(piece, everything, full, dtype)
            saved = unpack_bits(record.saved, start, stop)
            merged.pieces.append(self._piece(saved, np.compress(saved, full)))
        record.segments = [merged]
        self._reclaim_spill()

    def _reclaim_spill(self) -> None:
        """Rewrite the spill file once most of it holds values no longer needed.

        Merging and re-basing append the values they keep; without this the file
        of a long fine-tuning session on a big model would only grow.
        """
        old = self._file
        live = self.stored_bytes()
        if old is None or self._folder is None or old.size <= 2 * live + _RECLAIM_SLACK:
            return
        try:
            self.check_space(live)
        except DiskSpaceError:
            return  # keep appending; rewriting needs room for a second copy
        old.flush()
        new = _SpillFile(self._folder, f"values-{next(self._generation)}.bin")
        for record in self._records.values():
            dtype = _dtype_of_itemsize(record.itemsize)
            for segment in record.segments:
                for piece in segment.pieces:
                    if piece.count:
                        piece.array = old.read(piece, dtype)
                        new.append(piece)
        new.flush()
        self._finalizer.detach()
        old.close()
        old.path.unlink(missing_ok=True)
        self._file = new
        self._finalizer = weakref.finalize(self, _cleanup, new, self._folder)

    def forget(self, name: str) -> None:
        """Drop every stashed value of ``name`` (after making its pruning permanent)."""
        self._records.pop(name, None)

    def stored_bytes(self) -> int:
        """Bytes of stashed values (memory or disk)."""
        return sum(
            piece.count * record.itemsize + piece.position_bytes
            for record in self._records.values()
            for segment in record.segments
            for piece in segment.pieces
        )

    def close(self) -> None:
        """Release the spill file and remove the temporary folder; the vault is unusable after."""
        self._records.clear()
        self._closed = True
        if self._file is not None:
            self._finalizer()
            self._file = None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this vault of original values was closed")


def _dtype_of_itemsize(itemsize: int) -> np.dtype:
    """A numpy dtype of ``itemsize`` bytes: values are moved, never computed with."""
    return np.dtype({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize])


def _cleanup(file: _SpillFile, folder: Path) -> None:
    try:
        file.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
