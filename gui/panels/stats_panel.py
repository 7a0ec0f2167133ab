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

The parts are their own modules: :mod:`gui.panels.stats_figures` (the grid),
:mod:`gui.panels.sparsity_chart` (the chart and its legend) and
:mod:`gui.panels.stats_format` (the text of the figures); this module fills
them and keeps the example input.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from core.analysis.stats import ModelStats
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
)
from gui.panels.sparsity_chart import (
    BAR_THICKNESS,
    NAME_CHARS,
    ROW_PX,
    LayerAxis,
    SparsityChart,
    legend_html,
    short_name,
)
from gui.panels.stats_figures import StatsFigures
from gui.panels.stats_format import (
    VALUE_KEYS,
    format_mb,
    format_percent,
    format_ratio,
    input_text,
    not_counted_text,
    stats_values,
)
from gui.widgets.colormaps import ALARM_RGB, MUTED, hex_color

if TYPE_CHECKING:
    from gui.session.controller import SessionController
    from gui.session.requests import Request

__all__ = [  # the chart and the formatting helpers were defined here before; still importable
    "BAR_THICKNESS",
    "CHECK_LABEL",
    "NAME_CHARS",
    "ROW_PX",
    "VALUE_KEYS",
    "LayerAxis",
    "SparsityChart",
    "StatsPanel",
    "format_mb",
    "format_percent",
    "format_ratio",
    "input_text",
    "not_counted_text",
    "short_name",
    "stats_values",
]

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
        self._stats: ModelStats | None = None
        self._spec: InputSpec | None = None
        self._check: Request | None = None  # the spec being tried (None: none, or dropped)
        self._dialog: InputSpecDialog | None = None
        self._input_error = ""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(10)
        self.figures = StatsFigures(self)
        self.input_button = self.figures.input_button
        self.input_button.clicked.connect(self.open_input_dialog)
        self.input_label = self.figures.input_label
        layout.addWidget(self.figures)
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

    # -- public API -----------------------------------------------------------
    def show_stats(self, stats: ModelStats) -> None:
        """Fill the figures and the per-layer chart from ``stats`` (clears any plan)."""
        self._stats = stats
        self.figures.show_stats(stats)
        names = [layer.name for layer in stats.layers]
        self.chart.show_layers(names, [layer.sparsity for layer in stats.layers])
        self._update_legend()
        self._update_input_widgets()

    def show_accuracy(self, accuracy: float) -> None:
        """Show the top-1 test accuracy beside the sparsity (NaN: not measured here)."""
        self.figures.show_accuracy(accuracy)

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
        self.figures.clear()
        self.chart.show_layers([], [])
        self._update_legend()
        self._update_input_widgets()

    def value_text(self, key: str) -> str:
        """The text shown for figure ``key`` (one of :data:`VALUE_KEYS`, or ``accuracy``)."""
        return self.figures.value_text(key)

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
        self._legend.setText(legend_html(planned=bool(self.chart.planned_values())))
