"""Dense arrays from kept values and packed bits, fast: the inverse of ``numpy.compress``.

:func:`expand_packed` writes, for every entry, the next kept value where its
bit is set and zero where it is not, which is what loading a sparse file
does for each pruned layer. Per byte of bits, all eight entries are written
without branching: each takes the value at its rank among the byte's set bits
(a 256-entry table), ANDed with all ones or all zeros (another table). Every
entry is written once and never read, so the output can be a fresh
``torch.empty``; bands of bytes run in parallel threads (the kernel releases
the GIL).

Writing a fresh gigabyte costs more in page faults than in the kernel, so
each band first has the operating system map its pages in one call
(``madvise(MADV_POPULATE_WRITE)``, Linux 5.14+; elsewhere the stores fault
them in as usual).

The kernel is compiled by numba on first use (numba is imported then) and
cached on disk; :func:`warm_up` does it ahead.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from core.pruning.scatter import COUNT, RANK, SET, UNSIGNED, byte_bands, executor

#: Per item size: all ones where a bit is set, zero where not, as unsigned integers.
_KEEP = {size: (-SET).astype(kind) for size, kind in UNSIGNED.items()}

_MADV_POPULATE_WRITE = 23
_PAGE = 4096

_compiled: Callable[..., None] | None = None
_madvise: Callable[[int, int, int], int] | None = None
_madvise_tried = False


def _kernel() -> Callable[..., None]:
    """The compiled kernel (numba imported, the kernel compiled or loaded, on first use)."""
    global _compiled
    if _compiled is None:
        import numba

        @numba.njit(nogil=True, cache=True)
        def expand_bytes(
            out: Any, bits: Any, values: Any, first: int, rank: Any, keep: Any, count: Any
        ) -> None:  # pragma: no cover - compiled
            last = values.size - 1
            j = first
            for b in range(bits.size):
                byte = bits[b]
                base = b * 8
                for k in range(8):
                    out[base + k] = values[min(j + rank[byte, k], last)] & keep[byte, k]
                j += count[byte]

        _compiled = expand_bytes
    return _compiled


def expand_packed(out: np.ndarray, bits: np.ndarray, values: np.ndarray) -> None:
    """Fill the flat ``out`` with ``values`` where ``bits`` are set and zeros elsewhere.

    ``bits`` is ``numpy.packbits`` of a bool array of ``out.size`` entries,
    ``values`` holds one entry per set bit, of ``out``'s item size.
    Equivalent to ``out[:] = 0; np.place(out, np.unpackbits(bits, count=out.size), values)``.

    Raises:
        ValueError: ``bits`` or ``values`` do not match ``out`` (checked before
            any write: the kernel itself does not check bounds).
    """
    if bits.dtype != np.uint8 or bits.size != (out.size + 7) // 8:
        raise ValueError(f"{bits.size} bytes of bits do not fit {out.size} entries")
    if values.itemsize != out.itemsize:
        raise ValueError("values and output differ in item size")
    if int(np.bitwise_count(bits).sum(dtype=np.int64)) != values.size:
        raise ValueError(f"{values.size} values do not match the mask's set bits")
    if not values.size:
        out.fill(0)
        return
    kind = UNSIGNED[out.itemsize]
    target, source = out.view(kind), values.view(kind)
    full = out.size // 8
    done = _expand_full_bytes(target[: full * 8], bits[:full], source) if full else 0
    if out.size % 8:  # the last, partial byte
        tail = target[full * 8 :]
        tail.fill(0)
        np.place(tail, np.unpackbits(bits[full:], count=tail.size).view(bool), source[done:])


def _expand_full_bytes(target: np.ndarray, bits: np.ndarray, values: np.ndarray) -> int:
    """Expand whole bytes of bits, in parallel bands; return how many values were used."""
    kernel = _kernel()
    edges, firsts = byte_bands(bits)
    bands = len(edges) - 1
    keep = _KEEP[target.itemsize]

    def band(i: int) -> None:
        a, b = edges[i], edges[i + 1]
        chunk = target[a * 8 : b * 8]
        populate(chunk)
        kernel(chunk, bits[a:b], values, firsts[i], RANK, keep, COUNT)

    if bands == 1:
        band(0)
    else:
        for future in [executor().submit(band, i) for i in range(bands)]:
            future.result()
    return int(firsts[-1])


def populate(array: np.ndarray) -> None:
    """Map the whole pages of ``array``'s memory ahead of writing it (Linux; else nothing)."""
    madvise = _madvise_function()
    if madvise is None:
        return
    address = array.__array_interface__["data"][0]
    start = -(-address // _PAGE) * _PAGE
    stop = (address + array.nbytes) // _PAGE * _PAGE
    if stop > start:
        madvise(start, stop - start, _MADV_POPULATE_WRITE)  # failure only means no head start


def _madvise_function() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise`` on Linux, else None."""
    global _madvise, _madvise_tried
    if not _madvise_tried:
        _madvise_tried = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                function = libc.madvise
                function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                function.restype = ctypes.c_int
                _madvise = function
            except (OSError, AttributeError):
                _madvise = None
    return _madvise


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel now rather than at the first load."""
    expand_packed(
        np.empty(16, np.float32), np.array([0x80, 0x01], np.uint8), np.ones(2, np.float32)
    )
