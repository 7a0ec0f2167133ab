"""The statistics panel's words and numbers: sizes, ratios, percentages, the input.

Sizes are in MB of 10^6 bytes; ratios read "dense / pruned", so "7.6x" means
7.6 times smaller (or fewer FLOPs). :func:`stats_values` gives the text of every
figure of :class:`~gui.panels.stats_panel.StatsPanel`, by the keys of
:data:`VALUE_KEYS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gui.panels.input_spec import DTYPES, shape_text
from gui.widgets.formatting import format_count, format_percent, format_si

if TYPE_CHECKING:
    import torch

    from core.analysis.stats import ModelStats, UncountedLayer

VALUE_KEYS: tuple[str, ...] = (
    "total",
    "prunable",
    "nonzeros",
    "pruned",
    "sparsity",
    "model_sparsity",
    "flops_dense",
    "flops_effective",
    "flops_ratio",
    "size_dense",
    "size_sparse",
    "compression",
)
"""Keys of the figures shown in the grid (see :meth:`StatsPanel.value_text`)."""


def format_mb(nbytes: int) -> str:
    """Bytes as MB (10^6 bytes), with about three significant digits."""
    mb = nbytes / 1e6
    if mb >= 100:
        return f"{mb:,.0f} MB"
    if mb >= 1:
        return f"{mb:.2f} MB"
    return f"{mb:.3g} MB"


def format_ratio(dense: float | None, reduced: float | None) -> str:
    """``dense / reduced`` as ``7.6x`` (two decimals below 2x); ``n/a`` or ``∞`` when undefined."""
    if dense is None or reduced is None:
        return "n/a"
    if reduced == 0:
        return "∞" if dense else "n/a"
    ratio = dense / reduced
    return f"{ratio:.2f}x" if ratio < 2 else f"{ratio:.1f}x"


def not_counted_text(layers: tuple[UncountedLayer, ...]) -> str:
    """The sentence listing layers whose FLOPs are not counted ("" when none)."""
    if not layers:
        return ""
    names = ", ".join(f"{layer.name} ({layer.module_type})" for layer in layers)
    return (
        f"Not counted: {names}. torch's FLOP counter has no formula for these layers, so "
        "the FLOPs above leave them out."
    )


def input_text(tensor: torch.Tensor | None) -> str:
    """``input 1×3×32×32 float32`` from the shape and dtype only (no value is read)."""
    if tensor is None:
        return "no example input"
    names = {dtype: name for name, dtype in DTYPES.items()}
    dtype = names.get(tensor.dtype, str(tensor.dtype).removeprefix("torch."))
    return f"input {shape_text(tuple(tensor.shape), '×')} {dtype}"


def stats_values(stats: ModelStats) -> dict[str, str]:
    """The grid's text for every key of :data:`VALUE_KEYS`."""
    return {
        "total": format_count(stats.total_params),
        "prunable": format_count(stats.prunable_params),
        "nonzeros": format_count(stats.nonzeros),
        "pruned": format_count(stats.pruned),
        "sparsity": format_percent(stats.sparsity),
        "model_sparsity": format_percent(stats.model_sparsity),
        "flops_dense": format_si(stats.flops_dense),
        "flops_effective": format_si(stats.flops_effective),
        "flops_ratio": format_ratio(stats.flops_dense, stats.flops_effective),
        "size_dense": format_mb(stats.bytes_dense),
        "size_sparse": format_mb(stats.bytes_sparse),
        "compression": format_ratio(stats.bytes_dense, stats.bytes_sparse),
    }
