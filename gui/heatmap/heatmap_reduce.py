"""Reduction work for :class:`gui.heatmap.heatmap.HeatmapView`: worker requests, results, levels.

Pure functions and immutable snapshots (no Qt), so a pool thread can reduce a
matrix to screen pixels and find its colour levels while the GUI thread goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from core.viz.display import Tiling, fraction_pixels, signed_pixels


@dataclass(frozen=True)
class ReduceRequest:
    """What a reduction worker is asked to compute (a snapshot; never mutated)."""

    serial: int
    generation: int
    matrix: torch.Tensor
    kind: str
    plan: Tiling
    mask: torch.Tensor | None
    need_levels: bool
    pruned: torch.Tensor | None = None  # a mask whose kept fractions are wanted too


@dataclass
class ReduceResult:
    """A worker's answer: pixels for ``request.plan`` and, if asked, max |value|."""

    request: ReduceRequest
    pixels: np.ndarray
    max_abs: float | None = None
    kept: np.ndarray | None = None  # kept fraction per pixel of ``request.pruned``


def reduce_request(request: ReduceRequest) -> ReduceResult:
    """Worker body: reduce ``request.plan`` (runs in a pool thread, no Qt)."""
    if request.kind == "mask":
        pixels = fraction_pixels(request.matrix, request.plan)
    else:
        pixels = signed_pixels(request.matrix, request.plan, mask=request.mask)
    kept = None
    if request.pruned is not None:
        kept = fraction_pixels(request.pruned, request.plan)
    max_abs = None
    if request.need_levels:
        max_abs = matrix_max_abs(request.matrix, request.mask)
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
