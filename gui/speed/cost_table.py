"""The cost lab's measurements as a Qt table model, one row per size, ratio and kind.

:class:`CostTableModel` shows :class:`core.speed.cost_lab.CostRow` rows as the
job measures them: the layer size, the pruning ratio, unstructured or
structured, what is left (non-zeros, FLOPs) and the measured latency of the
dense, masked, sparse-kernel and physically smaller layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from gui.speed.benchmark_table import format_ms
from gui.speed.row_table import ModelIndex, RowTableModel
from gui.widgets.formatting import format_count, format_si

if TYPE_CHECKING:
    from core.speed.cost_lab import CostRow

SIZE, RATIO, KIND, NONZEROS, FLOPS, DENSE, MASKED, SPARSE, SMALL = range(9)
HEADERS: tuple[str, ...] = (
    "Size",
    "Ratio",
    "Kind",
    "Non-zeros",
    "FLOPs",
    "Dense ms",
    "Masked ms",
    "Sparse kernel ms",
    "Smaller ms",
)
HEADER_TIPS: tuple[str, ...] = (
    "The Linear layer: size × size weights.",
    "Share of the weights pruned.",
    "Unstructured: single weights anywhere. Structured: whole output rows (neurons).",
    "Weights left non-zero.",
    "Floating-point operations the kept weights need for the batch (2 per multiply-add).",
    "The unpruned layer.",
    "The pruned layer with its zeros kept in a dense tensor: the same work as dense.",
    "Only the kept weights stored and multiplied (a sparse kernel); not run when nothing is "
    "pruned.",
    "Structured only: the layer rebuilt without the pruned rows (physically smaller).",
)
MS_COLUMNS = {DENSE: "dense_ms", MASKED: "masked_ms", SPARSE: "sparse_ms", SMALL: "small_ms"}
FASTER_TEXT = QColor(24, 110, 52)
MUTED_TEXT = QColor(150, 150, 150)


class CostTableModel(RowTableModel["CostRow"]):
    """Cost lab rows for a ``QTableView`` (see module docstring)."""

    headers = HEADERS
    header_tips = HEADER_TIPS

    def add_row(self, row: CostRow) -> None:
        """Append one measured row."""
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(row)
        self.endInsertRows()

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignLeft if column == KIND else Qt.AlignmentFlag.AlignRight
            return int(side | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and column in MS_COLUMNS:
            ms = getattr(row, MS_COLUMNS[column])
            if ms is None:
                return MUTED_TEXT
            if column in (SPARSE, SMALL) and ms < 0.9 * row.dense_ms:
                return FASTER_TEXT
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in MS_COLUMNS:
                ms = getattr(row, MS_COLUMNS[column])
                if ms is None:
                    return "Not measured for this kind of sparsity."
                if ms > 0:
                    return f"{row.dense_ms / ms:.2f}x the speed of dense"
            if column == NONZEROS:
                return f"{format_count(row.nonzeros)} of {format_count(row.size * row.size)}"
            return HEADER_TIPS[column]
        return None


def _display(row: CostRow, column: int) -> str:
    if column == SIZE:
        return f"{row.size}²"
    if column == RATIO:
        return f"{row.ratio:.0%}"
    if column == KIND:
        return row.kind
    if column == NONZEROS:
        return format_si(row.nonzeros)
    if column == FLOPS:
        return format_si(row.flops)
    return format_ms(getattr(row, MS_COLUMNS[column]))
