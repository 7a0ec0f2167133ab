"""A layout that wraps its widgets into rows, like words into lines.

The pattern lab's controls are laid out by :class:`FlowLayout`: as many rows
as the width needs, so that every control stays on screen in a narrow tab and
in presentation mode.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QLayout, QLayoutItem, QWidget


class FlowLayout(QLayout):
    """Lays widgets out left to right, wrapping into a new row when the width runs out.

    Each row's widgets are centred vertically; hidden widgets take no room.
    The height follows the width (``heightForWidth``), so a parent layout
    gives the controls as many rows as they need.
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 12, row_gap: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._row_gap = row_gap

    def addItem(self, item: QLayoutItem) -> None:
        """Append ``item`` (``addWidget`` ends here)."""
        self._items.append(item)

    def count(self) -> int:
        """How many items the layout holds."""
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        """The item at ``index``, or None."""
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        """Remove and return the item at ``index``, or None."""
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        """Only the height grows (with the number of rows)."""
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        """The height depends on the width."""
        return True

    def heightForWidth(self, width: int) -> int:
        """The height the rows take at ``width``."""
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        """Place the items in ``rect``."""
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        """One row of everything."""
        visible = [item.sizeHint() for item in self._items if not item.isEmpty()]
        width = sum(s.width() for s in visible) + self._spacing * max(0, len(visible) - 1)
        height = max((s.height() for s in visible), default=0)
        return QSize(width, height) + self._margins()

    def minimumSize(self) -> QSize:
        """As wide as the widest item."""
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        return size + self._margins()

    def _margins(self) -> QSize:
        m = self.contentsMargins()
        return QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, move: bool) -> int:
        area = rect.marginsRemoved(self.contentsMargins())
        rows: list[list[QLayoutItem]] = [[]]
        x = 0
        for item in (i for i in self._items if not i.isEmpty()):
            width = item.sizeHint().width()
            if rows[-1] and x + self._spacing + width > area.width():
                rows.append([])
                x = 0
            x += (self._spacing if rows[-1] else 0) + width
            rows[-1].append(item)
        y = area.y()
        for row in rows:
            height = max((i.sizeHint().height() for i in row), default=0)
            x = area.x()
            for item in row:
                hint = item.sizeHint()
                if move:
                    top = y + (height - hint.height()) // 2
                    item.setGeometry(
                        QRect(QPoint(x, top), QSize(min(hint.width(), area.width()), hint.height()))
                    )
                x += hint.width() + self._spacing
            y += height + self._row_gap
        margins = self.contentsMargins()
        return y - self._row_gap - rect.y() + margins.bottom()
