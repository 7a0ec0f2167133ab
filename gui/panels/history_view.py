"""The undo history as a list: click a step to go back (or forward) to it."""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from core.pruning.history import History
from gui.session.measurements import measured_accuracy

Index = QModelIndex | QPersistentModelIndex
LABEL_ROLE = Qt.ItemDataRole.UserRole + 1
"""A row's label without the accuracy."""
ACCURACY_ROLE = Qt.ItemDataRole.UserRole + 2
"""A row's measured accuracy as text (None when not measured)."""


class HistoryModel(QAbstractListModel):
    """Row 0 is the starting state; row i is the state after entry i.

    A step where accuracy was measured (an evaluation, or the digits demos'
    automatic test accuracy) shows it after its label: ``2. L1 … · 97.2%``.
    """

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
        if role in (Qt.ItemDataRole.DisplayRole, LABEL_ROLE):
            label = (
                self._history.start_label
                if row == 0
                else f"{row}. {self._history.entries[row - 1].label}"
            )
            accuracy = self.accuracy(row) if role == Qt.ItemDataRole.DisplayRole else None
            return label if accuracy is None else f"{label}  ·  {accuracy}"
        if role == ACCURACY_ROLE:
            return self.accuracy(row)
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            font.setBold(row == cursor)
            font.setItalic(row > cursor)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and row > cursor:
            return QPalette().color(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.ToolTipRole:
            if row == 0:
                tip = self._history.reach()
            elif row > cursor:
                tip = "Undone: click to redo up to here"
            else:
                tip = "Current state" if row == cursor else "Click to go back to this state"
            if row:
                tip = f"{self.data(index, LABEL_ROLE)}\n{tip}"
            measured = measured_accuracy(self._history.measurements(row))
            if measured is not None:
                what = measured.summary or f"top-1 {measured.text} on the test split"
                tip += f"\nMeasured here: {what}"
            return tip
        return None

    def accuracy(self, row: int) -> str | None:
        """The accuracy shown beside a row (``97.2%``, ``val 96.1%``), None if not measured."""
        if self._history is None or not 0 <= row <= len(self._history.entries):
            return None
        measured = measured_accuracy(self._history.measurements(row))
        return None if measured is None else measured.text


class AccuracyDelegate(QStyledItemDelegate):
    """Draws a row's label elided on the left and its accuracy (if measured) on the right,
    so a long label never hides the figure: rows are as wide as the list (the full
    label is in the tooltip)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(min(hint.width(), 40), hint.height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        accuracy = index.data(ACCURACY_ROLE)
        if not accuracy:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        label = str(index.data(LABEL_ROLE))
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        foreground = index.data(Qt.ItemDataRole.ForegroundRole)
        if selected:
            ink = opt.palette.color(QPalette.ColorRole.HighlightedText)
        elif isinstance(foreground, QColor | QBrush):
            ink = QBrush(foreground).color()
        else:
            ink = opt.palette.color(QPalette.ColorRole.Text)
        metrics = opt.fontMetrics
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, opt.widget) + 2
        rect = opt.rect.adjusted(margin, 0, -margin, 0)
        figure_width = metrics.horizontalAdvance(accuracy)
        label_rect = rect.adjusted(0, 0, -(figure_width + 3 * margin), 0)
        elided = metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_rect.width())
        painter.save()
        painter.setFont(opt.font)
        painter.setPen(ink)
        align = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(label_rect, align | Qt.AlignmentFlag.AlignLeft, elided)
        painter.drawText(rect, align | Qt.AlignmentFlag.AlignRight, accuracy)
        painter.restore()


class HistoryView(QWidget):
    """List of operations; emits ``step_requested(cursor)`` when a row is clicked."""

    step_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = HistoryModel(self)
        self.list = QListView(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(AccuracyDelegate(self.list))
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
