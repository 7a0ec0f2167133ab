"""The benchmark's results as a Qt table model, one row per form and batch size.

:class:`BenchmarkTableModel` holds :class:`core.speed.benchmark.FormResult`
rows as they arrive from the running job (sorted by batch size, then form) and
shows them in a ``QTableView``: median latency and its spread, throughput,
speed-up against the dense original, the output check against the masked model,
FLOPs and parameters. Forms that could not run are greyed with their reason,
forms whose outputs differed are red: they were not timed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from gui.speed.forms import FORM_COLORS, FORM_TIPS, form_label, form_rank
from gui.speed.row_table import ModelIndex, RowTableModel
from gui.widgets.formatting import format_count, format_si

if TYPE_CHECKING:
    from core.speed.benchmark import FormResult

(FORM, BATCH, MEDIAN, IQR, THROUGHPUT, SPEEDUP, DIFF, FLOPS, PARAMS, NONZERO, NOTE) = range(11)
HEADERS: tuple[str, ...] = (
    "Form",
    "Batch",
    "Median ms",
    "IQR ms",
    "Samples/s",
    "Speed-up",
    "Max |diff|",
    "FLOPs",
    "Params",
    "Non-zero",
    "Note",
)
HEADER_TIPS: tuple[str, ...] = (
    "Which form of the model was run (hover a row for what it is).",
    "Samples per forward pass.",
    "Median time of one forward pass of the whole batch, in milliseconds.",
    "Interquartile range of the timed runs (spread; small is steady).",
    "Samples per second: batch / median time.",
    "Dense median / this median at the same batch: above 1 is faster than the original.",
    "Largest absolute difference of this form's outputs from the masked model's, checked "
    "before any timing. A form that differs beyond the tolerance is not timed.",
    "Floating-point operations of one forward pass (2 per multiply-add), counted by "
    "torch's FlopCounterMode. Compare the FLOPs cut with the time cut.",
    "Parameters of this form.",
    "Parameters that are not exactly zero.",
    "Why a form is unavailable or failed; for a timed form, what was done (e.g. which "
    "layers run sparse).",
)
NUMERIC = frozenset({BATCH, MEDIAN, IQR, THROUGHPUT, SPEEDUP, DIFF, FLOPS, PARAMS, NONZERO})
MUTED_TEXT = QColor(150, 150, 150)
FAILED_TEXT = QColor(146, 26, 18)
FASTER_TEXT = QColor(24, 110, 52)


# -- formatting -----------------------------------------------------------------------
def format_ms(ms: float | None) -> str:
    """``0.412``, ``12.3``, ``1,234``; ``–`` for None."""
    if ms is None or not math.isfinite(ms):
        return "–"
    if ms < 10:
        return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}"
    return f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def format_speedup(speedup: float | None) -> str:
    """``1.85x``, ``12x``; ``–`` for None."""
    if speedup is None or not math.isfinite(speedup):
        return "–"
    return f"{speedup:.2f}x" if speedup < 10 else f"{speedup:.0f}x"


def format_diff(diff: float | None) -> str:
    """``2.1e-07``, ``0``; ``–`` for None."""
    if diff is None:
        return "–"
    return "0" if diff == 0 else f"{diff:.1e}"


def format_rate(rate: float | None) -> str:
    """Samples per second: ``12.3 k``, ``850``; ``–`` for None."""
    if rate is None or not math.isfinite(rate):
        return "–"
    return format_si(round(rate)) if rate >= 1000 else f"{rate:.3g}"


def result_state(row: FormResult) -> str:
    """``"timed"``, ``"failed"`` (it ran, but its outputs were off: not timed) or
    ``"unavailable"`` (it could not run here)."""
    if row.median_ms is not None:
        return "timed"
    if row.max_abs_diff is not None or row.reason.startswith("failed"):
        return "failed"
    return "unavailable"


def sort_key(row: FormResult) -> tuple[int, int]:
    """Rows by batch size, then in the panel's form order."""
    return row.batch_size, form_rank(row.form)


class BenchmarkTableModel(RowTableModel["FormResult"]):
    """Benchmark rows for a ``QTableView`` (see module docstring)."""

    headers = HEADERS
    header_tips = HEADER_TIPS

    def add_result(self, result: FormResult) -> None:
        """Show ``result`` (replacing an earlier row of the same form and batch)."""
        for i, row in enumerate(self._rows):
            if (row.form, row.batch_size) == (result.form, result.batch_size):
                self._rows[i] = result
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(HEADERS) - 1))
                return
        position = sum(1 for row in self._rows if sort_key(row) <= sort_key(result))
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.insert(position, result)
        self.endInsertRows()

    def set_results(self, results: tuple[FormResult, ...] | list[FormResult]) -> None:
        """Show exactly ``results`` (sorted)."""
        self.set_rows(sorted(results, key=sort_key))

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, column = self._rows[index.row()], index.column()
        state = result_state(row)
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(row, column, state)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(row, column, state)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            right = column in NUMERIC
            side = Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if state == "unavailable":
                return MUTED_TEXT
            if state == "failed":
                return FAILED_TEXT
            if column == SPEEDUP and row.speedup is not None and row.speedup >= 1.1:
                return FASTER_TEXT
            return None
        if role == Qt.ItemDataRole.DecorationRole and column == FORM:
            rgb = FORM_COLORS.get(row.form)
            if rgb is None:
                return None
            color = QColor(*rgb)
            if state != "timed":
                color.setAlpha(70)
            return color
        return None


def _display(row: FormResult, column: int, state: str) -> str:
    if column == FORM:
        return form_label(row.form)
    if column == BATCH:
        return str(row.batch_size)
    if column == NOTE:
        return row.note if state == "timed" else row.reason
    if state == "unavailable" and not (column in (PARAMS, NONZERO) and row.params):
        return "–"
    texts = {
        MEDIAN: lambda: format_ms(row.median_ms),
        IQR: lambda: format_ms(row.iqr_ms),
        THROUGHPUT: lambda: format_rate(row.throughput),
        SPEEDUP: lambda: format_speedup(row.speedup),
        DIFF: lambda: format_diff(row.max_abs_diff),
        FLOPS: lambda: format_si(row.flops),
        PARAMS: lambda: format_si(row.params),
        NONZERO: lambda: format_si(row.nonzero_params),
    }
    return texts[column]()


def _tooltip(row: FormResult, column: int, state: str) -> str:
    head = f"{form_label(row.form)}, batch {row.batch_size}"
    if state == "unavailable":
        return f"{head}: unavailable — {row.reason}"
    if state == "failed":
        return f"{head}: not timed — {row.reason}"
    if column == FLOPS:
        return f"{head}: {format_count(row.flops)} FLOPs per forward pass"
    if column == DIFF and row.form == "dense":
        return (
            f"{head}: the original is not pruned, so its outputs differ from the masked "
            "model's by design; it is the baseline, not checked."
        )
    if column in (PARAMS, NONZERO):
        return f"{head}: {format_count(row.nonzero_params)} of {format_count(row.params)} non-zero"
    if column == FORM:
        return f"{head}\n{FORM_TIPS.get(row.form, '')}"
    if column == NOTE:
        return row.note or HEADER_TIPS[NOTE]
    return f"{head}: {HEADER_TIPS[column]}"
