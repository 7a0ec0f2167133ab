"""A heatmap of one small matrix in the pattern lab's figure.

:class:`MatrixView` draws a matrix into a pyqtgraph ``PlotItem``: its cells
through a lookup table, a grid and frame, a cross on each pruned cell, and the
cell values when the cells are large enough to read them. A matrix a method
cannot prune is shown faded (or not at all) under a message.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

from core.viz.pattern_figure import VALUE_TEXT_MAX_SIZE, format_value
from gui.pattern_lab.figure_text import CAPTION_PT
from gui.widgets.colormaps import FRAME_RGB, GRID_RGB, MUTED, text_color_on

CROSS_RGB = (128, 128, 128)
MIN_VALUE_CELL_PX = 15.0
"""Cell values are written only into cells at least this many pixels wide."""


class MatrixView:
    """A heatmap of a small matrix in a PlotItem: cells, grid, pruned crosses, values."""

    def __init__(self, lut: np.ndarray, levels: tuple[float, float], values: bool) -> None:
        self.plot = pg.PlotItem()
        self._levels = levels
        self._with_values = values
        self._size = 0
        self._font_scale = 1.0
        self._texts: list[pg.TextItem] = []
        self._text_count = 0
        self._values_fit = True
        self._values_on = False
        self._configure_plot()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(lut)
        self.plot.addItem(self.image)
        self._grid = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(GRID_RGB, width=1))
        self.plot.addItem(self._grid)
        self._frame = pg.PlotCurveItem(pen=pg.mkPen(FRAME_RGB, width=1.5))
        self.plot.addItem(self._frame)
        self._crosses = pg.ScatterPlotItem(
            symbol="x", pxMode=False, size=0.42, brush=pg.mkBrush(CROSS_RGB), pen=None
        )
        self.plot.addItem(self._crosses)
        self._placeholder = pg.TextItem("", color=MUTED, anchor=(0.5, 0.5))
        self.plot.addItem(self._placeholder)
        self.plot.getViewBox().sigResized.connect(self._fit_fonts)

    def _configure_plot(self) -> None:
        plot = self.plot
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setDefaultPadding(0.0)

    def set_size(self, size: int) -> None:
        """Prepare grid, view range and value texts for a ``size`` x ``size`` matrix."""
        if size == self._size:
            return
        self._size = size
        ticks = np.arange(size + 1, dtype=float)
        zeros, ends = np.zeros_like(ticks), np.full_like(ticks, size)
        xs = np.concatenate([np.column_stack([ticks, ticks]), np.column_stack([zeros, ends])])
        ys = np.concatenate([np.column_stack([zeros, ends]), np.column_stack([ticks, ticks])])
        self._grid.setData(xs.ravel(), ys.ravel())
        self._frame.setData([0, size, size, 0, 0], [0, 0, size, size, 0])
        self.plot.setRange(xRange=(0, size), yRange=(0, size), padding=0.0)
        self._placeholder.setPos(size / 2, size / 2)
        self._place_texts(size if self._with_values and size <= VALUE_TEXT_MAX_SIZE else 0)
        self._fit_fonts()

    def _place_texts(self, size: int) -> None:
        """Put one value text in each cell, reusing (and hiding) a pool of TextItems."""
        needed = size * size
        while len(self._texts) < needed:
            item = pg.TextItem("", anchor=(0.5, 0.5))
            self.plot.addItem(item)
            self._texts.append(item)
        for index, item in enumerate(self._texts):
            row, col = divmod(index, size) if size else (0, 0)
            item.setPos(col + 0.5, row + 0.5)
            item.setText("")
            item.setVisible(index < needed and self._values_fit)
        self._text_count = needed

    def show(self, image: np.ndarray, pruned: np.ndarray | None, values: bool) -> None:
        """Show ``image`` (float32), cross out ``pruned`` cells, optionally write values."""
        self.set_size(image.shape[0])
        self.image.setImage(np.ascontiguousarray(image, dtype=np.float32), levels=self._levels)
        self.image.setOpacity(1.0)
        self._placeholder.setText("")
        self._show_crosses(pruned)
        self._show_values(image, pruned, values)

    def show_unavailable(self, size: int, image: np.ndarray | None, message: str) -> None:
        """Show ``image`` faded (or nothing) on a ``size`` grid, with ``message`` across it."""
        self.set_size(size)
        if image is None:
            self.image.clear()
        else:
            self.image.setImage(np.ascontiguousarray(image, dtype=np.float32), levels=self._levels)
            self.image.setOpacity(0.3)
        self._placeholder.setText(message)
        self._show_crosses(None)
        self._show_values(None, None, False)

    def _show_crosses(self, pruned: np.ndarray | None) -> None:
        if pruned is None or not pruned.any():
            self._crosses.setData([], [])
            return
        rows, cols = np.nonzero(pruned)
        self._crosses.setData(cols + 0.5, rows + 0.5)

    def _show_values(self, image: np.ndarray | None, pruned: np.ndarray | None, on: bool) -> None:
        self._values_on = on and image is not None
        for index, item in enumerate(self._texts[: self._text_count]):
            row, col = divmod(index, self._size)
            hidden = image is None or not on or (pruned is not None and pruned[row, col])
            if hidden:
                item.setText("")
                continue
            value = float(image[row, col])
            item.setText(format_value(value))
            item.setColor(text_color_on(value, self._levels[1]))

    def set_font_scale(self, scale: float) -> None:
        """Scale the placeholder text (values follow the cell size and hide in
        cells under :data:`MIN_VALUE_CELL_PX`)."""
        self._font_scale = scale
        self._fit_fonts()

    def _fit_fonts(self) -> None:
        if not self._size:
            return
        cell_px = self.plot.getViewBox().width() / self._size
        fit = cell_px >= MIN_VALUE_CELL_PX
        if fit != self._values_fit:
            self._values_fit = fit
            for index, item in enumerate(self._texts):
                item.setVisible(fit and index < self._text_count)
        font = QFont()
        font.setPixelSize(max(7, int(cell_px * 0.36)))
        for item in self._texts:
            item.setFont(font)
        note = QFont()
        note.setPointSizeF(CAPTION_PT * self._font_scale)
        self._placeholder.setFont(note)

    def values_shown(self) -> bool:
        """Whether values are written into the cells (on, and the cells are large enough)."""
        return self._values_on and self._text_count > 0 and self._values_fit

    def displayed(self) -> np.ndarray | None:
        """The array currently in the image (None when cleared)."""
        data = self.image.image
        return None if data is None else np.array(data, copy=True)
