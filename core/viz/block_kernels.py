"""Fused block reductions behind the heatmaps, compiled with numba.

Each kernel reads its part of the matrix once, row by row, keeps two (or one)
per-column accumulators of one row's width, and pools them over column blocks
at the end of every block of rows: no temporaries the size of the matrix, one
call per band of pixel rows. torch has no fused "max and min per 2-D block"
and its middle-dim reductions run at ~5x a read pass here; these kernels run
at ~1.2-1.5x one (unmasked), so a 16384² matrix appears in tens of ms.

All kernels release the GIL (``nogil``), so :mod:`core.viz.display` runs bands of
pixel rows in parallel threads. numba caches the machine code on disk: the
very first import on a machine compiles (~5 s here), later ones load it
(~0.4 s, mostly importing numba). Arguments are C-contiguous
numpy arrays plus the region ``r0:r1, c0:c1`` to reduce; ``out[p0:p1]`` (pixel
rows) is written.

Importing this module compiles or loads the kernels; :mod:`core.viz.display`
imports it lazily so that starting the app does not pay for it.
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numba
import numpy as np
import numpy.typing as npt


class _JitOptions(TypedDict):
    """numba.njit options shared by every kernel (typed, so mypy checks the calls)."""

    nogil: bool
    error_model: Literal["python", "numpy"]
    boundscheck: bool


_JIT: _JitOptions = {"nogil": True, "error_model": "numpy", "boundscheck": False}

_Floats = npt.NDArray[np.float32]
_Bytes = npt.NDArray[np.uint8]

_REGION = "int64, int64, int64, int64, int64, int64"
_OUT = "float32[:, ::1], int64, int64"


@numba.njit(inline="always", **_JIT)
def _pool_signed(
    high: _Floats, low: _Floats, block_cols: int, out_row: _Floats
) -> None:  # pragma: no cover - compiled
    """Pool per-column extremes over column blocks; the positive extreme wins ties.

    Two accumulators per extreme halve the chain of dependent max/min
    operations that otherwise bounds this loop.
    """
    width = high.shape[0]
    for q in range(out_row.shape[0]):
        start = q * block_cols
        stop = min(width, start + block_cols)
        h0 = h1 = high[start]
        l0 = l1 = low[start]
        c = start + 1
        while c + 1 < stop:
            h0, h1 = max(h0, high[c]), max(h1, high[c + 1])
            l0, l1 = min(l0, low[c]), min(l1, low[c + 1])
            c += 2
        if c < stop:
            h0, l0 = max(h0, high[c]), min(l0, low[c])
        h, lo = max(h0, h1), min(l0, l1)
        out_row[q] = h if h >= -lo else lo


@numba.njit(inline="always", **_JIT)
def _extremes_of_four(
    a: _Floats, b: _Floats, c: _Floats, d: _Floats, high: _Floats, low: _Floats
) -> None:  # pragma: no cover - compiled
    """Fold four rows into running per-column maxima and minima.

    Four rows per pass keep more loads in flight: ~1.6x faster from memory
    than one row at a time, and two loops beat one updating both.
    """
    for j in range(high.shape[0]):
        m = max(max(a[j], b[j]), max(c[j], d[j]))
        if m > high[j]:
            high[j] = m
    for j in range(low.shape[0]):
        m = min(min(a[j], b[j]), min(c[j], d[j]))
        if m < low[j]:
            low[j] = m


@numba.njit(f"void(float32[:, ::1], {_REGION}, {_OUT})", cache=True, **_JIT)
def signed_extremes(
    values: _Floats,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    block_rows: int,
    block_cols: int,
    out: _Floats,
    p0: int,
    p1: int,
) -> None:  # pragma: no cover - compiled
    """Signed value of largest magnitude per block (+a beats -a)."""
    width = c1 - c0
    high = np.empty(width, np.float32)
    low = np.empty(width, np.float32)
    for p in range(p0, p1):
        top = r0 + p * block_rows
        bottom = min(r1, top + block_rows)
        high[:] = values[top, c0:c1]
        low[:] = high
        r = top + 1
        while r + 4 <= bottom:
            _extremes_of_four(
                values[r, c0:c1],
                values[r + 1, c0:c1],
                values[r + 2, c0:c1],
                values[r + 3, c0:c1],
                high,
                low,
            )
            r += 4
        while r < bottom:  # the last 0-3 rows: a row repeated changes nothing
            row = values[r, c0:c1]
            _extremes_of_four(row, row, row, row, high, low)
            r += 1
        _pool_signed(high, low, block_cols, out[p])


@numba.njit(inline="always", **_JIT)
def _masked_row(values: _Floats, keep: _Bytes, out: _Floats) -> None:  # pragma: no cover - compiled
    """``out = values`` where ``keep``, else 0."""
    zero = np.float32(0.0)
    for j in range(out.shape[0]):
        out[j] = values[j] if keep[j] else zero


@numba.njit(f"void(float32[:, ::1], uint8[:, ::1], {_REGION}, {_OUT})", cache=True, **_JIT)
def signed_extremes_masked(
    values: _Floats,
    keep: _Bytes,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    block_rows: int,
    block_cols: int,
    out: _Floats,
    p0: int,
    p1: int,
) -> None:  # pragma: no cover - compiled
    """:func:`signed_extremes` of ``values`` where ``keep``, 0 elsewhere.

    Rows are masked four at a time into a small scratch buffer (cache
    resident) and folded like unmasked rows.
    """
    width = c1 - c0
    high = np.empty(width, np.float32)
    low = np.empty(width, np.float32)
    rows = np.empty((4, width), np.float32)
    for p in range(p0, p1):
        top = r0 + p * block_rows
        bottom = min(r1, top + block_rows)
        _masked_row(values[top, c0:c1], keep[top, c0:c1], high)
        low[:] = high
        r = top + 1
        while r < bottom:
            n = min(4, bottom - r)
            for i in range(4):  # short groups repeat their last row
                k = r + min(i, n - 1)
                _masked_row(values[k, c0:c1], keep[k, c0:c1], rows[i])
            _extremes_of_four(rows[0], rows[1], rows[2], rows[3], high, low)
            r += n
        _pool_signed(high, low, block_cols, out[p])


@numba.njit(f"void(uint8[:, ::1], {_REGION}, {_OUT})", cache=True, **_JIT)
def kept_fractions(
    keep: _Bytes,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    block_rows: int,
    block_cols: int,
    out: _Floats,
    p0: int,
    p1: int,
) -> None:  # pragma: no cover - compiled
    """Fraction of non-zero entries of ``keep`` per block (ragged edge blocks exact)."""
    width = c1 - c0
    counts = np.empty(width, np.int32)
    for p in range(p0, p1):
        top = r0 + p * block_rows
        bottom = min(r1, top + block_rows)
        counts[:] = 0
        for r in range(top, bottom):
            kept = keep[r, c0:c1]
            for j in range(width):
                counts[j] += kept[j] != 0
        for q in range(out.shape[1]):
            start = q * block_cols
            stop = min(width, start + block_cols)
            total = 0
            for c in range(start, stop):
                total += counts[c]
            out[p, q] = total / ((bottom - top) * (stop - start))
