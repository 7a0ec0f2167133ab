"""Histogram counts of weight magnitudes |w| and their pruned part (no widgets).

:func:`magnitude_counts` runs in a worker (see :class:`~gui.session.controller.SessionController`)
and :class:`~gui.heatmap.histogram.MagnitudeHistogram` draws the result. Tensors above
:data:`SAMPLE_LIMIT` elements are counted from a regular strided sample (every k-th
element, with ``torch.histc``). The threshold and the range always come from all the elements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

BINS = 100
SAMPLE_LIMIT = 4_000_000
"""Above this many elements the histogram is computed from a strided sample."""


@dataclass(frozen=True)
class MagnitudeCounts:
    """A computed histogram: bin edges, counts of all and of pruned weights, sampling."""

    edges: np.ndarray
    total: np.ndarray
    pruned: np.ndarray
    threshold: float | None
    sampled: int
    numel: int

    @property
    def stride(self) -> int:
        """Every how many elements one was counted (1: all)."""
        return max(1, math.ceil(self.numel / self.sampled)) if self.sampled else 1


def magnitude_counts(
    weights: torch.Tensor, mask: torch.Tensor | None, bins: int = BINS
) -> MagnitudeCounts:
    """Histogram |``weights``| (strided sample above :data:`SAMPLE_LIMIT`) and its pruned part.

    Args:
        weights: the original weights, any shape and floating dtype.
        mask: bool, same shape, True = kept; None = nothing pruned.
        bins: number of equal-width bins over ``[0, max |w|]``.

    Returns:
        The counts; ``threshold`` is the largest pruned |w| (None if nothing is pruned).
    """
    flat = weights.detach().reshape(-1)
    keep = None if mask is None else mask.detach().reshape(-1).to(torch.bool)
    if keep is not None and keep.numel() != flat.numel():
        raise ValueError(f"mask has {keep.numel()} elements, weights {flat.numel()}")
    magnitudes = flat.abs()
    top = float(magnitudes.max()) if flat.numel() else 0.0
    threshold = largest_pruned(magnitudes, keep)
    stride = max(1, math.ceil(flat.numel() / SAMPLE_LIMIT))
    sample = magnitudes[::stride].float()
    upper = top if top > 0 else 1.0
    edges = np.linspace(0.0, upper, bins + 1)
    total = torch.histc(sample, bins=bins, min=0.0, max=upper).numpy()
    pruned = np.zeros_like(total)
    if keep is not None and threshold is not None:
        removed = sample[~keep[::stride]]
        pruned = torch.histc(removed, bins=bins, min=0.0, max=upper).numpy()
    return MagnitudeCounts(edges, total, pruned, threshold, int(sample.numel()), flat.numel())


def largest_pruned(weights: torch.Tensor, keep: torch.Tensor | None) -> float | None:
    """The largest |w| among entries ``keep`` marks pruned (None when none is pruned)."""
    if keep is None or bool(keep.all()):
        return None
    magnitudes = weights.detach().abs().reshape(-1)
    return float(magnitudes.masked_fill(keep.reshape(-1), float("-inf")).max())
