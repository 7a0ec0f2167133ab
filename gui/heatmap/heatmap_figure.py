"""The pyqtgraph figure of a :class:`gui.heatmap.heatmap.HeatmapView`.

:class:`HeatmapFigure` builds and updates the items in the view's layout: the
plot with its index axes, the image, the pruned-cell overlay, the matrix frame,
the kernel-grid separators, the colour bar with its "pruned" legend, and the
text line under the plot. It knows nothing of reductions or hover text.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGraphicsTextItem

from core.viz.display import Tiling
from gui.heatmap.heatmap_items import (
    FRAME_COLOR,
    LUT_SIZE,
    MASK_COLORMAP,
    MASK_TICKS,
    OUTSIDE_COLOR,
    PRUNED_CELL_COLOR,
    PRUNED_LEGEND_HTML,
    PRUNED_LEGEND_TIP,
    WEIGHTS_COLORMAP,
    IndexAxis,
    RGB32ImageItem,
    let_shrink,
    style_axis,
)
from gui.heatmap.heatmap_reduce import pruned_overlay

#: Width of the colour-bar axis (fixed, so views line up whatever the labels).
BAR_AXIS_WIDTH = 52
#: Width of the row-index axis (room for 5-digit indices).
ROW_AXIS_WIDTH = 58

#: Kernel-grid separators are drawn when a block spans at least this many screen pixels.
GRID_MIN_PIXELS = 5

#: ... and when there are at most this many separator lines.
GRID_MAX_LINES = 8192

#: Opacity of the image while the matrix is busy elsewhere.
BUSY_OPACITY = 0.35


class HeatmapFigure:
    """The items of one heatmap, added to ``widget``'s layout.

    Args:
        widget: the layout widget to build in (row 0: plot and colour bar, row 1: label).
        title: shown above the plot.
    """

    def __init__(self, widget: pg.GraphicsLayoutWidget, title: str) -> None:
        palette = widget.palette()
        self.foreground = palette.color(QPalette.ColorRole.Text)
        widget.setBackground(palette.color(QPalette.ColorRole.Base))
        widget.ci.layout.setContentsMargins(4, 4, 4, 4)
        widget.ci.layout.setSpacing(2)
        self.plot: pg.PlotItem = widget.addPlot(row=0, col=0)
        self._setup_plot(title)
        self.image = RGB32ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        # Over the image: pixels that keep no weight, in the pruned colour.
        self.pruned_image = pg.ImageItem(axisOrder="row-major")
        self.pruned_image.setZValue(1)
        self.plot.addItem(self.pruned_image)
        self.kept: np.ndarray | None = None
        """Kept fraction per pixel of the image shown, where pruned cells are marked."""
        self.marks_pruned = False
        self._frame = pg.PlotCurveItem(pen=pg.mkPen(FRAME_COLOR, width=1))
        self._frame.setZValue(10)
        self.plot.addItem(self._frame)
        self._grid = pg.PlotCurveItem(pen=pg.mkPen((60, 60, 60, 150), width=1), connect="pairs")
        self._grid.setZValue(9)
        self._grid_block: tuple[int, int] | None = None
        self.plot.addItem(self._grid)
        self.bar = pg.ColorBarItem(
            values=(-1.0, 1.0),
            colorMap=WEIGHTS_COLORMAP,
            interactive=False,
            width=14,
            pen=self.foreground,
            colorMapMenu=False,
        )
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.image.setLookupTable(WEIGHTS_COLORMAP.getLookupTable(nPts=LUT_SIZE))
        style_axis(self.bar.axis, self.foreground)
        self.bar.axis.setStyle(hideOverlappingLabels=False)
        self.bar.axis.setWidth(BAR_AXIS_WIDTH)
        # Under the colour bar, outside any layout: the linked views keep equal boxes.
        self.pruned_legend = QGraphicsTextItem(self.bar)
        self.pruned_legend.setDefaultTextColor(self.foreground)
        self.pruned_legend.setHtml(PRUNED_LEGEND_HTML)
        self.pruned_legend.setToolTip(PRUNED_LEGEND_TIP)
        self.pruned_legend.setVisible(False)
        self.bar.geometryChanged.connect(self._place_pruned_legend)
        self.label = pg.LabelItem(justify="left", size="9pt", color=self.foreground)
        let_shrink(self.label)
        widget.addItem(self.label, row=1, col=0)

    def _setup_plot(self, title: str) -> None:
        plot = self.plot
        for name in ("left", "bottom"):
            plot.setAxisItems({name: IndexAxis(name)})
        let_shrink(plot.titleLabel)
        self.set_title(title)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setDefaultPadding(0.0)
        plot.vb.setBackgroundColor(OUTSIDE_COLOR)
        for name, label in (("left", "row"), ("bottom", "column")):
            axis = plot.getAxis(name)
            axis.setLabel(label, color=self.foreground.name())
            style_axis(axis, self.foreground)
        # A fixed width, so linked views get equal view boxes whatever their tick labels.
        plot.getAxis("left").setWidth(ROW_AXIS_WIDTH)

    def _place_pruned_legend(self) -> None:
        self.pruned_legend.setPos(-4, self.bar.size().height() + 2)

    def set_title(self, title: str) -> None:
        """Change the title above the plot."""
        self.plot.setTitle(title, size="11pt", color=self.foreground)

    def set_levels(self, low: float, high: float) -> None:
        """Set the colour bar's levels (and so the image's)."""
        self.bar.setLevels((low, high))

    def set_colormap(self, kind: str) -> None:
        """Use the colour map (and bar ticks) of ``kind``: ``"weights"`` or ``"mask"``."""
        colormap = MASK_COLORMAP if kind == "mask" else WEIGHTS_COLORMAP
        self.bar.setColorMap(colormap)
        self.image.setLookupTable(colormap.getLookupTable(nPts=LUT_SIZE))
        self.bar.axis.setTicks(MASK_TICKS if kind == "mask" else None)

    def set_marks_pruned(self, mark: bool) -> None:
        """Show (or hide) the pruned-cell overlay and its legend."""
        self.marks_pruned = mark
        self.pruned_image.setVisible(mark)
        self.pruned_legend.setVisible(mark)

    def set_extent(self, rows: int, cols: int) -> None:
        """Frame the matrix and label axis ticks only inside it."""
        self._frame.setData([0, cols, cols, 0, 0], [0, 0, rows, rows, 0])
        self._frame.setVisible(rows * cols > 0)
        self.plot.getAxis("bottom").extent = cols
        self.plot.getAxis("left").extent = rows

    def fit(self, rows: int, cols: int) -> None:
        """Frame the whole matrix in the view box."""
        self.plot.vb.setRange(
            xRange=(0, max(cols, 1)), yRange=(0, max(rows, 1)), padding=0.0, update=True
        )

    def show(
        self, pixels: np.ndarray, plan: Tiling, levels: tuple[float, float], kept: np.ndarray | None
    ) -> None:
        """Draw ``pixels`` where ``plan`` puts them; mark the pixels where ``kept`` is 0."""
        self.image.setImage(pixels, autoLevels=False, levels=levels)
        self.image.setRect(QRectF(*plan.rect()))
        self.kept = kept
        if kept is None:
            self.pruned_image.clear()
        else:
            self.pruned_image.setImage(pruned_overlay(kept, PRUNED_CELL_COLOR), autoLevels=False)
            self.pruned_image.setRect(QRectF(*plan.rect()))

    def clear(self) -> None:
        """Draw no image."""
        self.image.clear()
        self.pruned_image.clear()
        self.kept = None

    def dim(self, dimmed: bool) -> None:
        """Dim the image (the matrix is busy elsewhere) or show it normally."""
        opacity = BUSY_OPACITY if dimmed else 1.0
        self.image.setOpacity(opacity)
        self.pruned_image.setOpacity(opacity)

    def one_weight_per_pixel(self) -> bool:
        """Whether one weight spans at least one screen pixel (painting is precise)."""
        px_w, px_h = self.plot.vb.viewPixelSize()
        return max(px_w, px_h) <= 1.0 + 1e-9

    def cell_at(
        self, scene_pos: QPointF, shape: tuple[int, int] | None, *, clamp: bool = False
    ) -> tuple[int, int] | None:
        """The cell of a ``shape`` matrix under ``scene_pos``: None outside the view box
        or the matrix (or with no matrix), or (``clamp``) the nearest cell."""
        vb = self.plot.vb
        if shape is None or not (clamp or vb.sceneBoundingRect().contains(scene_pos)):
            return None
        point = vb.mapSceneToView(scene_pos)
        row, col = math.floor(point.y()), math.floor(point.x())
        rows, cols = shape
        if clamp:
            return (min(max(row, 0), rows - 1), min(max(col, 0), cols - 1))
        return (row, col) if 0 <= row < rows and 0 <= col < cols else None

    def set_block_grid(self, block: tuple[int, int] | None, shape: tuple[int, int] | None) -> None:
        """Separators every ``block = (rows, cols)`` of a matrix of ``shape`` (None: none)."""
        self._grid_block = block
        xs: list[float] = []
        ys: list[float] = []
        if block is not None and shape is not None:
            rows, cols = shape
            if rows // block[0] + cols // block[1] <= GRID_MAX_LINES:
                for r in range(block[0], rows, block[0]):
                    xs += [0, cols]
                    ys += [r, r]
                for c in range(block[1], cols, block[1]):
                    xs += [c, c]
                    ys += [0, rows]
        self._grid.setData(np.array(xs, dtype=float), np.array(ys, dtype=float))
        self.update_grid_visibility()

    def update_grid_visibility(self) -> None:
        """Show the separators when a block is at least :data:`GRID_MIN_PIXELS` on screen."""
        block = self._grid_block
        if block is None:
            self._grid.setVisible(False)
            return
        px_w, px_h = self.plot.vb.viewPixelSize()
        self._grid.setVisible(
            min(block[0] / max(px_h, 1e-12), block[1] / max(px_w, 1e-12)) >= GRID_MIN_PIXELS
        )
