"""The legend of the pattern lab's figure: the weights' colour bar and the mask's key.

:class:`FigureLegend` is three pieces of the figure: a "weight" header, a colour
bar of the weights' diverging colour map (-2 to 2) beside the weights row, and
the key of the mask (kept, pruned, × = zeroed) beside the mask row. The figure
places it in the free slot of its last band, or in a column of its own.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsItem

from core.viz.pattern_figure import LEVELS
from gui.pattern_lab.figure_layout import BandRows
from gui.pattern_lab.figure_text import CAPTION_PT, WrapLabel, scaled_font, set_label
from gui.widgets.colormaps import (
    FRAME_RGB,
    INK,
    KEPT_RGB,
    MUTED,
    PRUNED_RGB,
    diverging_colormap,
    hex_color,
)


class FigureLegend:
    """The figure's legend: header, colour bar and mask key, children of ``parent``."""

    def __init__(self, parent: QGraphicsItem) -> None:
        self.header = WrapLabel(justify="left")
        self.colorbar = pg.ColorBarItem(
            values=LEVELS,
            colorMap=diverging_colormap(),
            interactive=False,
            width=14,
            pen=pg.mkPen(FRAME_RGB),
        )
        axis = self.colorbar.getAxis("right")
        axis.setTextPen(pg.mkPen(INK))
        axis.setPen(pg.mkPen(FRAME_RGB))
        axis.setTicks([[(v, f"{v:g}") for v in (-2, -1, 0, 1, 2)]])
        self.colorbar.setMinimumHeight(0)
        self.mask_key = WrapLabel(justify="left")
        for item in self.items():
            item.setParentItem(parent)

    def items(self) -> list[QGraphicsItem]:
        """The legend's graphics items: header, colour bar, mask key."""
        return [self.header, self.colorbar, self.mask_key]

    def set_font_scale(self, scale: float) -> None:
        """Scale the colour bar's tick labels."""
        self.colorbar.getAxis("right").setStyle(tickFont=scaled_font(scale))

    def write(self, scale: float) -> None:
        """Write the header and the mask key, text ``scale`` times normal."""
        small = f"{CAPTION_PT * scale}pt"
        set_label(self.header, "weight", size=small, color=MUTED)
        swatch = f"font-size:{1.5 * CAPTION_PT * scale:.1f}pt"
        set_label(
            self.mask_key,
            f"<span style='color:{hex_color(KEPT_RGB)}; {swatch}'>■</span> kept<br>"
            f"<span style='color:{hex_color(PRUNED_RGB)}; {swatch}'>■</span> pruned<br><br>"
            f"<span style='color:{MUTED}'>× = zeroed</span>",
            size=small,
            color=INK,
        )

    def width(self) -> float:
        """The width the legend needs (pixels): its widest piece, text unwrapped."""
        texts = (self.header.fit(-1).width(), self.mask_key.fit(-1).width())
        return max(self.colorbar.minimumWidth(), self.colorbar.preferredWidth(), *texts)

    def place(self, x: float, width: float, side: float, rows: BandRows) -> None:
        """Put the legend ``width`` pixels wide from ``x`` beside a band's ``rows``:
        the header above the weights, the colour bar beside them (``side`` pixels
        high), the mask key beside the mask."""
        header = self.header.fit(-1).height()
        bottom = rows.header + rows.header_height
        self.header.setGeometry(QRectF(x, bottom - header, width, header))
        self.colorbar.setGeometry(QRectF(x, rows.weights, width, side))
        key = self.mask_key.fit(-1).height()
        self.mask_key.setGeometry(QRectF(x, rows.mask, width, key))
