"""Bar and line charts of measured speed, in the project's light slide-ready style.

* :class:`LatencyChart`: one small bar plot per batch size, a bar per form
  (median ms; the IQR as a thin whisker). Each batch size gets its own scale,
  since batch 64 takes far longer than batch 1.
* :class:`SpeedupChart`: speed-up against the dense original, grouped by batch
  size; beside each measured bar a hollow bar shows the FLOPs cut (dense FLOPs /
  this form's FLOPs), so the gap between "fewer operations" and "less time"
  is visible at a glance. A dashed line marks 1x (as fast as dense).
* :class:`CostLabChart`: latency against pruning ratio, one plot per layer size,
  a line per way of running the layer.
* :class:`SpeedTestChart`: the speed test's measured speed-ups as bars.

Charts keep what they drew (``values()`` and friends) so tests can read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QWidget

from gui.speed.benchmark_table import format_speedup
from gui.speed.forms import FORM_COLORS, form_axis_label, form_rank
from gui.widgets.colormaps import (
    ACCENT_RGB,
    BACKGROUND,
    FRAME_RGB,
    INK,
    MUTED,
    hex_color,
    style_plot,
)

if TYPE_CHECKING:
    from core.speed.benchmark import FormResult
    from core.speed.cost_lab import CostRow

ROW_PX = 26
"""Height of one form's line in the latency chart, in pixels."""
GROUP_WIDTH = 0.8
"""Share of one category's slot that its bars fill."""
TITLE_SIZE = "10pt"


def _plot_style(plot: pg.PlotItem) -> None:
    style_plot(plot)
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)  # ms and ratios read as they are
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
    plot.showGrid(x=False, y=True, alpha=0.25)


def _brush(rgb: tuple[int, int, int], alpha: int = 255) -> pg.QtGui.QBrush:
    return pg.mkBrush((*rgb, alpha))


def _form_rgb(form: str) -> tuple[int, int, int]:
    return FORM_COLORS.get(form, FRAME_RGB)


def _text(plot: pg.PlotItem, text: str, x: float, y: float, color: str = INK) -> pg.TextItem:
    item = pg.TextItem(text, color=color, anchor=(0.5, 1.0))
    font = item.textItem.font()
    font.setPointSizeF(8.0)
    item.setFont(font)
    item.setPos(x, y)
    plot.addItem(item)
    return item


def _label(plot: pg.PlotItem, text: str, x: float, y: float, color: str = INK) -> pg.TextItem:
    """A small value label left-aligned at ``(x, y)`` (beside a horizontal bar)."""
    item = _text(plot, text, x, y, color)
    item.setAnchor((0.0, 0.5))
    return item


def _timed(rows: Iterable[FormResult]) -> list[FormResult]:
    return [r for r in rows if r.median_ms is not None]


def legend_html(entries: Sequence[tuple[str, tuple[int, int, int], str]]) -> str:
    """Marks and names for a QLabel; ``(name, rgb, mark)`` per entry (``"■"``, ``"□"``, ``"┈"``)."""
    parts = [
        f"<span style='color:{hex_color(rgb)}; font-size:large'>{mark}</span>&nbsp;{name}"
        for name, rgb, mark in entries
    ]
    gap = "&nbsp;&nbsp;&nbsp;"
    return f"<span style='color:{MUTED}'>{gap.join(parts)}</span>"


# -- benchmark ------------------------------------------------------------------------
class LatencyChart(pg.GraphicsLayoutWidget):
    """Median latency per form, one small bar plot per batch size (see module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.setMinimumHeight(220)
        self._values: dict[tuple[str, int], float] = {}
        self.show_rows([])

    def values(self) -> dict[tuple[str, int], float]:
        """Median ms drawn, by ``(form, batch size)``."""
        return dict(self._values)

    def show_rows(self, rows: Sequence[FormResult]) -> None:
        """Redraw from benchmark rows (untimed forms keep their line, marked n/a)."""
        self.clear()
        self._values = {}
        batches = sorted({r.batch_size for r in rows})
        forms = sorted({r.form for r in rows}, key=form_rank)
        if not batches:
            plot = self.addPlot()
            _plot_style(plot)
            plot.setTitle("Latency (ms): run the benchmark", color=MUTED, size=TITLE_SIZE)
            return
        for column, batch in enumerate(batches):
            plot = self.addPlot(row=0, col=column)
            _plot_style(plot)
            plot.showGrid(x=True, y=False, alpha=0.25)
            plot.invertY(True)
            plot.setTitle(f"batch {batch}: median ms", color=INK, size=TITLE_SIZE)
            self._draw_batch(plot, [r for r in rows if r.batch_size == batch], forms)
            left = plot.getAxis("left")
            if column == 0:  # the forms are named once, on the left; every plot has their order
                labels = [form_axis_label(f) for f in forms]
                left.setTicks([list(enumerate(labels)), []])
                metrics = QFontMetrics(left.font())  # wide enough at once, not after a repaint
                left.setWidth(max(metrics.horizontalAdvance(t) for t in labels) + 14)
            else:
                left.setTicks([[(i, "") for i in range(len(forms))], []])
                left.setWidth(6)
        height = ROW_PX * max(len(forms), 1) + 80
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def _draw_batch(self, plot: pg.PlotItem, rows: list[FormResult], forms: list[str]) -> None:
        """Horizontal bars, a form per line; the IQR as a whisker; the value beside."""
        by_form = {r.form: r for r in rows}
        ys, widths, brushes = [], [], []
        ends = [(r.median_ms or 0.0) + (r.iqr_ms or 0.0) / 2 for r in rows]
        top = max(ends, default=0.0) or 1.0
        for y, form in enumerate(forms):
            row = by_form.get(form)
            if row is None or row.median_ms is None:
                _label(plot, "n/a", 0.02 * top, y, MUTED)
                continue
            ys.append(y)
            widths.append(row.median_ms)
            brushes.append(_brush(_form_rgb(form)))
            self._values[(form, row.batch_size)] = row.median_ms
            half = (row.iqr_ms or 0.0) / 2
            if half:
                whisker = pg.PlotDataItem(
                    [row.median_ms - half, row.median_ms + half], [y, y], pen=pg.mkPen(INK)
                )
                plot.addItem(whisker)
            _label(plot, f"{row.median_ms:.3g}", row.median_ms + half + 0.02 * top, y)
        if ys:
            bars = pg.BarGraphItem(
                x0=np.zeros(len(ys)),
                y=np.array(ys, dtype=float),
                width=np.array(widths),
                height=0.66,
                brushes=brushes,
                pens=[pg.mkPen(FRAME_RGB)] * len(ys),
            )
            plot.addItem(bars)
        plot.setYRange(-0.6, len(forms) - 0.4, padding=0)
        plot.setXRange(0, top * 1.3, padding=0)


class SpeedupChart(pg.PlotWidget):
    """Measured speed-up vs the FLOPs cut, per form, grouped by batch size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setMinimumHeight(220)
        self.plot = self.getPlotItem()
        _plot_style(self.plot)
        self.plot.setTitle("Speed-up vs dense (x)", color=INK, size=TITLE_SIZE)
        self._speedups: dict[tuple[str, int], float] = {}
        self._flops_cuts: dict[tuple[str, int], float] = {}
        self._paper: float | None = None
        self._rows: Sequence[FormResult] = ()

    @property
    def paper_cut(self) -> float | None:
        """The FLOPs cut the masks promise on paper (dense / effective FLOPs), if drawn."""
        return self._paper

    def set_paper_cut(self, cut: float | None) -> None:
        """Draw the FLOPs cut the masks promise on paper as a dotted line (None: none)."""
        self._paper = cut if cut is not None and math.isfinite(cut) and cut > 1.0 else None
        self.show_rows(self._rows)

    def speedups(self) -> dict[tuple[str, int], float]:
        """Measured speed-ups drawn, by ``(form, batch size)``."""
        return dict(self._speedups)

    def flops_cuts(self) -> dict[tuple[str, int], float]:
        """FLOPs cuts drawn (dense FLOPs / form FLOPs), by ``(form, batch size)``."""
        return dict(self._flops_cuts)

    def show_rows(self, rows: Sequence[FormResult]) -> None:
        """Redraw from benchmark rows (the dense rows give the FLOPs baseline)."""
        plot = self.plot
        plot.clear()
        self._rows = tuple(rows)
        self._speedups, self._flops_cuts = {}, {}
        timed = _timed(rows)
        dense_flops = {r.batch_size: r.flops for r in rows if r.form == "dense" and r.flops}
        shown = [r for r in timed if r.form != "dense" and r.speedup is not None]
        batches = sorted({r.batch_size for r in rows})
        forms = sorted({r.form for r in shown}, key=form_rank)
        plot.addItem(pg.InfiniteLine(1.0, angle=0, pen=pg.mkPen(INK, style=Qt.PenStyle.DashLine)))
        if self._paper is not None:
            plot.addItem(
                pg.InfiniteLine(
                    self._paper,
                    angle=0,
                    pen=pg.mkPen(ACCENT_RGB, width=1.5, style=Qt.PenStyle.DotLine),
                    label=f"FLOPs cut on paper: {self._paper:.2g}x",
                    labelOpts={"position": 0.99, "color": INK, "anchors": [(1, 1), (1, 1)]},
                )
            )
        plot.getAxis("bottom").setTicks([[(i, f"batch {b}") for i, b in enumerate(batches)], []])
        if not forms:
            plot.setXRange(-0.6, max(len(batches), 1) - 0.4, padding=0)
            plot.setYRange(0, max(2.0, (self._paper or 0.0) * 1.15), padding=0)
            return
        slot = GROUP_WIDTH / len(forms)
        top = 1.0
        for g, batch in enumerate(batches):
            for k, form in enumerate(forms):
                row = next((r for r in shown if (r.form, r.batch_size) == (form, batch)), None)
                if row is None or row.speedup is None:
                    continue
                x = g - GROUP_WIDTH / 2 + slot * (k + 0.5)
                self._speedups[(form, batch)] = row.speedup
                measured = pg.BarGraphItem(
                    x=[x - slot * 0.22], height=[row.speedup], width=slot * 0.42,
                    brush=_brush(_form_rgb(form)), pen=pg.mkPen(FRAME_RGB),
                )  # fmt: skip
                plot.addItem(measured)
                _text(plot, format_speedup(row.speedup), x - slot * 0.22, row.speedup + 0.03)
                top = max(top, row.speedup)
                base = dense_flops.get(batch)
                if base and row.flops:
                    cut = base / row.flops
                    self._flops_cuts[(form, batch)] = cut
                    hollow = pg.BarGraphItem(
                        x=[x + slot * 0.22], height=[cut], width=slot * 0.42,
                        brush=_brush(_form_rgb(form), 40),
                        pen=pg.mkPen(_form_rgb(form), width=1.5, style=Qt.PenStyle.DashLine),
                    )  # fmt: skip
                    plot.addItem(hollow)
                    top = max(top, cut)
        plot.setXRange(-0.6, len(batches) - 0.4, padding=0)
        plot.setYRange(0, max(top, self._paper or 0.0) * 1.15 + 0.1, padding=0)


# -- cost lab -----------------------------------------------------------------------------
COST_SERIES: tuple[tuple[str, str, str, tuple[int, int, int]], ...] = (
    # (key, kind of row it is read from, label, colour)
    ("dense_ms", "unstructured", "dense", FORM_COLORS["dense"]),
    ("masked_ms", "unstructured", "masked (zeros)", FORM_COLORS["masked"]),
    ("sparse_ms", "unstructured", "sparse kernel", FORM_COLORS["sparse"]),
    ("small_ms", "structured", "physically smaller", FORM_COLORS["slim"]),
)
"""Lines: dense, masked and sparse from unstructured rows, smaller from structured ones."""


class CostLabChart(pg.GraphicsLayoutWidget):
    """Latency (ms) against pruning ratio, one plot per layer size, one line per way to run it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.setMinimumHeight(230)
        self._lines: dict[tuple[int, str], tuple[list[float], list[float]]] = {}
        self.show_rows([])

    def lines(self) -> dict[tuple[int, str], tuple[list[float], list[float]]]:
        """``(size, series key) -> (ratios, ms)`` as drawn."""
        return {k: (list(x), list(y)) for k, (x, y) in self._lines.items()}

    def show_rows(self, rows: Sequence[CostRow]) -> None:
        """Redraw from the cost lab's rows so far."""
        self.clear()
        self._lines = {}
        sizes = sorted({r.size for r in rows})
        if not sizes:
            plot = self.addPlot()
            _plot_style(plot)
            plot.setTitle("Latency vs ratio: run the cost lab", color=MUTED, size=TITLE_SIZE)
            return
        for column, size in enumerate(sizes):
            plot = self.addPlot(row=0, col=column)
            _plot_style(plot)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setTitle(f"{size} × {size} Linear: ms", color=INK, size=TITLE_SIZE)
            plot.setLabel("bottom", "pruning ratio", color=INK)
            plot.getAxis("bottom").setTicks([[(q / 5, f"{q * 20}%") for q in range(6)], []])
            for key, kind, _label, rgb in COST_SERIES:
                points = sorted(
                    (r.ratio, getattr(r, key))
                    for r in rows
                    if r.size == size and r.kind == kind and getattr(r, key) is not None
                )
                if not points:
                    continue
                xs = [p[0] for p in points]
                ys = [float(p[1]) for p in points]
                self._lines[(size, key)] = (xs, ys)
                plot.plot(
                    xs, ys, pen=pg.mkPen(rgb, width=2), symbol="o", symbolSize=6,
                    symbolBrush=_brush(rgb), symbolPen=pg.mkPen(rgb),
                )  # fmt: skip
            highest = [max(y) for (s, _key), (_x, y) in self._lines.items() if s == size]
            plot.setYRange(0, max(highest, default=1.0) * 1.12, padding=0)
            ratios = [x for (s, _key), (xs, _y) in self._lines.items() if s == size for x in xs]
            plot.setXRange(-0.07, max(ratios, default=0.9) + 0.04, padding=0)

    @staticmethod
    def legend() -> str:
        """HTML legend of the lines (for a QLabel under the chart)."""
        return legend_html([(label, rgb, "━") for _key, _kind, label, rgb in COST_SERIES])


SPEED_TEST_BARS: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("masked_ms", "masked (zeros)", FORM_COLORS["masked"]),
    ("sparse_ms", "sparse kernel (ours)", FORM_COLORS["sparse"]),
    ("torch_csr_ms", "torch CSR", (107, 174, 214)),
    ("small_ms", "physically smaller", FORM_COLORS["slim"]),
)


class SpeedTestChart(pg.PlotWidget):
    """The speed test's speed-ups over the dense layer, one bar per way to run it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=BACKGROUND)
        self.setMinimumHeight(200)
        self.plot = self.getPlotItem()
        _plot_style(self.plot)
        self.plot.setTitle("Speed test: speed-up over dense (x)", color=INK, size=TITLE_SIZE)
        self._speedups: dict[str, float] = {}
        self.plot.getAxis("bottom").setTicks(
            [[(i, label) for i, (_k, label, _c) in enumerate(SPEED_TEST_BARS)], []]
        )
        self.plot.setXRange(-0.6, len(SPEED_TEST_BARS) - 0.4, padding=0)

    def speedups(self) -> dict[str, float]:
        """Speed-up drawn per bar key (``"sparse_ms"``...)."""
        return dict(self._speedups)

    def show_times(self, dense_ms: float, times: dict[str, float]) -> None:
        """Draw ``dense_ms / times[key]`` for each bar key present and finite."""
        plot = self.plot
        plot.clear()
        self._speedups = {}
        plot.addItem(pg.InfiniteLine(1.0, angle=0, pen=pg.mkPen(INK, style=Qt.PenStyle.DashLine)))
        top = 1.0
        for i, (key, _label, rgb) in enumerate(SPEED_TEST_BARS):
            ms = times.get(key)
            if ms is None or not math.isfinite(ms) or ms <= 0:
                continue
            speedup = dense_ms / ms
            self._speedups[key] = speedup
            plot.addItem(
                pg.BarGraphItem(
                    x=[i], height=[speedup], width=0.6, brush=_brush(rgb), pen=pg.mkPen(FRAME_RGB)
                )
            )
            _text(plot, format_speedup(speedup), i, speedup + 0.04)
            top = max(top, speedup)
        plot.setYRange(0, top * 1.15 + 0.1, padding=0)
