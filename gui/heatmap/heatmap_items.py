"""pyqtgraph pieces of :class:`gui.heatmap.heatmap.HeatmapView`: colour maps, colours, items, axes.

Shared colour maps and LUT size, the index axis, the RGB32 image item and small
styling helpers, kept apart from the view's reduction and painting logic.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QImage

from gui.widgets.colormaps import PRUNED_RGB, diverging_colormap, hex_color, mask_colormap

#: Shared colour maps, so heatmaps, the pattern lab and plots agree.
WEIGHTS_COLORMAP = diverging_colormap()

#: LUT entries: odd, so that 0 on symmetric levels hits the white centre exactly.
LUT_SIZE = 255

#: Outside the matrix (a neutral grey that no colour map uses) and the matrix frame.
OUTSIDE_COLOR = (200, 200, 200)
FRAME_COLOR = (90, 90, 90)

MASK_COLORMAP = mask_colormap()

#: Pruned cells of an effective-weights view: the mask's "pruned" dark slate, a
#: colour the diverging map does not use (its zero is white, like tiny weights).
PRUNED_CELL_COLOR = PRUNED_RGB

#: The legend beside the colour bar of a view that marks pruned cells.
PRUNED_LEGEND_HTML = (
    f'<span style="font-size: 8pt"><span style="color: {hex_color(PRUNED_RGB)}; '
    'font-size: 11pt">&#9632;</span> pruned</span>'
)
PRUNED_LEGEND_TIP = "Cells shown in dark slate are pruned (0), apart from kept weights near 0."

#: Colour-bar ticks for masks.
MASK_TICKS = [[(0.0, "pruned"), (0.5, "50%"), (1.0, "kept")]]


def let_shrink(label: pg.LabelItem) -> None:
    """Keep a label's text from setting its minimum width (long hover texts or titles
    would otherwise widen one of three linked views, so they no longer line up)."""
    update_min = label.updateMin

    def update_height_only() -> None:
        update_min()
        label.setMinimumWidth(0)

    label.updateMin = update_height_only  # type: ignore[method-assign]


class RGB32ImageItem(pg.ImageItem):
    """An ImageItem that paints an RGB32 copy of its colour-mapped image.

    pyqtgraph turns a float image and a LUT of at most 256 colours into an
    Indexed8 QImage, which Qt converts again on every paint (~1.1 ms at 820²);
    converting once per render makes each later paint ~4x cheaper.
    """

    def render(self) -> None:
        """Render as pyqtgraph does, then convert an indexed result to RGB32."""
        super().render()
        if self.qimage is not None and self.qimage.format() == QImage.Format.Format_Indexed8:
            self.qimage = self.qimage.convertToFormat(QImage.Format.Format_RGB32)


class IndexAxis(pg.AxisItem):
    """An axis of weight indices: integer ticks, none outside ``[0, extent]``."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.extent: int | None = None

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        """pyqtgraph's ticks, keeping whole numbers within the matrix."""
        levels = super().tickValues(minVal, maxVal, size)
        upper = math.inf if self.extent is None else self.extent
        return [
            (spacing, [v for v in values if 0 <= v <= upper and float(v).is_integer()])
            for spacing, values in levels
        ]


def style_axis(axis: pg.AxisItem, color: object) -> None:
    """Colour an axis and keep its ticks to major and minor levels."""
    axis.setPen(color)
    axis.setTextPen(color)
    # Major and minor ticks only: the third level added ~30 unlabelled ticks per
    # axis and about a third of the axes' paint time.
    axis.setStyle(maxTickLevel=1)
