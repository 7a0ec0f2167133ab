"""The pattern lab's pyqtgraph building blocks: labels, matrix heatmaps, method columns.

``MethodColumn`` is one column of the lab's figure (title, pruned weights, mask,
caption) laid into a ``pg.GraphicsLayout``; each matrix is a ``MatrixView``.
What the columns show is worked out in ``core.viz.pattern_figure``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QGraphicsItem

from core.viz.pattern_figure import (
    LEVELS,
    VALUE_TEXT_MAX_SIZE,
    ColumnResult,
    format_value,
    sparsity_caption,
)
from gui.colormaps import (
    ALARM_RGB,
    FRAME_RGB,
    GRID_RGB,
    INK,
    MUTED,
    diverging_lut,
    hex_color,
    mask_lut,
    text_color_on,
)

ROW_TITLE, ROW_HEADER, ROW_WEIGHTS, ROW_MASK, ROW_CAPTION, ROW_SPACER = range(6)
"""The rows of the figure's grid, top to bottom."""
TITLE_PT, CAPTION_PT, FIGURE_TITLE_PT = 11.0, 9.5, 12.5
CROSS_RGB = (128, 128, 128)


def set_label(label: pg.LabelItem, text: str, **style: object) -> None:
    """``label.setText(text, **style)``, skipped when nothing changed (slider drags)."""
    key = (text, tuple(sorted(style.items())))
    if getattr(label, "_last_text", None) == key:
        return
    label._last_text = key  # type: ignore[attr-defined]
    label.setText(text, **style)


class FlexLabel(pg.LabelItem):
    """A centred LabelItem that does not force its column to be as wide as its text.

    pyqtgraph sizes a LabelItem's minimum width to its text, so a long caption
    widens one column of a grid; here only the height is a minimum, and the
    grid's equal stretch factors keep all columns the same width.
    """

    def setText(self, text: str, **style: object) -> None:
        """Set the text, centring every line within the block (not only the block)."""
        document = self.item.document()
        option = document.defaultTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        document.setDefaultTextOption(option)
        self.item.setTextWidth(-1)
        super().setText(text, **style)
        self.item.setTextWidth(document.idealWidth())
        self.resizeEvent(None)

    def updateMin(self) -> None:
        """Keep the text's height as the minimum height, but no minimum width."""
        super().updateMin()
        self.setMinimumWidth(0)
        self.setPreferredWidth(0)


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
            item.setVisible(index < needed)
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
        """Scale the placeholder text (values follow the cell size)."""
        self._font_scale = scale
        self._fit_fonts()

    def _fit_fonts(self) -> None:
        if not self._size:
            return
        cell_px = self.plot.getViewBox().width() / self._size
        font = QFont()
        font.setPixelSize(max(7, int(cell_px * 0.36)))
        for item in self._texts:
            item.setFont(font)
        note = QFont()
        note.setPointSizeF(CAPTION_PT * self._font_scale)
        self._placeholder.setFont(note)

    def displayed(self) -> np.ndarray | None:
        """The array currently in the image (None when cleared)."""
        data = self.image.image
        return None if data is None else np.array(data, copy=True)


class MethodColumn:
    """One method's column in the figure: title, weights, mask, caption."""

    def __init__(self, key: str, grid: pg.GraphicsLayout, col: int) -> None:
        self.key = key
        self.title = FlexLabel("", justify="center")
        self.weights = MatrixView(diverging_lut(), LEVELS, values=True)
        self.mask = MatrixView(mask_lut(), (0.0, 1.0), values=False)
        self.caption = FlexLabel("", justify="center")
        grid.addItem(self.title, row=ROW_HEADER, col=col)
        grid.addItem(self.weights.plot, row=ROW_WEIGHTS, col=col)
        grid.addItem(self.mask.plot, row=ROW_MASK, col=col)
        grid.addItem(self.caption, row=ROW_CAPTION, col=col)
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


def scaled_font(scale: float) -> QFont:
    """The caption font, ``scale`` times its normal point size."""
    font = QFont()
    font.setPointSizeF(CAPTION_PT * scale)
    return font
