"""Safetensors files written and read tensor by tensor, with CRC-32 checksums.

The files are plain safetensors: an 8-byte little-endian header length, a JSON
header giving each tensor's dtype, shape and byte range, then the data, so
any safetensors reader opens them. Tensors are laid out by decreasing item
size, so each starts aligned to its own item size.

PruneScope's own files carry a JSON *document* in the header's
``__metadata__`` under ``"prunescope"``: what the file holds, plus the CRC-32
of every tensor under ``"checksums"``. The CRC-32 of the header's content (the
tensor table and the document) is stored beside it, under
``"prunescope_crc32"``. A CRC-32 catches every change of up to four bytes in a
row, and any other change but once in four billion.

Writing streams each tensor from a producer of byte chunks, with a cancel
check and a progress report per chunk; the checksums are known at the end, so
the header is written first with zeros in their place and rewritten in place
(same length) once the data is out. Reading validates the whole layout before
any data and every checksum as it reads: a truncated, padded or corrupted file
gives a :class:`~core.common.errors.PruningError` naming the file and the
problem, never a wrong tensor.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

import numpy as np
import torch

from core.common.errors import PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress

#: safetensors' names of the dtypes it stores.
DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.uint16: "U16",
    torch.uint32: "U32",
    torch.uint64: "U64",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.float8_e5m2: "F8_E5M2",
    torch.complex64: "C64",
}
_DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
#: Where PruneScope's document and the header checksum live in ``__metadata__``.
DOCUMENT_KEY = "prunescope"
HEADER_CRC_KEY = "prunescope_crc32"
#: The largest header read (safetensors' own limit).
MAX_HEADER = 100 << 20
#: Bytes per read or write call, and per progress report.
IO_CHUNK = 64 << 20
_NO_CRC = "00000000"


@dataclass(frozen=True)
class Stored:
    """A tensor to write: name, dtype, shape and a producer of its bytes in order.

    ``chunks()`` yields contiguous numpy arrays whose bytes, concatenated, are
    the tensor's data (``numel * itemsize`` bytes in all).
    """

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    chunks: Callable[[], Iterable[np.ndarray]]

    @property
    def nbytes(self) -> int:
        """Bytes of data."""
        return math.prod(self.shape) * self.dtype.itemsize


def stored_tensor(name: str, tensor: torch.Tensor) -> Stored:
    """A :class:`Stored` writing ``tensor`` as it is (moved to the CPU chunk by chunk)."""
    return Stored(name, tensor.dtype, tuple(tensor.shape), lambda: tensor_bytes(tensor))


def tensor_bytes(tensor: torch.Tensor) -> Iterator[np.ndarray]:
    """The raw bytes of ``tensor`` in :data:`IO_CHUNK` pieces (CPU, C order)."""
    flat = tensor.detach().reshape(-1)
    step = max(1, IO_CHUNK // max(1, flat.element_size()))
    for start in range(0, flat.numel(), step):
        piece = flat[start : start + step].to("cpu").contiguous()
        yield piece.view(torch.uint8).numpy()


def check_dtype(name: str, dtype: torch.dtype) -> str:
    """safetensors' name of ``dtype``; PruningError naming the tensor if it has none."""
    try:
        return DTYPE_NAMES[dtype]
    except KeyError:
        raise PruningError(f"{name}: tensors of type {dtype} cannot be saved") from None


# --------------------------------------------------------------------- writing


def write_job(
    handle: BinaryIO,
    tensors: Sequence[Stored],
    document: dict[str, Any] | None = None,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[None]:
    """A job writing ``tensors`` as a safetensors file into the seekable ``handle``.

    With a ``document`` (JSON data) the file is PruneScope's: the document and
    the checksums go in the header. Without, the header holds only
    ``{"format": "pt"}`` (a plain safetensors state_dict).
    """
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise PruningError("two tensors to save have the same name")
    for t in tensors:
        check_dtype(t.name, t.dtype)
    ordered = sorted(tensors, key=lambda t: -t.dtype.itemsize)  # stable: aligned layout
    table = _table(ordered)
    checksums = dict.fromkeys(names, _NO_CRC)
    try:
        header = _header(table, document, checksums)
    except (TypeError, ValueError) as exc:
        raise PruningError(f"the file's description cannot be saved as JSON ({exc})") from None
    if len(header) > MAX_HEADER:
        raise PruningError(
            f"the file's description would take {len(header) >> 20} MiB, more than safetensors "
            f"allows ({MAX_HEADER >> 20} MiB)"
        )
    handle.write(len(header).to_bytes(8, "little"))
    handle.write(header)
    total = sum(t.nbytes for t in ordered) or 1
    done = 0
    for t in ordered:
        crc = 0
        written = 0
        for chunk in t.chunks():
            token.check()
            data = np.ascontiguousarray(chunk).data.cast("B")
            handle.write(data)
            crc = zlib.crc32(data, crc)
            written += data.nbytes
            done += data.nbytes
            yield Progress(done / total, f"wrote {t.name}")
        if written != t.nbytes:
            raise PruningError(f"{t.name}: {written} bytes were produced, {t.nbytes} expected")
        checksums[t.name] = f"{crc:08x}"
    if document is not None:
        final = _header(table, document, checksums)
        if len(final) != len(header):  # pragma: no cover - fixed-width checksums
            raise PruningError("the file header changed length")
        handle.seek(8)
        handle.write(final)
        handle.seek(0, os.SEEK_END)


def _table(ordered: Sequence[Stored]) -> dict[str, dict[str, Any]]:
    """safetensors' tensor table: dtype, shape and byte range of each tensor."""
    table: dict[str, dict[str, Any]] = {}
    offset = 0
    for t in ordered:
        table[t.name] = {
            "dtype": DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    return table


def _header(
    table: dict[str, dict[str, Any]], document: dict[str, Any] | None, checksums: dict[str, str]
) -> bytes:
    """The header's JSON bytes, padded with spaces so the data starts 8-byte aligned."""
    if document is None:
        metadata = {"format": "pt"}
    else:
        text = _compact({**document, "checksums": checksums})
        metadata = {DOCUMENT_KEY: text, HEADER_CRC_KEY: f"{_header_crc(table, text):08x}"}
    raw = _compact({"__metadata__": metadata, **table}).encode()
    return raw + b" " * (-(len(raw) + 8) % 8)


def _compact(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _header_crc(table: dict[str, Any], document_text: str) -> int:
    """CRC-32 of the header's content: the tensor table and the document."""
    return zlib.crc32(_compact([table, document_text]).encode())


# --------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Entry:
    """One tensor in a file: dtype, shape and byte range within the data."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class TensorFile:
    """A validated safetensors file: its tensors (in data order) and PruneScope's document."""

    path: Path
    entries: tuple[Entry, ...]
    document: dict[str, Any] | None
    data_start: int

    def fail(self, problem: str) -> PruningError:
        """A PruningError naming this file."""
        return PruningError(f"{self.path}: {problem}")


def open_tensor_file(path: str | os.PathLike[str], what: str = "safetensors file") -> TensorFile:
    """Read and validate the header of ``path`` (``what`` names the expected kind in errors).

    Raises:
        PruningError: missing or unreadable, not a safetensors file, a header
            that does not describe the data exactly (truncated or padded file),
            or, in a PruneScope file, a header checksum that does not match.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = handle.read(8)
            length = int.from_bytes(start, "little") if len(start) == 8 else -1
            if length < 2 or length > min(MAX_HEADER, size - 8):
                raise _bad(path, what, f"it is truncated or not a {what} (no valid header)")
            raw = handle.read(length)
    except FileNotFoundError:
        raise PruningError(f"{path}: no such file") from None
    except OSError as exc:
        raise PruningError(f"{path}: could not be read ({exc.strerror or exc})") from None
    header = _parse_header(path, what, raw)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise _bad(path, what, "its header's metadata is not a map")
    entries = _entries(path, what, header, size - 8 - length)
    document = _document(path, what, metadata, header)
    return TensorFile(path, entries, document, 8 + length)


def peek_document(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """PruneScope's document as a file's header states it, not verified.

    None when the file has none or its header cannot be read. For telling
    formats apart; :func:`open_tensor_file` verifies before anything is used.
    """
    try:
        with open(path, "rb") as handle:
            start = handle.read(8)
            length = int.from_bytes(start, "little") if len(start) == 8 else -1
            if not 2 <= length <= MAX_HEADER:
                return None
            header = json.loads(handle.read(length).decode())
        document = json.loads(header["__metadata__"][DOCUMENT_KEY])
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # UnicodeDecodeError too
        return None
    return document if isinstance(document, dict) else None


def _bad(path: Path, what: str, problem: str) -> PruningError:
    return PruningError(f"{path}: not a valid {what}: {problem}")


def _parse_header(path: Path, what: str, raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        raise _bad(path, what, "its header is damaged (not JSON)") from None
    if not isinstance(header, dict):
        raise _bad(path, what, "its header is damaged (not a JSON object)")
    return header


def _entries(path: Path, what: str, header: dict[str, Any], data_size: int) -> tuple[Entry, ...]:
    """The tensor table as entries in data order, checked to cover the data exactly."""
    entries = sorted(
        (_entry(path, what, name, spec) for name, spec in header.items()),
        key=lambda e: (e.begin, e.end),
    )
    offset = 0
    for entry in entries:
        if entry.begin != offset:
            raise _bad(
                path, what, f"tensor {entry.name!r} does not start where the one before ends"
            )
        offset = entry.end
    if offset > data_size:
        raise _bad(path, what, f"it is truncated ({data_size} of {offset} data bytes)")
    if offset < data_size:
        raise _bad(path, what, f"{data_size - offset} unexpected bytes follow the data")
    return tuple(entries)


def _entry(path: Path, what: str, name: str, spec: Any) -> Entry:
    """One table entry, checked: known dtype, a shape, a byte range of the right size."""
    if not isinstance(spec, dict):
        raise _bad(path, what, f"tensor {name!r} has no description")
    dtype_name = spec.get("dtype")
    dtype = _DTYPES.get(dtype_name) if isinstance(dtype_name, str) else None
    shape = spec.get("shape")
    offsets = spec.get("data_offsets")
    if (
        dtype is None
        or not _ints(shape)
        or not _ints(offsets)
        or len(offsets) != 2
        or offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize
    ):
        raise _bad(path, what, f"tensor {name!r} is described wrongly")
    return Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _ints(value: Any) -> TypeGuard[list[int]]:
    """A list of non-negative ints (bools excluded)."""
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


def _document(
    path: Path, what: str, metadata: dict[str, Any], table: dict[str, Any]
) -> dict[str, Any] | None:
    """PruneScope's document, its header checksum verified (None in a foreign file)."""
    text = metadata.get(DOCUMENT_KEY)
    if text is None:
        return None
    crc = metadata.get(HEADER_CRC_KEY)
    if not isinstance(text, str) or crc != f"{_header_crc(table, text):08x}":
        raise PruningError(f"{path}: the file is damaged (its header checksum does not match)")
    try:
        document = json.loads(text)
    except ValueError:  # pragma: no cover - the checksum matched what was written
        raise _bad(path, what, "its description is not JSON") from None
    checksums = document.get("checksums") if isinstance(document, dict) else None
    if not isinstance(checksums, dict) or set(checksums) != set(table):
        raise _bad(path, what, "its checksums do not list its tensors")
    return dict(document)


def read_job(
    file: TensorFile,
    names: Iterable[str] | None = None,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[dict[str, torch.Tensor]]:
    """A job reading tensors (default: all) into new CPU tensors, checking their checksums.

    Raises:
        PruningError: a checksum does not match, or the file changed underneath.
    """
    wanted = None if names is None else set(names)
    entries = [e for e in file.entries if wanted is None or e.name in wanted]
    checksums = (file.document or {}).get("checksums", {})
    total = sum(e.end - e.begin for e in entries) or 1
    done = 0
    tensors: dict[str, torch.Tensor] = {}
    try:
        with open(file.path, "rb", buffering=0) as handle:
            for entry in entries:
                token.check()
                tensor = torch.empty(entry.shape, dtype=entry.dtype)
                expected = checksums.get(entry.name)
                crc = _read_into(
                    file, handle, entry, tensor.reshape(-1).view(torch.uint8), expected
                )
                if crc is not None and f"{crc:08x}" != expected:
                    raise file.fail(
                        f"the file is damaged (tensor {entry.name!r} fails its checksum)"
                    )
                tensors[entry.name] = tensor
                done += entry.end - entry.begin
                yield Progress(done / total, f"read {entry.name}")
    except OSError as exc:
        raise file.fail(f"could not be read ({exc.strerror or exc})") from None
    return tensors


def _read_into(
    file: TensorFile, handle: Any, entry: Entry, out: torch.Tensor, checked: str | None
) -> int | None:
    """Read ``entry``'s bytes into the uint8 tensor ``out``; their CRC-32 if ``checked``."""
    buffer = out.numpy().data
    handle.seek(file.data_start + entry.begin)
    crc = 0 if checked else None
    for start in range(0, len(buffer), IO_CHUNK):
        piece = buffer[start : start + IO_CHUNK]
        got = 0
        while got < len(piece):
            count = handle.readinto(piece[got:])
            if not count:
                raise file.fail(f"it is truncated (tensor {entry.name!r} is cut short)")
            got += count
        if crc is not None:
            crc = zlib.crc32(piece, crc)
    return crc
