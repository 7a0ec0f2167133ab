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

_DISK_MARGIN = 64 << 20


@dataclass(eq=False)
class _Piece:
    """The stashed values of one chunk: in memory, on disk, or both."""

    count: int
    array: np.ndarray | None
    offset: int = -1


@dataclass(eq=False)
class _Segment:
    """Values stashed by one operation for one parameter."""

    bits: np.ndarray  # packed positions, whole tensor
    pieces: list[_Piece] = field(default_factory=list)


@dataclass
class _Record:
    saved: np.ndarray  # packed union of the segments' positions
    shape: tuple[int, ...]
    itemsize: int
    segments: list[_Segment] = field(default_factory=list)


class _SpillFile:
    """An append-only file written by one background thread."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "values.bin"
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
                    os.pwrite(self._fd, memoryview(array).cast("B"), piece.offset)
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
        record = self._records.get(name)
        numel = flat.size
        segment = _Segment(bits=empty_bits(numel))
        new_total = 0
        for start, stop in chunk_ranges(numel):
            want = positions.chunk(start, stop)
            if record is not None:
                want = want & ~unpack_bits(record.saved, start, stop)
            pack_into(segment.bits, start, want)
            count = int(np.count_nonzero(want))
            new_total += count
            values = np.compress(want, flat[start:stop]) if count else None
            piece = _Piece(count, values)
            segment.pieces.append(piece)
            if values is not None and self._file is not None:
                self._file.append(piece)
            if on_chunk is not None:
                on_chunk()
        if new_total == 0:
            return None
        if record is None:
            record = _Record(np.zeros_like(segment.bits), tuple(shape), flat.itemsize)
            self._records[name] = record
        record.segments.append(segment)
        np.bitwise_or(record.saved, segment.bits, out=record.saved)
        return segment

    def flush(self) -> None:
        """Wait until spilled values are on disk (raises a write error, if any)."""
        if self._file is not None:
            self._file.flush()

    def discard(self, name: str, segment: _Segment) -> None:
        """Forget a segment added by :meth:`stash` (used to roll back a failed operation)."""
        record = self._records[name]
        record.segments.remove(segment)
        np.bitwise_and(record.saved, np.invert(segment.bits), out=record.saved)
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
        record = self._records.get(name)
        if record is None:
            if positions.kept:
                raise RuntimeError(f"no original values stashed for {name}")
            return
        numel = flat.size
        for index, (start, stop) in enumerate(chunk_ranges(numel)):
            want = positions.chunk(start, stop)
            if not want.any():
                continue
            target = flat[start:stop]
            for segment in record.segments:
                piece = segment.pieces[index]
                if not piece.count:
                    continue
                held = unpack_bits(segment.bits, start, stop)
                values = self._read(piece, flat.dtype)
                take = want & held
                if take.all() and piece.count == take.size:
                    target[:] = values
                else:
                    np.copyto(target, _expand(held, values, flat.dtype), where=take)
            if on_chunk is not None:
                on_chunk()

    def _read(self, piece: _Piece, dtype: np.dtype) -> np.ndarray:
        if self._file is not None:
            return self._file.read(piece, np.dtype(dtype))
        assert piece.array is not None
        return piece.array

    def forget(self, name: str) -> None:
        """Drop every stashed value of ``name`` (after making its pruning permanent)."""
        self._records.pop(name, None)

    def stored_bytes(self) -> int:
        """Bytes of stashed values (memory or disk)."""
        return sum(
            piece.count * record.itemsize
            for record in self._records.values()
            for segment in record.segments
            for piece in segment.pieces
        )

    def close(self) -> None:
        """Release the spill file and remove the temporary folder."""
        self._records.clear()
        if self._file is not None:
            self._finalizer()
            self._file = None


def _expand(held: np.ndarray, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    full = np.zeros(held.size, dtype=dtype)
    full[held] = values
    return full


def _cleanup(file: _SpillFile, folder: Path) -> None:
    try:
        file.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
