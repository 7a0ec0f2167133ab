"""Model statistics at a glance: counts, sparsity, FLOPs, size, and sparsity per layer.

:class:`StatsPanel` shows a :class:`core.analysis.stats.ModelStats`: a compact grid of
figures (parameters, non-zeros, sparsity of the prunable part and of the whole
model, dense vs effective FLOPs, dense vs sparse size and the ratios) above a
horizontal bar chart of each layer's sparsity. Layers pruned to 100% are red:
a network with a fully pruned layer computes nothing past it. A planned
sparsity per layer (the global-pruning preview) can be overlaid as dashed
outlines with :meth:`StatsPanel.show_planned`.

Sizes are in MB of 10^6 bytes; ratios read "dense / pruned", so "7.6x" means
7.6 times smaller (or fewer FLOPs).

FLOPs need an example input. Given the controller, the panel offers "Set input…"
beside the FLOPs (it reads "Change input…" once there is one): an
:class:`~gui.panels.input_spec.InputSpecDialog` asks for a shape, dtype and token-id
range, the model tries it in a worker, and the spec is remembered for that
model and used again whenever it is opened. Layers whose FLOPs the counter
does not know (an LSTM, attention internals) are listed under the figures as
"not counted".
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.analysis.stats import ModelStats, UncountedLayer
from core.common.jobs import CancelToken, Job
from gui.panels.input_spec import (
    DTYPES,
    InputSpec,
    InputSpecDialog,
    InputSpecError,
    check_input_job,
    prefill_spec,
    recall_spec,
    remember_spec,
    shape_text,
)
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
from gui.widgets.formatting import format_count, format_si

if TYPE_CHECKING:
    from gui.session.controller import SessionController
    from gui.session.requests import Request

ROW_PX = 24
"""Height of one layer's bar in the chart, in pixels."""
BAR_THICKNESS = 0.66
NAME_CHARS = 34
"""Layer names longer than this are shortened in the middle on the axis."""
VALUE_KEYS: tuple[str, ...] = (
    "total",
    "prunable",
    "nonzeros",
    "pruned",
    "sparsity",
    "model_sparsity",
    "flops_dense",
    "flops_effective",
    "flops_ratio",
    "size_dense",
    "size_sparse",
    "compression",
)
"""Keys of the figures shown in the grid (see :meth:`StatsPanel.value_text`)."""


# -- formatting ---------------------------------------------------------------
def format_mb(nbytes: int) -> str:
    """Bytes as MB (10^6 bytes), with about three significant digits."""
    mb = nbytes / 1e6
    if mb >= 100:
        return f"{mb:,.0f} MB"
    if mb >= 1:
        return f"{mb:.2f} MB"
    return f"{mb:.3g} MB"


def format_ratio(dense: float | None, reduced: float | None) -> str:
    """``dense / reduced`` as ``7.6x`` (two decimals below 2x); ``n/a`` or ``∞`` when undefined."""
    if dense is None or reduced is None:
        return "n/a"
    if reduced == 0:
        return "∞" if dense else "n/a"
    ratio = dense / reduced
    return f"{ratio:.2f}x" if ratio < 2 else f"{ratio:.1f}x"


def format_percent(fraction: float) -> str:
    """``12.6%``."""
    return f"{100.0 * fraction:.1f}%"


def not_counted_text(layers: tuple[UncountedLayer, ...]) -> str:
    """The sentence listing layers whose FLOPs are not counted ("" when none)."""
    if not layers:
        return ""
    names = ", ".join(f"{layer.name} ({layer.module_type})" for layer in layers)
    return (
        f"Not counted: {names}. torch's FLOP counter has no formula for these layers, so "
        "the FLOPs above leave them out."
    )


def input_text(tensor: torch.Tensor | None) -> str:
    """``input 1×3×32×32 float32`` from the shape and dtype only (no value is read)."""
    if tensor is None:
        return "no example input"
    names = {dtype: name for name, dtype in DTYPES.items()}
    dtype = names.get(tensor.dtype, str(tensor.dtype).removeprefix("torch."))
    return f"input {shape_text(tuple(tensor.shape), '×')} {dtype}"


def short_name(name: str, limit: int = NAME_CHARS) -> str:
    """``name`` shortened in the middle with ``…`` to at most ``limit`` characters."""
    if len(name) <= limit:
        return name
    head = (limit - 1) // 2
    return f"{name[:head]}…{name[-(limit - 1 - head) :]}"


def stats_values(stats: ModelStats) -> dict[str, str]:
    """The grid's text for every key of :data:`VALUE_KEYS`."""
    return {
        "total": format_count(stats.total_params),
        "prunable": format_count(stats.prunable_params),
        "nonzeros": format_count(stats.nonzeros),
        "pruned": format_count(stats.pruned),
        "sparsity": format_percent(stats.sparsity),
        "model_sparsity": format_percent(stats.model_sparsity),
        "flops_dense": format_si(stats.flops_dense),
        "flops_effective": format_si(stats.flops_effective),
        "flops_ratio": format_ratio(stats.flops_dense, stats.flops_effective),
        "size_dense": format_mb(stats.bytes_dense),
        "size_sparse": format_mb(stats.bytes_sparse),
        "compression": format_ratio(stats.bytes_dense, stats.bytes_sparse),
    }


# -- the bar chart ------------------------------------------------------------
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


# -- the panel ----------------------------------------------------------------
CHECK_LABEL = "Try example input"


class StatsPanel(QWidget):
    """Whole-model figures above a per-layer sparsity chart (see module docstring).

    Signals:
        input_applied(spec): an :class:`InputSpec` was accepted by the model and is
            now the session's example input (statistics are being refreshed).
        input_failed(message): a spec was refused (the message is shown in the
            dialog if one is open, else under the figures).
    """

    input_applied = Signal(object)
    input_failed = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, controller: SessionController | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self._values: dict[str, QLabel] = {}
        self._stats: ModelStats | None = None
        self._spec: InputSpec | None = None
        self._check: Request | None = None  # the spec being tried (None: none, or dropped)
        self._dialog: InputSpecDialog | None = None
        self._input_error = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(10)
        layout.addWidget(self._build_figures())
        self.flops_note = QLabel(self)
        self.flops_note.setObjectName("flops_note")
        self.flops_note.setWordWrap(True)
        self.flops_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.flops_note.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.flops_note)
        self._legend = QLabel(self)
        self._legend.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self._legend)
        self.chart = SparsityChart(self)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.chart)
        layout.addWidget(scroll, stretch=1)
        self._update_legend()
        self.clear()
        if controller is not None:
            controller.model_loaded.connect(self._on_model_loaded)
            controller.mutating_changed.connect(lambda _on: self._update_input_widgets())
        self._update_input_widgets()

    def _build_figures(self) -> QWidget:
        box = QWidget(self)
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        pairs = (
            ((0, 0), "Parameters", "total", "every parameter of the model"),
            ((0, 2), "Prunable", "prunable", "entries of the parameters that can be pruned"),
            ((1, 0), "Non-zeros", "nonzeros", "parameters whose value is not exactly 0"),
            ((1, 2), "Pruned", "pruned", "entries pruned by the masks"),
            ((2, 0), "Sparsity", "sparsity", "pruned share of the prunable entries"),
            ((2, 2), "Whole model", "model_sparsity", "pruned share of all parameters"),
            ((2, 4), "Accuracy", "accuracy", "top-1 accuracy on the test split in this state: "
             "measured after every step for the digits demos, else by Evaluate in the "
             "Accuracy tab"),
        )  # fmt: skip
        for (row, col), title, key, tip in pairs:
            grid.addWidget(self._caption(title, tip), row, col)
            grid.addWidget(self._value(key, tip), row, col + 1)
        self._build_table(grid, first_row=3)
        grid.setColumnStretch(6, 1)
        return box

    def _build_table(self, grid: QGridLayout, first_row: int) -> None:
        for col, text in enumerate(("dense", "pruned", "ratio"), start=1):
            header = self._caption(text, "")
            header.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
            header.setContentsMargins(0, 6, 0, 0)
            grid.addWidget(header, first_row, col)
        rows = (
            ("FLOPs", ("flops_dense", "flops_effective", "flops_ratio"),
             "per forward pass of the example input (2 per multiply-add); effective = "
             "dense × kept fraction, what a sparse kernel would execute"),
            ("Size", ("size_dense", "size_sparse", "compression"),
             "MB of 10^6 bytes; pruned = kept values + a 1-bit mask per pruned layer"),
        )  # fmt: skip
        for offset, (title, keys, tip) in enumerate(rows, start=1):
            grid.addWidget(self._caption(title, tip), first_row + offset, 0)
            for col, key in enumerate(keys, start=1):
                grid.addWidget(self._value(key, tip), first_row + offset, col)
        self.input_button = QPushButton("Set input…", self)
        self.input_button.setObjectName("set_input")
        self.input_button.setToolTip(
            "Give the example input FLOPs are counted on: its shape including the batch, "
            "dtype, and for token ids their range. Remembered for this model."
        )
        self.input_button.clicked.connect(self.open_input_dialog)
        self.input_button.setText("Change input…")  # the wider text sets the width
        self.input_button.setMinimumWidth(self.input_button.sizeHint().width())
        self.input_label = self._caption("", "the example input FLOPs are counted on")
        self.input_label.setObjectName("input_description")
        grid.addWidget(self.input_button, first_row + 1, 4)
        grid.addWidget(self.input_label, first_row + 1, 5, 1, 2)

    def _caption(self, text: str, tip: str) -> QLabel:
        label = QLabel(text, self)
        palette = label.palette()
        palette.setColor(label.foregroundRole(), QColor(MUTED))
        label.setPalette(palette)
        label.setToolTip(tip)
        return label

    def _value(self, key: str, tip: str) -> QLabel:
        label = QLabel("", self)
        label.setObjectName(f"stat_{key}")
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setToolTip(tip)
        font = QFont(label.font())
        font.setBold(True)
        font.setFeature(QFont.Tag("tnum"), 1)  # tabular digits line up in columns
        label.setFont(font)
        self._values[key] = label
        return label

    # -- public API -----------------------------------------------------------
    def show_stats(self, stats: ModelStats) -> None:
        """Fill the figures and the per-layer chart from ``stats`` (clears any plan)."""
        self._stats = stats
        for key, text in stats_values(stats).items():
            self._values[key].setText(text)
        compression = self._values["compression"]
        compression.setToolTip(
            f"{format_mb(stats.bytes_dense)} / {format_mb(stats.bytes_sparse)}"
            if math.isfinite(stats.compression)
            else "nothing left to store"
        )
        names = [layer.name for layer in stats.layers]
        self.chart.show_layers(names, [layer.sparsity for layer in stats.layers])
        self._update_legend()
        self._update_input_widgets()

    def show_accuracy(self, accuracy: float) -> None:
        """Show the top-1 test accuracy beside the sparsity (NaN: not measured here)."""
        label = self._values["accuracy"]
        label.setText("n/a" if math.isnan(accuracy) else format_percent(accuracy))

    def show_planned(self, per_layer: dict[str, float]) -> None:
        """Overlay planned sparsity (fractions by layer name); an empty dict clears it."""
        self.chart.show_planned(per_layer)
        self._update_legend()

    def clear_planned(self) -> None:
        """Remove the planned overlay."""
        self.show_planned({})

    def clear(self) -> None:
        """Show dashes and an empty chart (no model)."""
        self._stats = None
        for label in self._values.values():
            label.setText("–")
        self.chart.show_layers([], [])
        self._update_legend()
        self._update_input_widgets()

    def value_text(self, key: str) -> str:
        """The text shown for figure ``key`` (one of :data:`VALUE_KEYS`, or ``accuracy``)."""
        return self._values[key].text()

    def bar_values(self) -> list[float]:
        """Per-layer sparsity in percent, as drawn, in layer order."""
        return self.chart.values()

    def planned_values(self) -> dict[str, float]:
        """Planned per-layer sparsity in percent, as drawn, by layer name."""
        return self.chart.planned_values()

    # -- the example input --------------------------------------------------------
    def input_spec(self) -> InputSpec | None:
        """The spec set through this panel for the current model (None: none set here)."""
        return self._spec

    def not_counted_text(self) -> str:
        """The "not counted" sentence shown under the figures ("" when none)."""
        return "" if self._stats is None else not_counted_text(self._stats.not_counted)

    def flops_note_text(self) -> str:
        """All the text under the figures: an input error, the hint, "not counted"."""
        return self.flops_note.text()

    def suggested_spec(self) -> tuple[InputSpec, str]:
        """What the dialog starts from, and why: the current spec, the remembered one,
        the example input's shape and dtype, or a guess from the first layer."""
        controller = self._require_controller()
        loaded, session = controller.loaded, controller.session
        if loaded is None or session is None:
            raise RuntimeError("no model is loaded")
        if self._spec is not None:
            return self._spec, "the input in use"
        remembered = recall_spec(loaded.key)
        if remembered is not None:
            return remembered, "the input remembered for this model"
        guess, why = prefill_spec(session.model)
        current = session.example_input
        names = {dtype: name for name, dtype in DTYPES.items()}
        if current is not None and current.dim() and current.dtype in names:
            dtype = names[current.dtype]
            low, high = (guess.low, guess.high) if guess.is_tokens else (0, 0)
            return InputSpec(tuple(current.shape), dtype, low, high), "the model's own input"
        return guess, f"Prefilled: {why}."

    def open_input_dialog(self) -> InputSpecDialog:
        """Show the input dialog (not modal-blocking); OK tries the spec on the model."""
        if self._dialog is not None:
            self._dialog.raise_()
            return self._dialog
        spec, hint = self.suggested_spec()
        dialog = InputSpecDialog(spec, hint, self)
        dialog.submitted.connect(lambda chosen: self.set_input_spec(chosen, dialog=dialog))
        dialog.cancel_requested.connect(self._drop_pending)
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self._dialog = dialog
        dialog.open()
        return dialog

    def input_dialog(self) -> InputSpecDialog | None:
        """The open input dialog, if any."""
        return self._dialog

    def set_input_spec(
        self, spec: InputSpec, *, remember: bool = True, dialog: InputSpecDialog | None = None
    ) -> bool:
        """Try ``spec`` on the model in a worker; if it runs, make it the example input.

        Then statistics are refreshed (FLOPs appear), the spec is remembered for
        the model (``remember``), ``input_applied`` is emitted and ``dialog``
        closes. A refused spec is explained in ``dialog`` (or under the figures)
        and ``input_failed`` is emitted; the previous input stays.
        """
        controller = self._require_controller()
        session = controller.session
        loaded = controller.loaded
        if session is None or loaded is None:
            return False
        if dialog is not None:
            dialog.set_checking(True)

        def job(token: CancelToken) -> Job[torch.Tensor]:
            return (yield from check_input_job(session, spec, token))

        def done(tensor: torch.Tensor) -> None:
            if self._check is not request or controller.session is not session:
                return  # dropped meanwhile, or another model is shown
            self._check = None
            session.example_input = tensor
            self._spec = spec
            self._input_error = ""
            if remember:
                remember_spec(loaded.key, spec)
            self._update_input_widgets()
            controller.refresh()
            self.input_applied.emit(spec)
            if dialog is not None:
                dialog.accept()

        def failed(exc: BaseException) -> None:
            if self._check is request:
                self._check = None
            if not isinstance(exc, InputSpecError):  # the controller reports it too
                if dialog is not None:
                    dialog.show_error(f"{type(exc).__name__}: {exc}")
                return
            if dialog is not None and dialog.isVisible():
                dialog.show_error(str(exc))
            else:
                origin = "the input given" if remember else "the input remembered for this model"
                self._input_error = f"FLOPs: {origin} did not fit: {exc}. Use Set input… to fix it."
                self._update_input_widgets()
            self.input_failed.emit(str(exc))

        if self._check is not None:
            self._check.cancel()  # a spec tried since replaces it
        request = self._check = controller.submit(CHECK_LABEL, job, silent_errors=(InputSpecError,))
        request.finished.connect(done)
        request.failed.connect(failed)
        return True

    def _on_model_loaded(self) -> None:
        controller = self._require_controller()
        self._spec = None
        self._check = None
        self._input_error = ""
        if self._dialog is not None:
            self._dialog.reject()
        loaded = controller.loaded
        if loaded is not None:
            remembered = recall_spec(loaded.key)
            if remembered is not None:
                self.set_input_spec(remembered, remember=False)
        self._update_input_widgets()

    def _drop_pending(self) -> None:
        """The dialog was cancelled: stop trying its spec (queued or running)."""
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def _dialog_closed(self, dialog: InputSpecDialog) -> None:
        if self._dialog is dialog:
            self._dialog = None
        dialog.deleteLater()

    def _require_controller(self) -> SessionController:
        if self.controller is None:
            raise RuntimeError("this panel was built without a controller")
        return self.controller

    def _update_input_widgets(self) -> None:
        controller = self.controller
        session = None if controller is None else controller.session
        self.input_button.setVisible(controller is not None)
        self.input_label.setVisible(controller is not None)
        has_input = session is not None and session.example_input is not None
        self.input_button.setText("Change input…" if has_input else "Set input…")
        self.input_button.setEnabled(
            controller is not None and session is not None and not controller.mutating
        )
        self.input_label.setText("" if session is None else input_text(session.example_input))
        alarm = hex_color(ALARM_RGB)
        notes = []
        if self._input_error:
            notes.append((self._input_error, alarm))
        if self._stats is not None and self._stats.flops_dense is None and controller is not None:
            notes.append(
                ("FLOPs need an example input: Set input… gives its shape and dtype.", MUTED)
            )
        if text := self.not_counted_text():
            notes.append((text, alarm))
        self.flops_note.setText(
            "<br>".join(
                f"<span style='color:{color}'>{html.escape(text)}</span>" for text, color in notes
            )
        )
        self.flops_note.setVisible(bool(notes))

    def _update_legend(self) -> None:
        def swatch(rgb: tuple[int, int, int], mark: str = "■") -> str:
            return f"<span style='color:{hex_color(rgb)}; font-size:large'>{mark}</span>"

        parts = [
            f"{swatch(sparsity_color(0.2))}{swatch(sparsity_color(0.8))} sparsity",
            f"{swatch(ALARM_RGB)} 100% pruned (layer output is zero)",
        ]
        if self.chart.planned_values():
            parts.append(f"{swatch(ACCENT_RGB, '▭')} planned")
        gap = "&nbsp;&nbsp;&nbsp;"
        self._legend.setText(f"<span style='color:{MUTED}'>{gap.join(parts)}</span>")
