"""Turn any weight tensor into screen-sized pixels, fast and truthfully.

Heatmaps of big layers must not send a 16384 × 16384 matrix to the painter
(pyqtgraph pays per source pixel at paint time). Instead a *region* of a 2-D
display matrix is tiled into blocks, one block per screen pixel, and each block
is reduced to one number:

* weights (:func:`reduce_signed`): the signed value of largest magnitude, so a
  diverging colour map still shows the strongest weight in every block;
* masks (:func:`reduce_fraction`): the fraction of kept weights.

:func:`preview_signed` is the quick first paint (a strided subsample, no full
pass). :class:`Tiling` describes the block grid and maps pixels back to weight
indices (for hover and image placement). :func:`display_matrix` gives the 2-D
view of any weight shape; :func:`cells_to_flat_index` maps painted display
cells back to flat weight indices.

Everything here may run in any thread; the block reductions call the compiled
kernels of :mod:`core.viz.block_kernels` (imported on first use, see :func:`warm_up`).

Example:
    >>> w = torch.randn(4096, 4096)
    >>> img = reduce_signed(w, 1024, 1024)  # (1024, 1024) float32, 4 × 4 blocks
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

#: A half-open rectangle of a 2-D matrix: ``(row_start, row_stop, col_start, col_stop)``.
Region = tuple[int, int, int, int]

#: Layouts understood by :func:`display_matrix`.
LAYOUTS = ("matrix", "kernels")

#: Wildcard in painted cells: ``(row, ALL)`` is a whole row, ``(ALL, col)`` a column.
ALL = -1


# --------------------------------------------------------------------- layouts
def display_matrix(weight: torch.Tensor, layout: str = "matrix") -> torch.Tensor:
    """A 2-D view of a weight (or mask) tensor for display.

    Args:
        weight: any tensor. 0-D → (1, 1); 1-D (n,) → (1, n); 2-D as is.
        layout: ``"matrix"``: (out, prod(rest)), one row per output unit (a
            view when possible). ``"kernels"`` (conv weights, 4-D and up): a
            grid of kernels, kernel (o, i) at block (o, i); a Conv2d weight
            (out, in, kh, kw) becomes (out·kh, in·kw); a Conv3d weight
            (out, in, kd, kh, kw) becomes (out·kh, in·kd·kw) with the depth
            slices of a kernel side by side. Shapes with fewer than 4 dims
            fall back to ``"matrix"``.

    Returns:
        A 2-D tensor with the same dtype (a copy only for ``"kernels"``).

    Raises:
        ValueError: unknown layout.
    """
    _check_layout(layout)
    shape = display_shape(tuple(weight.shape), layout)
    if layout == "kernels" and weight.dim() >= 4:
        depth_dims = list(range(2, weight.dim() - 2))
        order = [0, weight.dim() - 2, 1, *depth_dims, weight.dim() - 1]
        return weight.permute(order).reshape(shape)
    return weight.reshape(shape)


def display_shape(shape: tuple[int, ...], layout: str = "matrix") -> tuple[int, int]:
    """The (rows, cols) that :func:`display_matrix` gives for a weight ``shape``."""
    _check_layout(layout)
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (1, shape[0])
    if layout == "kernels" and len(shape) >= 4:
        out, inp, *kernel = shape
        return (out * kernel[-2], inp * math.prod(kernel) // kernel[-2])
    return (shape[0], math.prod(shape[1:]))


def display_to_flat(
    rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, ...], layout: str = "matrix"
) -> torch.Tensor:
    """Flat indices into ``weight.reshape(-1)`` of display cells ``(rows[i], cols[i])``."""
    _check_layout(layout)
    rows, cols = rows.long(), cols.long()
    n_cols = display_shape(shape, layout)[1]
    if not (layout == "kernels" and len(shape) >= 4):
        return rows * n_cols + cols
    _out, inp, *kernel = shape
    kh, kw = kernel[-2], kernel[-1]
    depth = math.prod(kernel[:-2])
    out_idx, h = rows.div(kh, rounding_mode="floor"), rows.remainder(kh)
    in_idx, rest = cols.div(depth * kw, rounding_mode="floor"), cols.remainder(depth * kw)
    d, w = rest.div(kw, rounding_mode="floor"), rest.remainder(kw)
    return ((out_idx * inp + in_idx) * depth + d) * (kh * kw) + h * kw + w


def display_to_index(
    row: int, col: int, shape: tuple[int, ...], layout: str = "matrix"
) -> tuple[int, ...]:
    """The weight index (one int per dim) shown at display cell ``(row, col)``."""
    flat = display_to_flat(torch.tensor([row]), torch.tensor([col]), shape, layout)
    return tuple(int(i) for i in np.unravel_index(int(flat[0]), shape)) if shape else ()


def cells_to_flat_index(
    cells: Iterable[tuple[int, int]], shape: tuple[int, ...], layout: str = "matrix"
) -> torch.Tensor:
    """Expand painted display cells into sorted unique flat weight indices.

    A cell ``(row, ALL)`` means the whole display row, ``(ALL, col)`` the whole
    column (see :data:`ALL`). Use as ``mask.view(-1)[index] = keep``.
    """
    n_rows, n_cols = display_shape(shape, layout)
    row_parts: list[torch.Tensor] = []
    col_parts: list[torch.Tensor] = []
    for row, col in cells:
        rows = torch.arange(n_rows) if row == ALL else torch.tensor([row])
        cols = torch.arange(n_cols) if col == ALL else torch.tensor([col])
        grid_r, grid_c = torch.meshgrid(rows, cols, indexing="ij")
        row_parts.append(grid_r.reshape(-1))
        col_parts.append(grid_c.reshape(-1))
    if not row_parts:
        return torch.empty(0, dtype=torch.long)
    flat = display_to_flat(torch.cat(row_parts), torch.cat(col_parts), shape, layout)
    unique: torch.Tensor = torch.unique(flat)  # sorted; torch types the result as Any
    return unique


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


# --------------------------------------------------------------------- tiling
@dataclass(frozen=True)
class Tiling:
    """A block grid over a region of a 2-D matrix; one block becomes one pixel.

    Pixel ``(i, j)`` covers rows ``row_start + i·block_rows`` … and columns
    ``col_start + j·block_cols`` …; the last block in each direction may be
    ragged (clipped at ``row_stop`` / ``col_stop``).
    """

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int
    block_rows: int
    block_cols: int

    @property
    def region(self) -> Region:
        """The covered region ``(row_start, row_stop, col_start, col_stop)``."""
        return (self.row_start, self.row_stop, self.col_start, self.col_stop)

    @property
    def rows(self) -> int:
        """Pixel rows."""
        return -(-(self.row_stop - self.row_start) // self.block_rows)

    @property
    def cols(self) -> int:
        """Pixel columns."""
        return -(-(self.col_stop - self.col_start) // self.block_cols)

    @property
    def is_identity(self) -> bool:
        """True when one pixel is one weight."""
        return self.block_rows == 1 and self.block_cols == 1

    def rect(self) -> tuple[float, float, float, float]:
        """Where the image goes in weight coordinates: ``(x, y, width, height)``.

        x is the column, y the row; a ragged last block is drawn full size, so
        pixel edges always fall on block edges.
        """
        return (
            float(self.col_start),
            float(self.row_start),
            float(self.cols * self.block_cols),
            float(self.rows * self.block_rows),
        )

    def block_of(self, pixel_row: int, pixel_col: int) -> Region:
        """The weight region ``(r0, r1, c0, c1)`` shown by pixel ``(pixel_row, pixel_col)``."""
        r0 = self.row_start + pixel_row * self.block_rows
        c0 = self.col_start + pixel_col * self.block_cols
        return (
            r0,
            min(r0 + self.block_rows, self.row_stop),
            c0,
            min(c0 + self.block_cols, self.col_stop),
        )

    def pixel_of(self, row: int, col: int) -> tuple[int, int]:
        """The pixel showing weight ``(row, col)`` (which must lie in the region)."""
        return (
            (row - self.row_start) // self.block_rows,
            (col - self.col_start) // self.block_cols,
        )


def tiling(
    shape: tuple[int, ...],
    out_rows: int,
    out_cols: int,
    region: Region | None = None,
    *,
    align: bool = False,
) -> Tiling:
    """The block grid reducing ``region`` of a ``shape`` matrix to ≤ out_rows × out_cols.

    Block sizes are ceiling divisions (at least 1). With ``align`` the region
    start is moved back to a multiple of the block size, so panning does not
    make pixels shimmer (the grid may then have one more pixel per direction).

    Raises:
        ValueError: ``shape`` is not 2-D, empty or out-of-bounds region, or
            non-positive pixel counts.
    """
    r0, r1, c0, c1 = _check_region(shape, region)
    if out_rows < 1 or out_cols < 1:
        raise ValueError(f"pixel counts must be positive, got {out_rows} × {out_cols}")
    block_rows = max(1, -(-(r1 - r0) // out_rows))
    block_cols = max(1, -(-(c1 - c0) // out_cols))
    if align:
        r0 -= r0 % block_rows
        c0 -= c0 % block_cols
    return Tiling(r0, r1, c0, c1, block_rows, block_cols)


def block_of(
    pixel_row: int,
    pixel_col: int,
    shape: tuple[int, int],
    out_rows: int,
    out_cols: int,
    region: Region | None = None,
) -> Region:
    """The weight region behind one pixel of ``reduce_signed(m, out_rows, out_cols, region)``."""
    return tiling(shape, out_rows, out_cols, region).block_of(pixel_row, pixel_col)


def clip_region(shape: tuple[int, int], region: Region) -> Region | None:
    """Intersect ``region`` with the matrix; None when nothing is left."""
    r0, r1 = max(0, region[0]), min(shape[0], region[1])
    c0, c1 = max(0, region[2]), min(shape[1], region[3])
    if r0 >= r1 or c0 >= c1:
        return None
    return (r0, r1, c0, c1)


def _check_region(shape: tuple[int, ...], region: Region | None) -> Region:
    if len(shape) != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {tuple(shape)}")
    if region is None:
        region = (0, shape[0], 0, shape[1])
    r0, r1, c0, c1 = (int(v) for v in region)
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise ValueError(f"region {region} is empty or outside a {tuple(shape)} matrix")
    return (r0, r1, c0, c1)


# --------------------------------------------------------------------- previews
def preview_signed(
    matrix: torch.Tensor, out_rows: int, out_cols: int, region: Region | None = None
) -> np.ndarray:
    """A quick strided subsample (every k-th row and column) for the first paint.

    Reads only the sampled elements (~2 ms at 16384² → 1024²). The grid is the
    same as :func:`tiling`'s, so the result can be placed with the same rect.
    Bool masks come out as 0.0 / 1.0.
    """
    return preview_pixels(matrix, tiling(tuple(matrix.shape), out_rows, out_cols, region))


def preview_pixels(
    matrix: torch.Tensor, plan: Tiling, mask: torch.Tensor | None = None
) -> np.ndarray:
    """The first element of every block of ``plan`` (times ``mask`` when given)."""
    r0, r1, c0, c1 = plan.region
    rows, cols = slice(r0, r1, plan.block_rows), slice(c0, c1, plan.block_cols)
    sample = matrix.detach()[rows, cols]
    if mask is not None:
        sample = torch.where(mask[rows, cols], sample, torch.zeros((), dtype=sample.dtype))
    return _to_pixels(sample)


# --------------------------------------------------------------------- signed
def reduce_signed(
    matrix: torch.Tensor,
    out_rows: int,
    out_cols: int,
    region: Region | None = None,
    *,
    mask: torch.Tensor | None = None,
) -> np.ndarray:
    """Reduce ``region`` of a 2-D float tensor to at most out_rows × out_cols pixels.

    Each pixel is the signed value of largest magnitude in its block (ties
    between +a and -a give +a), so a diverging colour map stays truthful.
    A region that already fits is returned as is. (NaN compares false: a NaN
    weight only shows where it comes first in its block.)

    Args:
        matrix: 2-D floating tensor on the CPU.
        out_rows, out_cols: pixel budget.
        region: ``(r0, r1, c0, c1)``, half-open; default the whole matrix.
        mask: optional bool tensor like ``matrix``; pruned entries count as 0.

    Returns:
        A C-contiguous float32 array of shape ``tiling(...).rows × .cols``.
    """
    plan = tiling(tuple(matrix.shape), out_rows, out_cols, region)
    return signed_pixels(matrix, plan, mask=mask)


def signed_pixels(
    matrix: torch.Tensor, plan: Tiling, *, mask: torch.Tensor | None = None
) -> np.ndarray:
    """:func:`reduce_signed` over an explicit :class:`Tiling`.

    One read pass with a fused kernel (:mod:`core.viz.block_kernels`), bands of
    pixel rows in parallel threads. Float32 C-contiguous matrices (and bool
    masks) are read in place; other dtypes or strides are first copied.
    """
    r0, r1, c0, c1 = plan.region
    if plan.is_identity:
        source = matrix.detach()[r0:r1, c0:c1]
        sub_mask = None if mask is None else mask.detach()[r0:r1, c0:c1]
        return _to_pixels(_masked_float(source, sub_mask))
    kernels = _kernels()
    out = np.empty((plan.rows, plan.cols), dtype=np.float32)
    blocks = (plan.block_rows, plan.block_cols, out)
    if mask is None:
        (values,), region = _kernel_inputs(plan, (matrix, torch.float32))
        _run_bands(plan, kernels.signed_extremes, values, *region, *blocks)
    else:
        (values, keep), region = _kernel_inputs(plan, (matrix, torch.float32), (mask, torch.bool))
        _run_bands(plan, kernels.signed_extremes_masked, values, keep, *region, *blocks)
    return out


def _masked_float(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``values`` as float32 with pruned entries zeroed (a view when nothing changes)."""
    if values.dtype != torch.float32:
        values = values.float()
    if mask is not None:
        values = torch.where(mask, values, torch.zeros((), dtype=values.dtype))
    return values


# --------------------------------------------------------------------- fraction
def reduce_fraction(
    mask: torch.Tensor, out_rows: int, out_cols: int, region: Region | None = None
) -> np.ndarray:
    """Reduce ``region`` of a 2-D bool mask to the fraction of kept entries per pixel.

    A region that already fits is returned as 1.0 (kept) / 0.0 (pruned).

    Returns:
        A C-contiguous float32 array of shape ``tiling(...).rows × .cols``.
    """
    plan = tiling(tuple(mask.shape), out_rows, out_cols, region)
    return fraction_pixels(mask, plan)


def fraction_pixels(mask: torch.Tensor, plan: Tiling) -> np.ndarray:
    """:func:`reduce_fraction` over an explicit :class:`Tiling` (non-zero counts as kept)."""
    r0, r1, c0, c1 = plan.region
    if plan.is_identity:
        return _to_pixels(mask.detach()[r0:r1, c0:c1] != 0)
    (keep,), region = _kernel_inputs(plan, (mask, torch.bool))
    out = np.empty((plan.rows, plan.cols), dtype=np.float32)
    blocks = (plan.block_rows, plan.block_cols, out)
    _run_bands(plan, _kernels().kept_fractions, keep, *region, *blocks)
    return out


# --------------------------------------------------------------------- kernels
_kernels_loaded = False


def _kernels() -> ModuleType:
    """:mod:`core.viz.block_kernels`, imported (compiled or cached) on first use."""
    global _kernels_loaded
    from core.viz import block_kernels

    _kernels_loaded = True
    return block_kernels


def warm_up() -> None:
    """Load the compiled kernels now (~0.4 s; ~1.5 s the first time on a machine).

    Call it from a background thread at startup so that no later reduction
    waits for it.
    """
    _kernels()


def kernels_ready() -> bool:
    """True once the kernels are loaded: reductions then start without delay."""
    return _kernels_loaded


def _kernel_inputs(
    plan: Tiling, *inputs: tuple[torch.Tensor, torch.dtype]
) -> tuple[tuple[np.ndarray, ...], Region]:
    """C-contiguous numpy arrays for a kernel, and where ``plan``'s region lies in them.

    Tensors that all have their kernel dtype (float32, or bool passed as
    uint8) and are C-contiguous are passed whole, in place. Otherwise only the
    region of each is copied (bool: non-zero → 1) and the region becomes the
    whole copy.
    """
    tensors = [(tensor.detach(), dtype) for tensor, dtype in inputs]
    if all(t.dtype == dtype and t.is_contiguous() for t, dtype in tensors):
        return tuple(_numpy(t) for t, _ in tensors), plan.region
    r0, r1, c0, c1 = plan.region
    parts = []
    for tensor, dtype in tensors:
        part = tensor[r0:r1, c0:c1]
        part = part != 0 if dtype == torch.bool else part.to(dtype)
        parts.append(_numpy(part.contiguous()))
    return tuple(parts), (0, r1 - r0, 0, c1 - c0)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.numpy()
    return array.view(np.uint8) if array.dtype == np.bool_ else array


# --------------------------------------------------------------------- bands
#: Regions smaller than this many elements are reduced in the calling thread only.
PARALLEL_MIN_ELEMENTS = 1 << 20

#: At most this many bands (pool threads) per reduction.
MAX_BANDS = 8

_band_pool: ThreadPoolExecutor | None = None
_band_pool_lock = threading.Lock()


def _run_bands(plan: Tiling, kernel: Callable[..., None], *args: object) -> None:
    """Call ``kernel(*args, p0, p1)`` on bands of pixel rows covering ``plan``.

    The kernels release the GIL, so bands run in parallel: the first in the
    calling thread, the others in a shared pool (see :func:`_pool`).
    """
    bands = _band_count(plan)
    edges = [plan.rows * i // bands for i in range(bands + 1)]
    first, *others = itertools.pairwise(edges)
    futures = [_pool().submit(kernel, *args, p0, p1) for p0, p1 in others]
    kernel(*args, *first)
    for future in futures:
        future.result()


def _band_count(plan: Tiling) -> int:
    area = (plan.row_stop - plan.row_start) * (plan.col_stop - plan.col_start)
    if area < PARALLEL_MIN_ELEMENTS or plan.rows < 2:
        return 1
    return max(1, min(MAX_BANDS, torch.get_num_threads(), plan.rows))


def _pool() -> ThreadPoolExecutor:
    """The shared pool running all bands but the first (grows to :data:`MAX_BANDS` - 1)."""
    global _band_pool
    with _band_pool_lock:
        if _band_pool is None:
            _band_pool = ThreadPoolExecutor(MAX_BANDS - 1, thread_name_prefix="display-band")
        return _band_pool


def _to_pixels(values: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy copy, never sharing memory (bool → 0.0 / 1.0)."""
    return np.array(values.to(torch.float32).numpy(), dtype=np.float32, order="C", copy=True)
