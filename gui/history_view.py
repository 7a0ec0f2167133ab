"""The undo history as a list: click a step to go back (or forward) to it."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView, QVBoxLayout, QWidget

from core.pruning.history import History

Index = QModelIndex | QPersistentModelIndex


class HistoryModel(QAbstractListModel):
    """Row 0 is the starting state; row i is the state after entry i."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._history: History | None = None

    def set_history(self, history: History | None) -> None:
        """Show ``history`` (call :meth:`refresh` after it changes)."""
        self.beginResetModel()
        self._history = history
        self.endResetModel()

    def refresh(self) -> None:
        """Re-read the history."""
        self.beginResetModel()
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._history is None:
            return 0
        return len(self._history.entries) + 1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if self._history is None or not index.isValid():
            return None
        row = index.row()
        cursor = self._history.cursor
        if role == Qt.ItemDataRole.DisplayRole:
            if row == 0:
                return self._history.start_label
            return f"{row}. {self._history.entries[row - 1].label}"
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(row == cursor)
            font.setItalic(row > cursor)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and row > cursor:
            return QPalette().color(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row == 0:
                return self._history.reach()
            if row > cursor:
                return "Undone: click to redo up to here"
            return "Current state" if row == cursor else "Click to go back to this state"
        return None


class HistoryView(QWidget):
    """List of operations; emits ``step_requested(cursor)`` when a row is clicked."""

    step_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = HistoryModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setAlternatingRowColors(True)
        self.list.clicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)

    def set_history(self, history: History | None) -> None:
        """Show ``history``."""
        self.model.set_history(history)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the history and highlight the current step."""
        self.model.refresh()
        history = self.model._history
        if history is not None:
            current = self.model.index(history.cursor)
            self.list.setCurrentIndex(current)
            self.list.scrollTo(current)

    def _clicked(self, index: QModelIndex) -> None:
        history = self.model._history
        if history is not None and index.row() != history.cursor:
            self.step_requested.emit(index.row())
