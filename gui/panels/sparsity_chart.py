"""The statistics panel's chart: each layer's sparsity as a horizontal bar.

:class:`SparsityChart` draws one bar per layer (0..100% of its weights pruned),
coloured by sparsity; layers pruned to 100% are red, since a network with a
fully pruned layer computes nothing past it. A planned sparsity per layer (the
global-pruning preview) is overlaid as dashed outlines. :func:`legend_html`
is the legend written under it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from gui.widgets.colormaps import (
    ACCENT_RGB,
    ALARM_RGB,
    BACKGROUND,
    FRAME_RGB,
    INK,
    MUTED,
    hex_color,
    sparsity_color,
    style_plot,
)

ROW_PX = 24
"""Height of one layer's bar in the chart, in pixels."""
BAR_THICKNESS = 0.66
NAME_CHARS = 34
"""Layer names longer than this are shortened in the middle on the axis."""


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    """``name`` shortened in the middle with ``…`` to at most ``limit`` characters."""
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return f"{name[:head]}…{name[-(limit - 1 - head) :]}"


class LayerAxis(pg.AxisItem):
    """A left axis that writes layer names at integer positions (one per bar)."""

    def __init__(self) -> None:
        super().__init__("left")
        self._names: list[str] = []

    def set_names(self, names: list[str]) -> None:
        """Label position ``i`` with ``names[i]`` (shortened when long)."""
        self._names = list(names)
        self.setTicks([[(i, short_name(n)) for i, n in enumerate(self._names)], []])

    def names(self) -> list[str]:
        """The full names, in bar order."""
        return list(self._names)


class SparsityChart(pg.PlotWidget):
    """Horizontal bars of per-layer sparsity (0..100%), with an optional planned overlay."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.axis = LayerAxis()
        super().__init__(parent, background=BACKGROUND, axisItems={"left": self.axis})
        plot = self.getPlotItem()
        style_plot(plot)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.invertY(True)
        plot.showGrid(x=True, y=False, alpha=0.2)
        plot.setLabel("bottom", "sparsity (% of the layer's weights pruned)", color=INK)
        plot.getAxis("bottom").setTicks([[(v, f"{v}%") for v in (0, 25, 50, 75, 100)], []])
        self.bars = pg.BarGraphItem(x0=[], y=[], width=[], height=BAR_THICKNESS)
        self.planned_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=BAR_THICKNESS)
        plot.addItem(self.bars)
        plot.addItem(self.planned_bars)
        self._labels: list[pg.TextItem] = []
        self._values: list[float] = []
        self._planned_values: dict[str, float] = {}

    def show_layers(self, names: list[str], sparsities: list[float]) -> None:
        """Draw one bar per layer; ``sparsities`` are fractions in [0, 1]."""
        self._values = [100.0 * s for s in sparsities]
        self.axis.set_names(names)
        count = len(names)
        self.bars.setOpts(
            x0=np.zeros(count),
            y=np.arange(count, dtype=float),
            width=np.array(self._values),
            height=BAR_THICKNESS,
            **_bar_colors(sparsities),
        )
        self._planned_values = {}
        self._draw_planned()
        self._write_labels()
        self.getPlotItem().setYRange(-0.6, max(count, 1) - 0.4, padding=0)
        height = ROW_PX * max(count, 1) + 64
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def show_planned(self, planned: dict[str, float]) -> None:
        """Outline the planned sparsity (fractions) of the named layers."""
        names = self.axis.names()
        self._planned_values = {n: 100.0 * f for n, f in planned.items() if n in names}
        self._draw_planned()
        self._write_labels()

    def _fit_x(self) -> None:
        """0..100% plus room on the right for the value labels (more with a plan)."""
        self.getPlotItem().setXRange(-3, 142 if self._planned_values else 120, padding=0)

    def values(self) -> list[float]:
        """The bar lengths in percent, in layer order."""
        return list(self._values)

    def planned_values(self) -> dict[str, float]:
        """The planned bar lengths in percent, by layer name."""
        return dict(self._planned_values)

    def _draw_planned(self) -> None:
        names = self.axis.names()
        rows = [i for i, n in enumerate(names) if n in self._planned_values]
        widths = [self._planned_values[names[i]] for i in rows]
        self.planned_bars.setOpts(
            x0=np.zeros(len(rows)),
            y=np.array(rows, dtype=float),
            width=np.array(widths),
            height=BAR_THICKNESS + 0.16,
            brush=pg.mkBrush(None),
            pen=pg.mkPen(ACCENT_RGB, width=2, style=Qt.PenStyle.DashLine),
        )

    def _write_labels(self) -> None:
        self._fit_x()
        names = self.axis.names()
        while len(self._labels) < len(names):
            label = pg.TextItem("", color=INK, anchor=(0, 0.5))
            self.getPlotItem().addItem(label)
            self._labels.append(label)
        for i, label in enumerate(self._labels):
            label.setVisible(i < len(names))
            if i >= len(names):
                continue
            value = self._values[i]
            planned = self._planned_values.get(names[i])
            text = f"{value:.1f}%" if planned is None else f"{value:.1f}% → {planned:.1f}%"
            label.setText(text)
            label.setColor(hex_color(ALARM_RGB) if value >= 100.0 else INK)
            label.setPos(max(value, planned or 0.0) + 1.0, i)


def _bar_colors(sparsities: list[float]) -> dict[str, object]:
    """Brushes and pens by sparsity (pyqtgraph needs single ones when there are no bars)."""
    if not sparsities:
        return {"brush": pg.mkBrush(None), "pen": pg.mkPen(None), "brushes": None, "pens": None}
    return {
        "brushes": [pg.mkBrush(sparsity_color(s)) for s in sparsities],
        "pens": [
            pg.mkPen((140, 20, 20), width=1.5) if s >= 1.0 else pg.mkPen(FRAME_RGB)
            for s in sparsities
        ],
    }


def legend_html(planned: bool) -> str:
    """The chart's legend: the sparsity colours, 100% pruned, and (``planned``) the plan."""

    def swatch(rgb: tuple[int, int, int], mark: str = "■") -> str:
        return f"<span style='color:{hex_color(rgb)}; font-size:large'>{mark}</span>"

    parts = [
        f"{swatch(sparsity_color(0.2))}{swatch(sparsity_color(0.8))} sparsity",
        f"{swatch(ALARM_RGB)} 100% pruned (layer output is zero)",
    ]
    if planned:
        parts.append(f"{swatch(ACCENT_RGB, '▭')} planned")
    gap = "&nbsp;&nbsp;&nbsp;"
    return f"<span style='color:{MUTED}'>{gap.join(parts)}</span>"
