"""Reduction work for :class:`gui.heatmap.heatmap.HeatmapView`: content, worker requests, levels.

Pure functions and immutable snapshots (no Qt), so a pool thread can reduce a
matrix to screen pixels and find its colour levels while the GUI thread goes on.
The GUI thread reduces small regions with the same functions
(:mod:`gui.heatmap.heatmap_scheduler` decides which thread does what).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from core.viz.display import (
    Tiling,
    clip_region,
    fraction_pixels,
    preview_pixels,
    signed_pixels,
    tiling,
)

KINDS = ("weights", "mask")


@dataclass(frozen=True, eq=False)
class HeatmapContent:
    """What a view shows: a 2-D matrix, its kind and an optional mask (a snapshot).

    ``apply_mask`` (show ``matrix * mask``) and ``mark_pruned`` (mark the cells
    the mask prunes) hold only for a weights matrix with a mask; see :meth:`of`.
    The tensors are not copied: nobody writes to them while they are shown.
    """

    matrix: torch.Tensor
    kind: str = "weights"
    mask: torch.Tensor | None = None
    apply_mask: bool = False
    mark_pruned: bool = False

    @classmethod
    def of(
        cls,
        matrix: torch.Tensor,
        kind: str = "weights",
        mask: torch.Tensor | None = None,
        *,
        apply_mask: bool = False,
        mark_pruned: bool = False,
    ) -> HeatmapContent:
        """A detached snapshot; the mask options hold only for weights with a mask.

        Raises:
            ValueError: not 2-D, or a kind not in :data:`KINDS`.
        """
        if matrix.dim() != 2 or kind not in KINDS:
            raise ValueError(f"need a 2-D matrix and a kind in {KINDS}, got {tuple(matrix.shape)}")
        masked = mask is not None and kind == "weights"
        return cls(
            matrix.detach(),
            kind,
            None if mask is None else mask.detach(),
            apply_mask=apply_mask and masked,
            mark_pruned=mark_pruned and masked,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the matrix."""
        rows, cols = self.matrix.shape
        return (rows, cols)

    @property
    def effective_mask(self) -> torch.Tensor | None:
        """The mask to multiply the matrix by before showing it (None: show it as is)."""
        return self.mask if self.apply_mask else None

    @property
    def pruned_mask(self) -> torch.Tensor | None:
        """The mask whose all-pruned pixels are marked (None: mark none)."""
        return self.mask if self.mark_pruned else None

    def contains(self, row: int, col: int) -> bool:
        """Whether ``(row, col)`` is a cell of the matrix."""
        rows, cols = self.shape
        return 0 <= row < rows and 0 <= col < cols

    def covers_all(self, plan: Tiling) -> bool:
        """Whether ``plan`` reads the whole matrix."""
        rows, cols = self.shape
        return plan.region == (0, rows, 0, cols)

    def value_at(self, row: int, col: int) -> tuple[float, bool | None]:
        """The value shown at ``(row, col)`` and whether it is kept (None: no mask)."""
        value = float(self.matrix[row, col])
        kept: bool | None = None
        if self.kind == "mask":
            kept = value != 0
            value = float(kept)
        elif self.mask is not None:
            kept = bool(self.mask[row, col])
            if self.apply_mask and not kept:
                value = 0.0
        return value, kept


def reduce_pixels(content: HeatmapContent, plan: Tiling) -> np.ndarray:
    """The full-information pixels of ``plan``: signed extreme (weights) or kept fraction."""
    if content.kind == "mask":
        return fraction_pixels(content.matrix, plan)
    return signed_pixels(content.matrix, plan, mask=content.effective_mask)


def kept_pixels(
    content: HeatmapContent, plan: Tiling, *, preview: bool = False
) -> np.ndarray | None:
    """Kept fraction per pixel of the mask whose pruned cells are marked (None: none).

    ``preview``: the first cell of each block only (a strided sample, as the preview shows).
    """
    pruned = content.pruned_mask
    if pruned is None:
        return None
    return preview_pixels(pruned, plan) if preview else fraction_pixels(pruned, plan)


def visible_tiling(
    shape: tuple[int, int],
    view_range: list[list[float]],
    pixels: tuple[float, float],
) -> Tiling | None:
    """The block grid for what a view shows, one block per device pixel (None: nothing).

    Args:
        shape: ``(rows, cols)`` of the matrix.
        view_range: ``[[x0, x1], [y0, y1]]`` in weight coordinates (x: column, y: row).
        pixels: ``(width, height)`` of the view in device pixels.
    """
    if shape[0] * shape[1] == 0:
        return None
    (x0, x1), (y0, y1) = view_range
    region = clip_region(shape, (math.floor(y0), math.ceil(y1), math.floor(x0), math.ceil(x1)))
    if region is None:
        return None
    width_px, height_px = pixels
    out_cols = math.ceil((region[3] - region[2]) / max(x1 - x0, 1e-9) * width_px)
    out_rows = math.ceil((region[1] - region[0]) / max(y1 - y0, 1e-9) * height_px)
    return tiling(shape, max(1, out_rows), max(1, out_cols), region, align=True)


def plan_area(plan: Tiling) -> int:
    """How many matrix elements a plan reads."""
    return (plan.row_stop - plan.row_start) * (plan.col_stop - plan.col_start)


@dataclass(frozen=True)
class ReduceRequest:
    """What a reduction worker is asked to compute (a snapshot; never mutated)."""

    serial: int
    generation: int
    content: HeatmapContent
    plan: Tiling
    need_levels: bool


@dataclass
class ReduceResult:
    """A worker's answer: pixels for ``request.plan`` and, if asked, max |value|."""

    request: ReduceRequest
    pixels: np.ndarray
    max_abs: float | None = None
    kept: np.ndarray | None = None  # see kept_pixels


def reduce_request(request: ReduceRequest) -> ReduceResult:
    """Worker body: reduce ``request.plan`` (runs in a pool thread, no Qt)."""
    content, plan = request.content, request.plan
    pixels = reduce_pixels(content, plan)
    kept = kept_pixels(content, plan)
    max_abs = None
    if request.need_levels:
        max_abs = matrix_max_abs(content.matrix, content.effective_mask)
    return ReduceResult(request, pixels, max_abs, kept)


def matrix_max_abs(matrix: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Largest |value| of ``matrix`` (masked entries as 0); one read pass."""
    if matrix.numel() == 0:
        return 0.0
    if mask is not None:
        matrix = torch.where(mask, matrix, torch.zeros((), dtype=matrix.dtype))
    low, high = torch.aminmax(matrix.detach())
    return max(abs(float(low)), abs(float(high)))


def pruned_overlay(kept: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """An RGBA image: ``color`` where a pixel keeps nothing (``kept == 0``), clear elsewhere."""
    overlay = np.zeros((*kept.shape, 4), dtype=np.uint8)
    pruned = kept == 0
    overlay[pruned, :3] = color
    overlay[pruned, 3] = 255
    return overlay


def start_levels(
    content: HeatmapContent, fixed: tuple[float, float] | None, exact_limit: int
) -> tuple[float, float] | None:
    """The colour levels to show ``content`` with at once: 0..1 for a mask, the ``fixed``
    ones, or exact ones for up to ``exact_limit`` elements; None: estimate them first."""
    if content.kind == "mask":
        return (0.0, 1.0)
    if fixed is not None:
        return (float(fixed[0]), float(fixed[1]))
    if content.matrix.numel() <= exact_limit:
        return symmetric_levels(matrix_max_abs(content.matrix, content.effective_mask))
    return None


def pixels_max_abs(pixels: np.ndarray) -> float:
    """max |pixel| without an |x| copy (0 for an empty array)."""
    if pixels.size == 0:
        return 0.0
    return max(float(pixels.max()), -float(pixels.min()))


def symmetric_levels(max_abs: float) -> tuple[float, float]:
    """Levels ``(-m, m)`` for a diverging map; a unit range when ``m`` is 0 or not finite."""
    if not math.isfinite(max_abs) or max_abs <= 0:
        max_abs = 1.0
    return (-max_abs, max_abs)
