"""How the speed panel names, explains and colours the benchmark's forms of a model.

The engine (:mod:`core.speed.benchmark`) measures a model in up to five
*forms*; these tables give each a short label, a tooltip that teaches what it
is, and one colour used by the table and every chart.
"""

from __future__ import annotations

from gui.widgets.colormaps import ACCENT_RGB, NEUTRAL_RGB, PRUNED_RGB

FORM_ORDER: tuple[str, ...] = ("dense", "masked", "sparse", "slim", "semi_structured")
"""The forms in the order the panel lists them (the engine's ``FORMS``)."""

FORM_LABELS: dict[str, str] = {
    "dense": "dense",
    "masked": "masked",
    "sparse": "sparse kernels",
    "slim": "slim",
    "semi_structured": "2:4",
}
"""Short names for tables and the legend."""

FORM_AXIS_LABELS: dict[str, str] = {**FORM_LABELS, "sparse": "sparse"}
"""Even shorter names for chart axes, where bars stand side by side."""

FORM_TIPS: dict[str, str] = {
    "dense": "The original model with every pruned weight restored: the baseline "
    "every speed-up is measured against.",
    "masked": "The session's model: pruned weights are zeros inside ordinary dense "
    "tensors. Multiplying by zero costs the same as any other number, so it runs "
    "as fast as dense.",
    "sparse": "Unstructured sparsity executed with sparse kernels (only the kept "
    "weights are stored and multiplied), for the Linear layers where that was "
    "measured faster on this machine.",
    "slim": "The model physically slimmed: pruned channels removed, so the layers "
    "are smaller dense layers. Faster in proportion to what was removed.",
    "semi_structured": "2:4 semi-structured sparsity (2 of every 4 weights zero) run "
    "by the sparse tensor cores of recent NVIDIA GPUs.",
}
"""What each form is, in plain words (table and chart tooltips)."""

FORM_COLORS: dict[str, tuple[int, int, int]] = {
    "dense": NEUTRAL_RGB,
    "masked": PRUNED_RGB,
    "sparse": (33, 113, 181),  # Blues #2171b5
    "slim": ACCENT_RGB,
    "semi_structured": (106, 81, 163),  # Purples #6a51a3
}
"""One colour per form, shared by the table's swatches and the charts."""


def form_label(form: str) -> str:
    """The short label of ``form`` (its own name when unknown)."""
    return FORM_LABELS.get(form, form)


def form_axis_label(form: str) -> str:
    """The chart-axis label of ``form``."""
    return FORM_AXIS_LABELS.get(form, form)


def form_rank(form: str) -> int:
    """Position of ``form`` in :data:`FORM_ORDER` (unknown forms last)."""
    return FORM_ORDER.index(form) if form in FORM_ORDER else len(FORM_ORDER)
