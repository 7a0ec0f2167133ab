"""Small icons drawn in code: one per layer type, so no image files are needed."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

#: (letter, colour) per layer type family.
_STYLES: dict[str, tuple[str, str]] = {
    "Linear": ("L", "#2f6db5"),
    "Conv": ("C", "#2e8b57"),
    "ConvTranspose": ("T", "#8a5a9e"),
    "Embedding": ("E", "#c07a1a"),
    "BatchNorm": ("N", "#7f8c8d"),
    "module": ("M", "#95a5a6"),
    "parameter": ("P", "#5d6d7e"),
}


def family(type_name: str) -> str:
    """The icon family of a module type name (``Conv2d`` → ``Conv``)."""
    for prefix in ("ConvTranspose", "Conv", "Linear", "Embedding", "BatchNorm"):
        if type_name.startswith(prefix):
            return prefix
    return "module"


@cache
def layer_icon(kind: str) -> QIcon:
    """A rounded square with a letter, coloured by layer family."""
    letter, colour = _STYLES.get(kind, _STYLES["module"])
    icon = QIcon()
    for size in (16, 24, 32):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(QColor(colour))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(QRectF(1, 1, size - 2, size - 2), size / 5, size / 5)
        font = QFont()
        font.setBold(True)
        font.setPixelSize(int(size * 0.62))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        painter.drawText(QRectF(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, letter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon
