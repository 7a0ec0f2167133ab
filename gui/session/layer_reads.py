"""Jobs that read one layer for the views: its snapshot, and a preview's mask.

Both run in a worker and hand the GUI thread finished copies: it never
unpacks a mask or reads a whole layer itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from core.common.jobs import CancelToken, Job, Progress
from core.pruning.masks import PackedMask
from core.pruning.methods.patterns import Pattern
from core.pruning.operations import GlobalPrune, LayerPrune
from core.pruning.session import PruningSession
from gui.session.figures import LayerFigures, measure_figures
from gui.session.magnitudes import MagnitudeCounts, largest_pruned, magnitude_counts


@dataclass(frozen=True, eq=False)
class LayerSnapshot:
    """Copies of one layer's three views and its |w| histogram, made in a worker.

    ``figures`` were measured with them: the GUI thread never reads the layer.
    """

    name: str
    original: torch.Tensor
    mask: torch.Tensor
    effective: torch.Tensor
    counts: MagnitudeCounts
    figures: LayerFigures


@dataclass(frozen=True, eq=False)
class LayerPreview:
    """One layer of a preview: its unpacked mask and the largest |w| it would prune."""

    name: str
    mask: torch.Tensor
    threshold: float | None


@dataclass(frozen=True, eq=False)
class Preview:
    """What a previewed operation would do: every target's mask, nothing applied.

    ``layer`` is the :class:`LayerPreview` of the operation's first target.
    """

    op: LayerPrune | GlobalPrune
    masks: Mapping[str, PackedMask | None]
    layer: LayerPreview | None


def read_layer_job(
    session: PruningSession,
    name: str,
    patterns: set[Pattern],
    known: LayerFigures | None,
    _token: CancelToken,
) -> Job[LayerSnapshot]:
    """Copy ``name``'s original weights, mask and effective weights, with its figures."""
    yield Progress(0.0, f"reading {name}")
    original, mask = session.original(name), session.mask(name)
    counts = magnitude_counts(original, mask)
    effective = session.effective(name).clone()
    figures = measure_figures(session, name, patterns, known, effective)
    return LayerSnapshot(name, original, mask, effective, counts, figures)


def preview_job(
    session: PruningSession, op: LayerPrune | GlobalPrune, token: CancelToken
) -> Job[Preview]:
    """The masks ``op`` would produce; the first target's unpacked, with its threshold."""
    masks = yield from session.masks_job(op, token)
    for packed in masks.values():
        if packed is not None:
            _ = packed.kept  # counted here, not when the GUI thread asks
    focus = next((name for name in op.targets if name in masks), None)
    if focus is None:
        return Preview(op, masks, None)
    mask = masks[focus]
    shape = session.info(focus).shape
    full = torch.ones(shape, dtype=torch.bool) if mask is None else mask.to_bool()
    threshold = largest_pruned(session.original(focus), full)
    return Preview(op, masks, LayerPreview(focus, full, threshold))
