"""The pattern lab figure's text: point sizes, labels that wrap, and a quiet ``setText``.

:class:`WrapLabel` is the figure's text item (titles, captions, row labels and
the legend's words): it wraps to the width the figure gives it and reports the
size it then takes. :func:`set_label` skips rewriting a label whose text did not
change, which keeps slider drags cheap.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QSizeF, Qt
from PySide6.QtGui import QFont, QTextOption

TITLE_PT, CAPTION_PT, FIGURE_TITLE_PT = 11.0, 9.5, 12.5


def set_label(label: pg.LabelItem, text: str, **style: object) -> None:
    """``label.setText(text, **style)``, skipped when nothing changed (slider drags)."""
    key = (text, tuple(sorted(style.items())))
    if getattr(label, "_last_text", None) == key:
        return
    label._last_text = key  # type: ignore[attr-defined]
    label.setText(text, **style)


class WrapLabel(pg.LabelItem):
    """A LabelItem whose text wraps to the width it is given, every line aligned.

    pyqtgraph sizes a LabelItem to its unwrapped text; here :meth:`fit` wraps
    the text to a width and returns the size it then takes, and the label has
    no minimum size, so the figure can place it exactly.
    """

    def __init__(self, justify: str = "center", angle: float = 0) -> None:
        self._wrap = -1.0
        super().__init__("", justify=justify, angle=angle)
        self.item.document().setDocumentMargin(1)

    def setText(self, text: str, **style: object) -> None:
        """Set the text (lines aligned like the label), keeping the wrap width."""
        document = self.item.document()
        option = document.defaultTextOption()
        align = {"left": Qt.AlignmentFlag.AlignLeft, "right": Qt.AlignmentFlag.AlignRight}
        option.setAlignment(align.get(str(self.opts["justify"]), Qt.AlignmentFlag.AlignHCenter))
        option.setWrapMode(QTextOption.WrapMode.WordWrap)  # never inside a word
        document.setDefaultTextOption(option)
        super().setText(text, **style)
        self.fit(self._wrap)

    def fit(self, width: float) -> QSizeF:
        """Wrap the text's lines at ``width`` pixels (-1: no wrapping); returns the
        size the label needs (for a turned label, its turned size)."""
        self._wrap = width
        self.item.setTextWidth(-1)
        natural = self.item.document().idealWidth()
        self.item.setTextWidth(natural if width <= 0 or natural <= width else width)
        self.item.setTextWidth(self.item.document().idealWidth())
        self.resizeEvent(None)
        return self.itemRect().size()

    def widest_word(self) -> float:
        """The width of the widest word: the least width the text fits without clipping."""
        wrap = self._wrap
        self.item.setTextWidth(1)
        width = self.item.document().idealWidth()
        self.fit(wrap)
        return width

    def updateMin(self) -> None:
        """No minimum size: the figure gives each label the room its text needs."""
        super().updateMin()
        self.setMinimumSize(0, 0)
        self.setPreferredSize(0, 0)


def scaled_font(scale: float) -> QFont:
    """The caption font, ``scale`` times its normal point size."""
    font = QFont()
    font.setPointSizeF(CAPTION_PT * scale)
    return font
