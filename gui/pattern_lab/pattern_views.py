"""The pattern lab's figure, and the view that shows it.

:class:`PatternFigure` is the whole figure (title, five method columns, row
labels, legend) as one pyqtgraph graphics widget. It places its pieces itself,
so the figure fits whatever room it gets and nothing is clipped: the five
columns side by side, or in bands of three (+ two) or two (+ two + one) when
that shows the matrices larger (a narrow, tall tab); text wraps to its column.
:class:`FigureView` is the white graphics view the lab shows it in.

The pieces are their own modules: :mod:`gui.pattern_lab.method_column` (one
method's column: title, pruned weights, mask, caption),
:mod:`gui.pattern_lab.matrix_view` (one matrix heatmap),
:mod:`gui.pattern_lab.figure_legend` (colour bar and mask key),
:mod:`gui.pattern_lab.figure_text` (wrapping labels, point sizes) and
:mod:`gui.pattern_lab.figure_layout` (spacings, bands and the chosen plan);
their public names still import from here. What the columns show is worked
out in ``core.viz.pattern_figure``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pyqtgraph as pg
import torch
from PySide6.QtCore import QRectF, QSize, QSizeF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsSceneResizeEvent, QWidget

from core.viz.pattern_figure import KEYS, ColumnResult, LabSettings, column_title, method_tooltip
from gui.pattern_lab.figure_layout import (
    BAND_CHOICES,
    CLEAR_GAIN,
    MARGIN,
    MIN_SIDE,
    ROW_GAP,
    SLOT_PER_SIDE,
    SPACING,
    TEXT_GAP,
    FigurePlan,
    text_width,
)
from gui.pattern_lab.figure_legend import FigureLegend
from gui.pattern_lab.figure_text import CAPTION_PT, FIGURE_TITLE_PT, WrapLabel, set_label
from gui.pattern_lab.figure_text import TITLE_PT as TITLE_PT
from gui.pattern_lab.figure_text import scaled_font as scaled_font
from gui.pattern_lab.matrix_view import CROSS_RGB as CROSS_RGB
from gui.pattern_lab.matrix_view import MIN_VALUE_CELL_PX as MIN_VALUE_CELL_PX
from gui.pattern_lab.matrix_view import MatrixView as MatrixView
from gui.pattern_lab.method_column import MethodColumn
from gui.widgets.colormaps import INK, MUTED

FIGURE_MIN_SIZE = QSize(360, 300)
"""The figure never gets smaller than this (the tab scrolls instead)."""


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
        self.legend = FigureLegend(self)
        self._scale = 1.0
        self._plan: FigurePlan | None = None

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
            self.legend.set_font_scale(scale)
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
        for weights, mask in self._row_labels:
            set_label(weights, "pruned weights", size=small, color=MUTED)
            set_label(mask, "mask", size=small, color=MUTED)
        self.legend.write(scale)

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
        pieces.extend(self.legend.items())
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

    def _row_label_width(self, side: float) -> float:
        return max(label.fit(side).width() for label in self._row_labels[0])

    def _plan_for(self, per_band: int, inner: float, room: float, word: float) -> FigurePlan:
        """The largest matrices ``per_band`` columns per band allow in ``inner`` x ``room``
        (``word``: the widest word of the columns' text)."""
        bands = math.ceil(len(KEYS) / per_band)
        extra = 0.0 if bands * per_band > len(KEYS) else self.legend.width() + SPACING
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
        legend_width = self.legend.width()
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
            rows = plan.band_rows(band, y)
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
                self.legend.place(x, legend_width, plan.side, rows)
            y = rows.caption + rows.caption_height + SPACING


class FigureView(pg.GraphicsView):
    """The view of the figure: white, and asking for no more than its minimum size.

    A ``QGraphicsView`` asks for the size of its scene, which here is its own
    last size; the tab would then never let it shrink (the controls' rows
    follow the width, so the tab sizes the lab from what it asks for).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMinimumSize(FIGURE_MIN_SIZE)

    def sizeHint(self) -> QSize:
        """The minimum size: the figure fits whatever room it gets."""
        return self.minimumSize()
