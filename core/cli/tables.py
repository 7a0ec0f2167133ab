"""Statistics for people (rich tables) and for programs (a JSON document).

Both show the same numbers as the window's Statistics tab, from
:class:`~core.analysis.stats.ModelStats`: parameters, non-zeros, sparsity,
fully pruned rows, FLOPs dense and effective (with an example input), and
bytes dense and sparse (kept values plus a 1-bit mask).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from rich.table import Table

from core.analysis.stats import LayerStats, ModelStats

#: ``format`` and ``version`` of the JSON document.
STATS_FORMAT = "prunescope-stats"
STATS_VERSION = 1

_LAYER_PROPERTIES = ("pruned", "sparsity", "nonzeros", "row_sparsity", "col_sparsity")
_MODEL_PROPERTIES = ("prunable_params", "pruned", "nonzeros", "sparsity", "model_sparsity")


def stats_document(
    stats: ModelStats, *, model: str, input_shape: Sequence[int] | None
) -> dict[str, Any]:
    """The statistics as a JSON-friendly document (``prunescope stats --json``).

    ``totals`` holds the whole-model numbers, ``layers`` one object per
    prunable parameter; FLOPs are null without an example input.
    """
    totals: dict[str, Any] = {
        "params": stats.total_params,
        **{key: getattr(stats, key) for key in _MODEL_PROPERTIES},
        "flops_dense": stats.flops_dense,
        "flops_effective": stats.flops_effective,
        "bytes_dense": stats.bytes_dense,
        "bytes_sparse": stats.bytes_sparse,
        "compression": stats.compression if math.isfinite(stats.compression) else None,
    }
    return {
        "format": STATS_FORMAT,
        "version": STATS_VERSION,
        "model": model,
        "input_shape": None if input_shape is None else list(input_shape),
        "totals": totals,
        "layers": [_layer_document(layer) for layer in stats.layers],
    }


def _layer_document(layer: LayerStats) -> dict[str, Any]:
    fields = dataclasses.asdict(layer)
    fields["shape"] = list(layer.shape)
    fields.update({key: getattr(layer, key) for key in _LAYER_PROPERTIES})
    return fields


def layers_table(stats: ModelStats) -> Table:
    """One row per prunable parameter."""
    table = Table()
    table.add_column("Layer", overflow="fold")
    table.add_column("Type")
    table.add_column("Shape")
    for heading in ("Params", "Non-zeros", "Sparsity", "Pruned rows", "FLOPs", "Bytes"):
        table.add_column(heading, justify="right")
    for layer in stats.layers:
        table.add_row(
            layer.name,
            layer.module_type,
            "x".join(str(size) for size in layer.shape),
            f"{layer.params:,}",
            f"{layer.nonzeros:,}",
            f"{layer.sparsity:.1%}",
            f"{layer.zero_rows}/{layer.rows}",
            _flops_pair(layer.flops_effective, layer.flops_dense),
            _bytes_pair(layer.bytes_sparse, layer.bytes_dense),
        )
    return table


def totals_table(stats: ModelStats) -> Table:
    """The whole model: counts, sparsity, FLOPs, sizes and compression."""
    table = Table(show_header=False)
    table.add_column("What")
    table.add_column("Value", justify="right")
    compression = f"{stats.compression:.2f}x" if math.isfinite(stats.compression) else "-"
    rows = (
        ("Parameters", f"{stats.total_params:,}"),
        ("Prunable parameters", f"{stats.prunable_params:,}"),
        ("Pruned", f"{stats.pruned:,}"),
        ("Non-zeros", f"{stats.nonzeros:,}"),
        ("Sparsity (prunable)", f"{stats.sparsity:.2%}"),
        ("Sparsity (all parameters)", f"{stats.model_sparsity:.2%}"),
        ("FLOPs effective / dense", _flops_pair(stats.flops_effective, stats.flops_dense)),
        ("Size sparse / dense", _bytes_pair(stats.bytes_sparse, stats.bytes_dense)),
        ("Compression", compression),
    )
    for what, value in rows:
        table.add_row(what, value)
    return table


def human_bytes(count: int) -> str:
    """``1536`` as ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    """``1_234_567`` as ``"1.23M"``."""
    for threshold, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(count) >= threshold:
            return f"{count / threshold:.3g}{suffix}"
    return str(count)


def _flops_pair(effective: int | None, dense: int | None) -> str:
    if effective is None or dense is None:
        return "-"
    return f"{human_count(effective)} / {human_count(dense)}"


def _bytes_pair(sparse: int, dense: int) -> str:
    return f"{human_bytes(sparse)} / {human_bytes(dense)}"
