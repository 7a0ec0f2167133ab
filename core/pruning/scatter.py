"""Put stashed values back where a packed bitmap says: the inverse of ``numpy.compress``.

Undo writes the original values of pruned weights back into the layer. numpy
has no fast way to do it (``np.place`` and boolean assignment branch on every
entry: ~4 ns each on a random mask), so undo ran at ~5x redo, which only
multiplies by the mask. :func:`scatter_packed` reads the packed bits directly
and, per byte, writes all eight entries without branching: each takes either
its stashed value (at a rank found in a 256-entry table) or keeps what it had,
chosen by an integer blend. Independent reads pipeline, and bands of bytes
run in parallel threads (the kernel releases the GIL).

The kernel is compiled by numba on first use (numba itself is imported then) and
cached on disk; :func:`warm_up` does it ahead, as the app does in the background.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Per byte value: the rank of each of its 8 bits among the set ones, whether it is set, and how
#: many are set (numpy.packbits order: the first entry is the highest bit). Shared with the
#: sparse-format expand kernel (core.io.expand).
RANK = np.zeros((256, 8), dtype=np.int64)
SET = np.zeros((256, 8), dtype=np.int64)
COUNT = np.zeros(256, dtype=np.int64)
for _byte in range(256):
    _seen = 0
    for _k in range(8):
        _bit = (_byte >> (7 - _k)) & 1
        RANK[_byte, _k], SET[_byte, _k] = _seen, _bit
        _seen += _bit
    COUNT[_byte] = _seen

#: Bands of bytes per call below which one thread does all.
PARALLEL_BYTES = 1 << 16
UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_pool: ThreadPoolExecutor | None = None
_compiled: Callable[..., None] | None = None


def _kernel() -> Callable[..., None]:
    """The compiled kernel: numba is imported (and the kernel compiled or loaded) on first use,
    so importing the engine does not pay for it."""
    global _compiled
    if _compiled is None:
        import numba

        @numba.njit(nogil=True, cache=True)
        def scatter_bytes(
            target: Any, bits: Any, values: Any, rank: Any, is_set: Any, count: Any
        ) -> None:  # pragma: no cover - compiled
            last = values.size - 1
            zero = values[0] ^ values[0]
            j = 0
            for b in range(bits.size):
                byte = bits[b]
                base = b * 8
                for k in range(8):
                    mask = zero - (zero + is_set[byte, k])  # all ones where the bit is set
                    value = values[min(j + rank[byte, k], last)]
                    target[base + k] = (value & mask) | (target[base + k] & ~mask)
                j += count[byte]

        _compiled = scatter_bytes
    return _compiled


def executor() -> ThreadPoolExecutor:
    """The thread pool the packed-bits kernels run their bands in (one thread per core)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="bits")
    return _pool


def byte_bands(bits: np.ndarray) -> tuple[list[int], list[int]]:
    """Split ``bits`` into bands of bytes for parallel kernels: one band per core once
    there is enough work. Returns the band edges (in bytes) and, per edge, how many
    bits are set before it (where the band's values start)."""
    bands = max(1, min(os.cpu_count() or 1, bits.size // PARALLEL_BYTES))
    edges = [bits.size * i // bands for i in range(bands + 1)]
    counts = [
        int(np.bitwise_count(bits[a:b]).sum(dtype=np.int64)) for a, b in itertools.pairwise(edges)
    ]
    return edges, np.concatenate(([0], np.cumsum(counts))).astype(int).tolist()


def scatter_packed(target: np.ndarray, bits: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` in order into the entries of ``target`` whose bit is set in ``bits``.

    ``bits`` is ``numpy.packbits`` of a bool array of ``target.size`` entries and
    ``values`` holds exactly as many entries as bits are set (``target``'s dtype).
    Equivalent to ``np.place(target, np.unpackbits(bits, count=target.size), values)``.
    """
    if not values.size:
        return
    unsigned = UNSIGNED[target.itemsize]
    out, vals = target.view(unsigned), values.view(unsigned)
    full = target.size // 8
    done = 0
    if full:
        kernel = _kernel()
        edges, offsets = byte_bands(bits[:full])
        calls = [
            (out[a * 8 : b * 8], bits[a:b], vals[offsets[i] : offsets[i + 1]])
            for i, (a, b) in enumerate(itertools.pairwise(edges))
            if offsets[i + 1] > offsets[i]
        ]
        if len(calls) > 1:
            futures = [executor().submit(kernel, *c, RANK, SET, COUNT) for c in calls]
            for future in futures:
                future.result()
        elif calls:
            kernel(*calls[0], RANK, SET, COUNT)
        done = offsets[-1]
    if target.size % 8:  # the last, partial byte
        tail = np.unpackbits(bits[full:], count=target.size - full * 8).view(bool)
        np.place(out[full * 8 :], tail, vals[done:])


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel now rather than at the first undo."""
    scatter_packed(
        np.zeros(16, np.float32), np.array([0x80, 0x01], np.uint8), np.ones(2, np.float32)
    )
