"""The model tree's Sparsity column drawn as an inline bar behind its percentage.

The bar's length is the row's :data:`~gui.panels.parameter_tree_model.SPARSITY_ROLE`.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem

from gui.panels.parameter_tree_model import SPARSITY_ROLE, Index


class SparsityBarDelegate(QStyledItemDelegate):
    """Draws sparsity as a bar behind the percentage text."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        sparsity = index.data(SPARSITY_ROLE)
        if isinstance(sparsity, float):
            rect: QRect = option.rect.adjusted(2, 3, -2, -3)
            painter.save()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#eceff1"))
            painter.drawRect(rect)
            colour = QColor("#c0392b") if sparsity >= 1.0 else QColor("#e67e22")
            colour.setAlpha(150)
            painter.setBrush(colour)
            painter.drawRect(
                QRect(rect.left(), rect.top(), int(rect.width() * sparsity), rect.height())
            )
            painter.restore()
        super().paint(painter, option, index)
