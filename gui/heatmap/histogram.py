"""A histogram of weight magnitudes |w|, with what is pruned and where the cut is.

The histogram is of the *original* weights (before pruning), so it does not
change shape as the mask changes; the pruned part is drawn over it in a
second colour, and a dashed line marks the threshold: the largest |w| that
was pruned. For magnitude (L1) pruning everything left of the line is pruned;
for structured or pattern pruning the pruned weights spread over all
magnitudes, which the two colours make visible. ``show_threshold`` adds a
preview line (e.g. for a planned global threshold).

Tensors above :data:`~gui.session.magnitudes.SAMPLE_LIMIT` elements are
histogrammed from a regular strided sample (every k-th element, with
``torch.histc``; see :func:`~gui.session.magnitudes.magnitude_counts`); the axis
title says so. The threshold and the range always come from all the elements.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QWidget

from gui.session.magnitudes import BINS, MagnitudeCounts, magnitude_counts
from gui.widgets.colormaps import (
    ACCENT_RGB,
    ALARM_RGB,
    BACKGROUND,
    INK,
    NEUTRAL_RGB,
    PRUNED_RGB,
    hex_color,
    style_plot,
)

LOG_FLOOR = 0.5
"""Counts are drawn from this level in log-y mode (a bin of 1 must stay visible)."""


class MagnitudeHistogram(pg.PlotWidget):
    """Histogram of |w| with the pruned part, the pruning threshold and a preview line.

    ``show(weights, mask)`` plots; ``show()`` with no arguments is ``QWidget.show``.
    """

    def __init__(self, parent: QWidget | None = None, bins: int = BINS) -> None:
        super().__init__(parent, background=BACKGROUND)
        self._bins = bins
        self._counts: MagnitudeCounts | None = None
        self._preview: float | None = None
        plot = self.getPlotItem()
        style_plot(plot)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.showGrid(x=False, y=True, alpha=0.15)
        plot.setLabel("left", "count", color=INK)
        self._total = self._bars(NEUTRAL_RGB)
        self._pruned = self._bars(PRUNED_RGB)
        self._threshold_line = self._line(ALARM_RGB, "pruned |w| ≤ {value:.3g}", 0.92)
        self._preview_line = self._line(ACCENT_RGB, "preview {value:.3g}", 0.78)
        self._preview_region = pg.LinearRegionItem(
            movable=False, brush=pg.mkBrush(*ACCENT_RGB, 40), pen=pg.mkPen(None)
        )
        self._preview_region.setZValue(-10)
        self._preview_region.hide()
        plot.addItem(self._preview_region)
        self.log_y_box = QCheckBox("log y", self)
        self.log_y_box.setToolTip("Logarithmic count axis (shows the sparse tails)")
        self.log_y_box.toggled.connect(self.set_log_y)
        self._set_axis_title()

    def _bars(self, rgb: tuple[int, int, int]) -> pg.PlotDataItem:
        item = pg.PlotDataItem(
            stepMode="center",
            fillLevel=0,
            fillOutline=True,
            brush=pg.mkBrush(*rgb, 200),
            pen=pg.mkPen(rgb, width=1),
        )
        self.getPlotItem().addItem(item)
        return item

    def _line(self, rgb: tuple[int, int, int], label: str, position: float) -> pg.InfiniteLine:
        line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(rgb, width=2, style=Qt.PenStyle.DashLine),
            label=label,
            labelOpts={
                "position": position,
                "color": rgb,
                "fill": (255, 255, 255, 210),
                "anchors": [(0, 0), (1, 0)],
            },
        )
        line.hide()
        self.getPlotItem().addItem(line, ignoreBounds=True)
        return line

    # -- public API -----------------------------------------------------------
    def show(  # type: ignore[override]
        self, weights: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> None:
        """Plot ``weights``' |w| histogram and its ``mask``-pruned part.

        Called with no arguments this is ``QWidget.show`` (make the widget visible).
        """
        if weights is None:
            super().show()
            return
        self.show_weights(weights, mask)

    def show_weights(self, weights: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Plot the |w| histogram of the original ``weights``; ``mask`` True = kept."""
        self._counts = magnitude_counts(weights, mask, self._bins)
        self._redraw()

    def show_counts(self, counts: MagnitudeCounts) -> None:
        """Plot counts computed elsewhere (e.g. by :func:`magnitude_counts` in a worker)."""
        self._counts = counts
        self._redraw()

    def show_threshold(self, value: float | None) -> None:
        """Show a preview threshold (pruning |w| <= value) or hide it with None."""
        self._preview = None if value is None else float(value)
        self._redraw_preview()
        self._set_axis_title()

    def clear_weights(self) -> None:
        """Remove the histogram, the threshold and the preview."""
        self._counts = None
        self._preview = None
        self._redraw()

    def set_log_y(self, on: bool) -> None:
        """Use a logarithmic count axis."""
        if self.log_y_box.isChecked() != bool(on):
            self.log_y_box.setChecked(bool(on))  # re-enters through toggled
            return
        self.getPlotItem().setLogMode(x=False, y=bool(on))
        self._redraw()

    def is_log_y(self) -> bool:
        """Whether the count axis is logarithmic."""
        return self.log_y_box.isChecked()

    def threshold(self) -> float | None:
        """The x position of the threshold line (largest pruned |w|), None when hidden."""
        return self._threshold_line.value() if self._threshold_line.isVisible() else None

    def preview_threshold(self) -> float | None:
        """The x position of the preview line, None when hidden."""
        return self._preview_line.value() if self._preview_line.isVisible() else None

    def counts(self) -> MagnitudeCounts | None:
        """The histogram currently shown."""
        return self._counts

    def axis_title(self) -> str:
        """The bottom axis title (says when the histogram is of a sample)."""
        return self.getPlotItem().getAxis("bottom").labelText

    # -- drawing --------------------------------------------------------------
    def _redraw(self) -> None:
        counts = self._counts
        if counts is None:
            self._total.setData([], [])
            self._pruned.setData([], [])
            self._threshold_line.hide()
        else:
            self._draw_counts(counts)
        self._set_axis_title()
        self._redraw_preview()

    def _draw_counts(self, counts: MagnitudeCounts) -> None:
        log = self.is_log_y()
        floor = LOG_FLOOR if log else 0.0
        self._total.setFillLevel(math.log10(floor) if log else 0.0)
        self._pruned.setFillLevel(math.log10(floor) if log else 0.0)
        self._total.setData(counts.edges, np.maximum(counts.total, floor))
        self._pruned.setData(counts.edges, np.maximum(counts.pruned, floor))
        self._pruned.setVisible(counts.threshold is not None)
        if counts.threshold is None:
            self._threshold_line.hide()
        else:
            self._threshold_line.show()  # a hidden line does not update its label
            self._threshold_line.setValue(counts.threshold)
        plot = self.getPlotItem()
        plot.setXRange(0.0, float(counts.edges[-1]), padding=0.02)
        plot.enableAutoRange(axis="y")

    def _redraw_preview(self) -> None:
        if self._preview is None:
            self._preview_line.hide()
            self._preview_region.hide()
            return
        self._preview_line.show()
        self._preview_region.show()
        self._preview_line.setValue(self._preview)
        self._preview_region.setRegion((0.0, self._preview))

    def _set_axis_title(self) -> None:
        counts = self._counts
        title = "|w| of the original weights"
        if counts is not None and counts.sampled < counts.numel:
            title += (
                f" (sample: every {counts.stride}th of {counts.numel:,}, "
                f"{counts.sampled:,} counted)"
            )
        plot = self.getPlotItem()
        plot.setLabel("bottom", title, color=INK)
        plot.setTitle(self._legend_html(), size="9pt")

    def _legend_html(self) -> str:
        def swatch(rgb: tuple[int, int, int], mark: str = "■") -> str:
            return f"<span style='color:{hex_color(rgb)}'>{mark}</span>"

        parts = [f"{swatch(NEUTRAL_RGB)} kept", f"{swatch(PRUNED_RGB)} pruned"]
        if self._threshold_line.isVisible():
            parts.append(f"{swatch(ALARM_RGB, '┆')} largest pruned |w|")
        if self._preview is not None:
            parts.append(f"{swatch(ACCENT_RGB, '┆')} preview threshold")
        return f"<span style='color:{INK}'>{'&nbsp;&nbsp;&nbsp;'.join(parts)}</span>"

    def resizeEvent(self, event: object) -> None:
        """Keep the log-y checkbox in the top-right corner."""
        super().resizeEvent(event)
        box = self.__dict__.get("log_y_box")  # resizeEvent runs inside PlotWidget.__init__
        if box is None:
            return
        hint = box.sizeHint()
        box.setGeometry(self.width() - hint.width() - 8, 6, hint.width(), hint.height())
