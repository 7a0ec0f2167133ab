"""A read-only Qt table model over a list of result rows, with headers and their tips.

The benchmark and cost-lab tables differ in their columns and colours only;
this base holds the rows, answers Qt's size and header questions, and gives
tests and callers :meth:`RowTableModel.cell_text`. Subclasses set
:attr:`headers` and :attr:`header_tips` and implement ``data``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

ModelIndex = QModelIndex | QPersistentModelIndex
Row = TypeVar("Row")


class RowTableModel(QAbstractTableModel, Generic[Row]):
    """Rows of one kind, one per table row (see module docstring)."""

    headers: ClassVar[tuple[str, ...]] = ()
    header_tips: ClassVar[tuple[str, ...]] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []

    @property
    def rows(self) -> tuple[Row, ...]:
        """The rows shown, in table order."""
        return tuple(self._rows)

    def set_rows(self, rows: tuple[Row, ...] | list[Row]) -> None:
        """Show exactly ``rows``, in this order."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def clear(self) -> None:
        """Remove every row."""
        self.set_rows([])

    def cell_text(self, row: int, column: int) -> str:
        """What the table shows at ``(row, column)``."""
        value = self.data(self.index(row, column))
        return "" if value is None else str(value)

    # -- Qt model API ---------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.headers)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.headers):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.headers[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.header_tips[section]
        return None
