"""One method's column in the pattern lab's figure: title, weights, mask, caption.

:class:`MethodColumn` shows what one pruning method does to the lab's matrix:
a two-line header (with the method's summary as its tooltip), the pruned
weights and the mask as :class:`~gui.pattern_lab.matrix_view.MatrixView`
heatmaps, and a caption with the sparsity reached. A method that cannot run
on the matrix shows it faded and says why. The figure places the column.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsItem

from core.viz.pattern_figure import LEVELS, ColumnResult, sparsity_caption
from gui.pattern_lab.figure_layout import BandRows, text_width
from gui.pattern_lab.figure_text import CAPTION_PT, TITLE_PT, WrapLabel, set_label
from gui.pattern_lab.matrix_view import MatrixView
from gui.widgets.colormaps import ALARM_RGB, INK, MUTED, diverging_lut, hex_color, mask_lut


class MethodColumn:
    """One method's column in the figure: title, weights, mask, caption."""

    def __init__(self, key: str, parent: QGraphicsItem) -> None:
        self.key = key
        self.title = WrapLabel()
        self.weights = MatrixView(diverging_lut(), LEVELS, values=True)
        self.mask = MatrixView(mask_lut(), (0.0, 1.0), values=False)
        self.caption = WrapLabel()
        for item in self.items():
            item.setParentItem(parent)
        self.caption_text = ""
        self.enabled = True

    def items(self) -> list[QGraphicsItem]:
        """The column's graphics items, top to bottom (what a column export draws)."""
        return [self.title, self.weights.plot, self.mask.plot, self.caption]

    def set_tooltip(self, text: str) -> None:
        """Explain the method on hover over the header and both plots."""
        if text == self.title.toolTip():
            return
        for item in (self.title, self.weights.plot, self.mask.plot):
            item.setToolTip(text)

    def set_title(self, title: str, subtitle: str, scale: float) -> None:
        """Write the two-line header."""
        set_label(
            self.title,
            f"<b>{title}</b><br><span style='color:{MUTED}; font-size:{CAPTION_PT * scale}pt'>"
            f"{subtitle}</span>",
            size=f"{TITLE_PT * scale}pt",
            color=INK,
        )

    def show(self, matrix: torch.Tensor, result: ColumnResult, values: bool, scale: float) -> None:
        """Show the outcome of this column's method on ``matrix``."""
        self.enabled = result.mask is not None
        if result.mask is None:
            size = matrix.shape[0]
            self.weights.show_unavailable(size, matrix.numpy(), "")
            self.mask.show_unavailable(size, None, "not applicable")
            self.caption_text = "not applicable"
            alarm = f"<span style='color:{hex_color(ALARM_RGB)}'>{result.note}</span>"
            self._set_caption("not applicable", alarm, "", scale, MUTED)
            return
        keep = result.mask.numpy()
        self.weights.show((matrix * result.mask).numpy(), ~keep, values)
        self.mask.show(keep.astype(np.float32), None, False)
        self.caption_text = sparsity_caption(result.mask)
        headline, _, counts = self.caption_text.partition(": ")
        self._set_caption(headline, f"{counts} weights", result.note, scale, MUTED)

    def _set_caption(
        self, headline: str, counts: str, note: str, scale: float, note_color: str
    ) -> None:
        small = f"font-size:{CAPTION_PT * scale * 0.92:.1f}pt"
        set_label(
            self.caption,
            f"<b style='font-size:{TITLE_PT * scale:.1f}pt'>{headline}</b><br>{counts}<br>"
            f"<span style='color:{note_color}; {small}'>{note}</span>",
            size=f"{CAPTION_PT * scale}pt",
            color=INK,
        )

    def set_font_scale(self, scale: float) -> None:
        """Scale text drawn inside the plots."""
        self.weights.set_font_scale(scale)
        self.mask.set_font_scale(scale)

    def place(self, x: float, slot: float, side: float, rows: BandRows) -> None:
        """Put the column in the ``slot`` pixels wide from ``x``, on the band's ``rows``;
        its text may use half the gap to each neighbour."""
        left = x + (slot - side) / 2
        text = text_width(slot)
        text_x = x - (text - slot) / 2
        self.title.fit(text)
        self.caption.fit(text)
        self.title.setGeometry(QRectF(text_x, rows.header, text, rows.header_height))
        self.weights.plot.setGeometry(QRectF(left, rows.weights, side, side))
        self.mask.plot.setGeometry(QRectF(left, rows.mask, side, side))
        self.caption.setGeometry(QRectF(text_x, rows.caption, text, rows.caption_height))

    def widest_word(self) -> float:
        """The widest word of the header and caption (pixels)."""
        return max(self.title.widest_word(), self.caption.widest_word())
