"""The pattern lab's figure: labels, matrix heatmaps, method columns and their layout.

:class:`PatternFigure` is the whole figure (title, five method columns, row
labels, legend) as one pyqtgraph graphics widget. It places its pieces itself,
so the figure fits whatever room it gets and nothing is clipped: the five
columns side by side, or in bands of three (+ two) or two (+ two + one) when
that shows the matrices larger (a narrow, tall tab); text wraps to its column.
Each column (title, pruned weights, mask, caption) is a :class:`MethodColumn`,
each matrix a :class:`MatrixView`. What the columns show is worked out in
``core.viz.pattern_figure``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF, QSizeF, Qt
from PySide6.QtGui import QFont, QTextOption
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneResizeEvent

from core.viz.pattern_figure import (
    KEYS,
    LEVELS,
    VALUE_TEXT_MAX_SIZE,
    ColumnResult,
    LabSettings,
    column_title,
    format_value,
    method_tooltip,
    sparsity_caption,
)
from gui.widgets.colormaps import (
    ALARM_RGB,
    FRAME_RGB,
    GRID_RGB,
    INK,
    KEPT_RGB,
    MUTED,
    PRUNED_RGB,
    diverging_colormap,
    diverging_lut,
    hex_color,
    mask_lut,
    text_color_on,
)

TITLE_PT, CAPTION_PT, FIGURE_TITLE_PT = 11.0, 9.5, 12.5
CROSS_RGB = (128, 128, 128)
MARGIN, SPACING, TEXT_GAP, ROW_GAP = 10.0, 12.0, 4.0, 8.0
"""Pixels: around the figure, between columns and bands, between text and a
matrix, between the weights and the mask of one column."""
MIN_SIDE = 32.0
"""The smallest matrix side (pixels) the figure draws."""
BAND_CHOICES = (5, 3, 2)
"""Columns per band that the figure may use, preferred first."""
CLEAR_GAIN = 1.1
"""Another arrangement must show the matrices this much larger to be used."""
SLOT_PER_SIDE = 1.6
"""A column is at most this many times as wide as its matrices, or as its widest
unwrapped text (wide, short figures keep their columns together)."""
MIN_VALUE_CELL_PX = 15.0
"""Cell values are written only into cells at least this many pixels wide."""


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

    def place(self, x: float, slot: float, side: float, rows: _BandRows) -> None:
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


def text_width(slot: float) -> float:
    """How wide the text of a column ``slot`` pixels wide may be (into half of each gap)."""
    return slot + SPACING - 2


@dataclass(frozen=True)
class _BandRows:
    """The y of each row of one band, and the heights of its two text rows."""

    header: float
    header_height: float
    weights: float
    mask: float
    caption: float
    caption_height: float


@dataclass(frozen=True)
class FigurePlan:
    """How the figure is laid out: columns per band, their width, the matrix side."""

    per_band: int
    slot: float
    side: float
    row_label_width: float
    header_heights: tuple[float, ...]
    caption_heights: tuple[float, ...]
    words_fit: bool

    @property
    def bands(self) -> int:
        """How many bands (rows of columns) the figure has."""
        return len(self.header_heights)

    @property
    def legend_in_band(self) -> bool:
        """Whether the legend takes the free slot of the last band (else a column of its own)."""
        return self.bands * self.per_band > len(KEYS)


class PatternFigure(pg.GraphicsWidget):
    """The lab's figure, laid out to fit its size (see the module docstring).

    Put it into a ``pg.GraphicsView`` with ``setCentralItem``; the view resizes
    it, and it re-arranges its pieces on every resize.
    """

    def __init__(self) -> None:
        super().__init__()
        self.title = WrapLabel()
        self.title.setParentItem(self)
        self.columns = {key: MethodColumn(key, self) for key in KEYS}
        self._row_labels: list[tuple[WrapLabel, WrapLabel]] = []
        for _ in range(math.ceil(len(KEYS) / min(BAND_CHOICES))):
            pair = (WrapLabel(angle=-90), WrapLabel(angle=-90))
            for label in pair:
                label.setParentItem(self)
            self._row_labels.append(pair)
        self._build_legend()
        self._scale = 1.0
        self._plan: FigurePlan | None = None

    def _build_legend(self) -> None:
        self.legend_header = WrapLabel(justify="left")
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
        for item in (self.legend_header, self.colorbar, self.mask_key):
            item.setParentItem(self)

    # -- content ----------------------------------------------------------------
    def show(
        self,
        matrix: torch.Tensor,
        results: dict[str, ColumnResult],
        settings: LabSettings,
        values: bool,
        scale: float,
    ) -> None:
        """Show every column's ``results`` on ``matrix``, text ``scale`` times normal."""
        if scale != self._scale:
            self._scale = scale
            self.colorbar.getAxis("right").setStyle(tickFont=scaled_font(scale))
            for column in self.columns.values():
                column.set_font_scale(scale)
        for key, column in self.columns.items():
            column.set_title(*column_title(key, settings), scale)
            column.set_tooltip(method_tooltip(key, settings))
            column.show(matrix, results[key], values, scale)
        self._write_labels(settings, scale)
        self.relayout()

    def _write_labels(self, s: LabSettings, scale: float) -> None:
        set_label(
            self.title,
            f"Pruning a {s.size}×{s.size} random matrix (seed {s.seed}) by "
            f"{100 * s.amount:.0f}%: same weights, five patterns",
            size=f"{FIGURE_TITLE_PT * scale}pt",
            color=INK,
            bold=True,
        )
        small = f"{CAPTION_PT * scale}pt"
        set_label(self.legend_header, "weight", size=small, color=MUTED)
        for weights, mask in self._row_labels:
            set_label(weights, "pruned weights", size=small, color=MUTED)
            set_label(mask, "mask", size=small, color=MUTED)
        swatch = f"font-size:{1.5 * CAPTION_PT * scale:.1f}pt"
        set_label(
            self.mask_key,
            f"<span style='color:{hex_color(KEPT_RGB)}; {swatch}'>■</span> kept<br>"
            f"<span style='color:{hex_color(PRUNED_RGB)}; {swatch}'>■</span> pruned<br><br>"
            f"<span style='color:{MUTED}'>× = zeroed</span>",
            size=small,
            color=INK,
        )

    # -- layout -----------------------------------------------------------------
    @property
    def plan(self) -> FigurePlan | None:
        """The layout in use (None before the figure had a size)."""
        return self._plan

    def items(self) -> list[QGraphicsItem]:
        """Every visible piece of the figure (what a whole-figure export draws)."""
        pieces: list[QGraphicsItem] = [self.title]
        for pair in self._row_labels:
            pieces.extend(label for label in pair if label.isVisible())
        for column in self.columns.values():
            pieces.extend(column.items())
        pieces.extend((self.legend_header, self.colorbar, self.mask_key))
        return pieces

    @contextmanager
    def laid_out_at_least(self, minimum: QSizeF) -> Iterator[None]:
        """Lay the figure out at least ``minimum`` large while the block runs (an
        export of a figure shown small), then as it was."""
        before = self.geometry()
        size = before.size().expandedTo(minimum)
        if size != before.size():
            self.resize(size)
        try:
            yield
        finally:
            if size != before.size():
                self.setGeometry(before)

    def resizeEvent(self, event: QGraphicsSceneResizeEvent | None) -> None:
        """Re-arrange the pieces for the new size."""
        super().resizeEvent(event)
        self.relayout()

    def relayout(self) -> None:
        """Choose the arrangement that shows the matrices largest and place every piece."""
        width, height = self.size().width(), self.size().height()
        if width < 1 or height < 1:
            return
        inner = width - 2 * MARGIN
        title_height = self.title.fit(inner).height()
        room = height - 2 * MARGIN - title_height - SPACING
        word = max(column.widest_word() for column in self.columns.values())
        plans = [self._plan_for(per_band, inner, room, word) for per_band in BAND_CHOICES]
        best = plans[0]
        for plan in plans[1:]:  # columns whose words fit first, then the largest matrices
            if (plan.words_fit, plan.side) > (best.words_fit, best.side * CLEAR_GAIN):
                best = plan
        self._plan = best
        self._place(best, inner, MARGIN + title_height + SPACING)
        self.title.setGeometry(QRectF(MARGIN, MARGIN, inner, title_height))

    def _legend_width(self) -> float:
        texts = (self.legend_header.fit(-1).width(), self.mask_key.fit(-1).width())
        return max(self.colorbar.minimumWidth(), self.colorbar.preferredWidth(), *texts)

    def _row_label_width(self, side: float) -> float:
        return max(label.fit(side).width() for label in self._row_labels[0])

    def _plan_for(self, per_band: int, inner: float, room: float, word: float) -> FigurePlan:
        """The largest matrices ``per_band`` columns per band allow in ``inner`` x ``room``
        (``word``: the widest word of the columns' text)."""
        bands = math.ceil(len(KEYS) / per_band)
        extra = 0.0 if bands * per_band > len(KEYS) else self._legend_width() + SPACING
        row_width = self._row_label_width(-1)
        groups = [KEYS[b * per_band : (b + 1) * per_band] for b in range(bands)]
        texts = [t for c in self.columns.values() for t in (c.title, c.caption)]
        need = max(label.fit(-1).width() for label in texts)
        side = math.inf
        plan = None
        for _ in range(2):  # the second pass narrows the columns to their matrices and text
            full = (inner - row_width - TEXT_GAP - extra - (per_band - 1) * SPACING) / per_band
            slot = max(1.0, min(full, max(side * SLOT_PER_SIDE, need)))
            wrap = text_width(slot)
            heads = tuple(max(self.columns[k].title.fit(wrap).height() for k in g) for g in groups)
            caps = tuple(max(self.columns[k].caption.fit(wrap).height() for k in g) for g in groups)
            text = sum(heads) + sum(caps) + bands * (2 * TEXT_GAP + ROW_GAP)
            text += (bands - 1) * SPACING
            side = max(MIN_SIDE, min(slot, full, (room - text) / (2 * bands), side))
            plan = FigurePlan(per_band, slot, side, row_width, heads, caps, word <= wrap)
            row_width = max(row_width, self._row_label_width(side))
        assert plan is not None
        return plan

    def _place(self, plan: FigurePlan, inner: float, top: float) -> None:
        legend_width = self._legend_width()
        extra = 0.0 if plan.legend_in_band else legend_width + SPACING
        content = plan.row_label_width + TEXT_GAP + plan.per_band * plan.slot
        content += (plan.per_band - 1) * SPACING + extra
        left = MARGIN + max(0.0, (inner - content) / 2)
        first_slot = left + plan.row_label_width + TEXT_GAP
        pitch = plan.slot + SPACING
        y = top
        for band, pair in enumerate(self._row_labels):
            for label in pair:
                label.setVisible(band < plan.bands)
        for band in range(plan.bands):
            rows = _BandRows(
                header=y,
                header_height=plan.header_heights[band],
                weights=y + plan.header_heights[band] + TEXT_GAP,
                mask=y + plan.header_heights[band] + TEXT_GAP + plan.side + ROW_GAP,
                caption=y + plan.header_heights[band] + 2 * (TEXT_GAP + plan.side) + ROW_GAP,
                caption_height=plan.caption_heights[band],
            )
            keys = KEYS[band * plan.per_band : (band + 1) * plan.per_band]
            for i, key in enumerate(keys):
                self.columns[key].place(first_slot + i * pitch, plan.slot, plan.side, rows)
            weights_label, mask_label = self._row_labels[band]
            for label, row_y in ((weights_label, rows.weights), (mask_label, rows.mask)):
                label.fit(plan.side)
                label.setGeometry(QRectF(left, row_y, plan.row_label_width, plan.side))
            if band == plan.bands - 1:
                x = first_slot + len(keys) * pitch
                if plan.legend_in_band:  # centred in the free slot
                    x += max(0.0, (plan.slot - legend_width) / 2)
                self._place_legend(x, legend_width, plan.side, rows)
            y = rows.caption + rows.caption_height + SPACING

    def _place_legend(self, x: float, width: float, side: float, rows: _BandRows) -> None:
        header = self.legend_header.fit(-1).height()
        bottom = rows.header + rows.header_height
        self.legend_header.setGeometry(QRectF(x, bottom - header, width, header))
        self.colorbar.setGeometry(QRectF(x, rows.weights, width, side))
        key = self.mask_key.fit(-1).height()
        self.mask_key.setGeometry(QRectF(x, rows.mask, width, key))


def scaled_font(scale: float) -> QFont:
    """The caption font, ``scale`` times its normal point size."""
    font = QFont()
    font.setPointSizeF(CAPTION_PT * scale)
    return font
