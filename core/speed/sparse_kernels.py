"""Sparse times dense products on the CPU: CSR weights, numba kernels, balanced bands of rows.

The weight of a pruned layer is held in compressed sparse rows: the kept values
(float32), their column indices (16-bit when the layer has fewer than 32768
inputs, else 32-bit) and, per output row, where its values start. Two kernels
multiply it with activations:

* :func:`rows_times_vectors` for a few input vectors (a Linear at batch 1..7):
  sparse dot products, four samples per pass over a row's weights, and for a
  lone sample four partial sums per row. Independent accumulators hide the
  latency of the floating-point adds (a single one makes every add wait for
  the previous: about 3 cycles per kept weight instead of 1-2); the indices
  are read as unsigned, so numba emits no negative-index wrap-around. No
  reassociating fast-math: it would vectorise the loop into gathers, which are
  slower than scalar loads on current x86 cores.
* :func:`rows_times_columns` for many (a Linear at batch >= 8, a 1x1
  convolution): activations laid out as ``(inputs, columns)``, each kept
  weight scales one contiguous input row into the output row (vectorised over
  the columns), four weights at a time so the output row is loaded and stored
  once per four.

Both release the GIL. Rows are split into bands holding about the same number
of kept values; bands run in a thread pool (the calling thread takes the first),
one band per thread of ``torch.get_num_threads()``, so a sparse layer uses the
same thread count as torch's dense ones. Small products run in one band.

numba is imported and the kernels compiled on first use (a second or two per
index width), not on import; :func:`warm_up` does it ahead. No disk cache.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Kept values times columns per band below which one band (no thread hand-off) does all.
WORK_PER_BAND = 1 << 15
#: Columns from which a Linear uses the column kernel instead of one dot product per sample.
COLUMN_KERNEL_FROM = 8
#: Inputs below which column indices fit in 16 bits (signed, as the brief's format says).
INT16_LIMIT = 1 << 15

_pool: ThreadPoolExecutor | None = None
_kernels: dict[str, Callable[..., None]] = {}


@dataclass(frozen=True, eq=False)
class Csr:
    """A 2-D weight in compressed sparse rows (float32 values, int16/int32 indices)."""

    values: np.ndarray  # (nnz,) float32
    indices: np.ndarray  # (nnz,) int16 when columns < 32768, else int32
    indptr: np.ndarray  # (rows + 1,) int64
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        """Number of kept (stored) values."""
        return int(self.values.size)

    @classmethod
    def from_dense(cls, weight: np.ndarray) -> Csr:
        """The non-zero entries of a 2-D float array, row by row (zeros are dropped)."""
        if weight.ndim != 2:
            raise ValueError(f"a CSR weight is 2-D, got shape {weight.shape}")
        rows, cols = weight.shape
        dense = np.ascontiguousarray(weight, dtype=np.float32)
        kept = dense != 0
        indptr = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(np.count_nonzero(kept, axis=1), out=indptr[1:])
        col = np.nonzero(kept.reshape(-1))[0] % cols if cols else np.zeros(0, np.int64)
        index_dtype = np.int16 if cols < INT16_LIMIT else np.int32
        return cls(dense[kept], col.astype(index_dtype), indptr, (rows, cols))

    def to_dense(self) -> np.ndarray:
        """The weight as a dense float32 array (zeros where nothing is stored)."""
        out = np.zeros(self.shape, dtype=np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[rows, self.indices.astype(np.int64)] = self.values
        return out

    def unsigned_indices(self) -> np.ndarray:
        """The indices viewed as unsigned (same bits, all < 2**15 or 2**31): what the kernels
        read, so that no negative-index check is compiled in."""
        return self.indices.view(np.uint16 if self.indices.dtype == np.int16 else np.uint32)

    def bands(self, count: int) -> list[tuple[int, int]]:
        """``count`` row ranges holding about the same number of kept values (fewer when
        rows run out); empty ranges are dropped."""
        rows = self.shape[0]
        count = max(1, min(count, rows))
        targets = self.indptr[-1] * np.arange(1, count) / count
        cuts = np.searchsorted(self.indptr, targets, side="left").clip(0, rows)
        edges = [0, *sorted(set(int(c) for c in cuts) - {0, rows}), rows]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def executor() -> ThreadPoolExecutor:
    """The thread pool sparse bands run in (one thread per core, its own, so timing is not
    disturbed by other work on the engine's pools)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="sparse")
    return _pool


def _compile() -> dict[str, Callable[..., None]]:
    """The compiled kernels (numba imported on first use)."""
    if _kernels:
        return _kernels
    import numba

    scalar_flags = {"contract", "nsz", "arcp"}  # fused multiply-adds, no reassociation
    column_flags = {"contract", "nsz", "arcp", "reassoc"}

    @numba.njit(nogil=True, fastmath=scalar_flags, boundscheck=False)
    def vectors(
        values: Any, cols: Any, ptr: Any, r0: int, r1: int, x: Any, bias: Any, out: Any
    ) -> None:  # pragma: no cover - compiled
        # x: (samples, inputs), out: (samples, outputs); rows r0..r1 of every sample.
        zero = np.float32(0.0)
        samples = x.shape[0]
        grouped = samples // 4 * 4
        for s in range(0, grouped, 4):  # four samples share each weight read
            x0 = x[s]
            x1 = x[s + 1]
            x2 = x[s + 2]
            x3 = x[s + 3]
            for r in range(r0, r1):
                a0 = zero
                a1 = zero
                a2 = zero
                a3 = zero
                for j in range(ptr[r], ptr[r + 1]):
                    v = values[j]
                    c = cols[j]
                    a0 += v * x0[c]
                    a1 += v * x1[c]
                    a2 += v * x2[c]
                    a3 += v * x3[c]
                b = bias[r]
                out[s, r] = a0 + b
                out[s + 1, r] = a1 + b
                out[s + 2, r] = a2 + b
                out[s + 3, r] = a3 + b
        for s in range(grouped, samples):  # one sample: four partial sums per row
            xs = x[s]
            for r in range(r0, r1):
                a0 = zero
                a1 = zero
                a2 = zero
                a3 = zero
                start = ptr[r]
                stop = ptr[r + 1]
                quad = start + (stop - start) // 4 * 4
                for j in range(start, quad, 4):
                    a0 += values[j] * xs[cols[j]]
                    a1 += values[j + 1] * xs[cols[j + 1]]
                    a2 += values[j + 2] * xs[cols[j + 2]]
                    a3 += values[j + 3] * xs[cols[j + 3]]
                for j in range(quad, stop):
                    a0 += values[j] * xs[cols[j]]
                out[s, r] = ((a0 + a1) + (a2 + a3)) + bias[r]

    @numba.njit(nogil=True, fastmath=column_flags, boundscheck=False)
    def columns(
        values: Any, cols: Any, ptr: Any, r0: int, r1: int, x: Any, bias: Any, out: Any
    ) -> None:  # pragma: no cover - compiled
        # x: (samples, inputs, columns), out: (samples, outputs, columns).
        width = x.shape[2]
        for s in range(x.shape[0]):
            xs = x[s]
            for r in range(r0, r1):
                o = out[s, r]
                b0 = bias[r]
                for c in range(width):
                    o[c] = b0
                start = ptr[r]
                stop = ptr[r + 1]
                quad = start + (stop - start) // 4 * 4
                for j in range(start, quad, 4):
                    v0 = values[j]
                    v1 = values[j + 1]
                    v2 = values[j + 2]
                    v3 = values[j + 3]
                    x0 = xs[cols[j]]
                    x1 = xs[cols[j + 1]]
                    x2 = xs[cols[j + 2]]
                    x3 = xs[cols[j + 3]]
                    for c in range(width):
                        o[c] += (v0 * x0[c] + v1 * x1[c]) + (v2 * x2[c] + v3 * x3[c])
                for j in range(quad, stop):
                    v = values[j]
                    xr = xs[cols[j]]
                    for c in range(width):
                        o[c] += v * xr[c]

    _kernels["vectors"] = vectors
    _kernels["columns"] = columns
    return _kernels


def _run_bands(
    kernel: Callable[..., None],
    csr: Csr,
    work: int,
    x: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    threads: int,
) -> None:
    """Run ``kernel`` over the rows of ``csr`` in up to ``threads`` balanced bands."""
    values, cols, ptr = csr.values, csr.unsigned_indices(), csr.indptr
    count = min(threads, work // WORK_PER_BAND)
    if count <= 1:
        kernel(values, cols, ptr, 0, csr.shape[0], x, bias, out)
        return
    bands = csr.bands(count)
    futures: list[Future[None]] = [
        executor().submit(kernel, values, cols, ptr, a, b, x, bias, out) for a, b in bands[1:]
    ]
    try:
        a, b = bands[0]
        kernel(values, cols, ptr, a, b, x, bias, out)
    finally:
        for future in futures:
            future.result()


def rows_times_vectors(
    csr: Csr, x: np.ndarray, bias: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """``x @ W.T + bias`` for ``x`` of shape ``(samples, inputs)`` (float32, C order)."""
    out = np.empty((x.shape[0], csr.shape[0]), dtype=np.float32)
    work = csr.nnz * x.shape[0]
    _run_bands(_compile()["vectors"], csr, work, x, bias, out, _threads(threads))
    return out


def rows_times_columns(
    csr: Csr, x: np.ndarray, bias: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """``W @ x[s] + bias[:, None]`` for every ``s`` of ``x`` of shape ``(samples, inputs,
    columns)`` (float32, C order); returns ``(samples, outputs, columns)``."""
    out = np.empty((x.shape[0], csr.shape[0], x.shape[2]), dtype=np.float32)
    work = csr.nnz * x.shape[0] * x.shape[2]
    _run_bands(_compile()["columns"], csr, work, x, bias, out, _threads(threads))
    return out


def _threads(threads: int | None) -> int:
    return torch.get_num_threads() if threads is None else max(1, threads)


def warm_up() -> None:
    """Compile the kernels for both index widths now rather than at the first sparse call."""
    bias = np.zeros(2, np.float32)
    for cols in (4, INT16_LIMIT):
        weight = np.zeros((2, cols), np.float32)
        weight[:, 1] = 1.0
        csr = Csr.from_dense(weight)
        rows_times_vectors(csr, np.ones((1, cols), np.float32), bias, threads=1)
        rows_times_columns(csr, np.ones((1, cols, 2), np.float32), bias, threads=1)
