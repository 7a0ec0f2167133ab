"""Controls for pruning the layers selected in the model tree.

:class:`LayerControls` lets the user pick a pruning method, its parameters and
an amount, previews the resulting masks live (throttled, never piling up
jobs) and applies, resets or makes permanent the pruning of the selected
layers. Everything goes through the :class:`~gui.session.controller.SessionController`.

Invalid combinations (a count above the layer's unit count, an N:M width that
does not divide, a structured ``dim`` out of range, a 1-D target for a
structured method, ...) never raise out of the widget: they are shown in a red
status line and Apply stays disabled.

The GUI thread never reads a whole layer: the units a "further" count may take
from a big layer, and the threshold's scale (the largest |w|), are measured in
a worker (:meth:`~gui.session.controller.SessionController.measure_layers`, or with
the layer views' snapshot) and arrive as ``figures_ready``; until then the
status says what is being counted and Apply waits.

The jobs live apart: the widgets in :mod:`gui.pruning.layer_form`, building and
checking the operation in :mod:`gui.pruning.layer_op`, the live preview in
:mod:`gui.pruning.layer_preview` (worded by :mod:`gui.pruning.preview_status`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from core.common.errors import PruningError
from core.pruning.operations import LayerPrune, Reset
from gui.pruning.layer_form import LayerForm
from gui.pruning.layer_op import INLINE_COUNT_LIMIT, LayerOpBuilder, RemainingUnknown
from gui.pruning.layer_preview import LivePreview
from gui.pruning.preview_status import PREVIEW_PENDING
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, PREVIEW_STYLE

if TYPE_CHECKING:
    from gui.session.controller import SessionController
    from gui.session.layer_reads import Preview
    from gui.session.requests import Request


def _inline_limit() -> int:
    # Read here at every check, so setting this module's INLINE_COUNT_LIMIT takes effect.
    return INLINE_COUNT_LIMIT


class LayerControls(LayerForm):
    """Prune the selected layers with one method (see module docstring).

    Signals:
        op_changed(op): the current :class:`LayerPrune`, or None when the
            controls are invalid or nothing is selected.
        previewed(preview): a :class:`~gui.session.layer_reads.Preview` of the
            current operation arrived (the status says what Apply will do).
    """

    op_changed = Signal(object)
    previewed = Signal(object)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._targets: tuple[str, ...] = ()
        self._op: LayerPrune | None = None
        self._error = ""
        self._counting = ""  # what is being counted in a worker, for the status line
        # How the last Apply, Reset or Make permanent ended, shown until a control moves.
        self._outcome: tuple[str, str] | None = None
        self._preview_after_count = False
        self._updating = False
        self._ops = LayerOpBuilder(controller, _inline_limit)
        self._preview = LivePreview(
            controller,
            lambda: None if self._error else self._op,
            self.live_check.isChecked,
            self,
        )
        self._connect()
        self.set_targets(())

    def _connect(self) -> None:
        self.changed.connect(self._on_changed)
        self.live_check.toggled.connect(self._on_live_toggled)
        self.apply_button.clicked.connect(self.apply)
        self.reset_button.clicked.connect(self.reset)
        self.permanent_button.clicked.connect(self.make_permanent)
        self._preview.ready.connect(self._on_preview_ready)
        self._preview.failed.connect(lambda message: self._set_status(message, ERROR_STYLE))
        c = self.controller
        c.mutating_changed.connect(self._on_busy)
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_loaded)
        c.masks_changed.connect(self._on_masks_changed)
        c.figures_ready.connect(self._on_figures_ready)
        self._on_method_changed()

    # -- public API -------------------------------------------------------------------------
    @property
    def preview_scheduled(self) -> bool:
        """Whether a live preview is waiting for the controls to settle."""
        return self._preview.scheduled

    @property
    def counting(self) -> bool:
        """Whether the controls wait for a worker to count what remains of a big layer."""
        return bool(self._counting)

    @property
    def targets(self) -> tuple[str, ...]:
        """The layers the controls act on."""
        return self._targets

    def set_targets(self, names: tuple[str, ...]) -> None:
        """Act on ``names`` (the model tree's selection); empty disables the controls."""
        self._targets = tuple(names)
        self._outcome = None
        self.hint.setVisible(not self._targets)
        self.body.setEnabled(bool(self._targets))
        infos = self._ops.infos(self._targets)
        self._show_targets(infos)
        if infos:
            self._updating = True
            try:
                for page in self.pages.values():
                    page.set_targets(infos, self._ops.session())
            finally:
                self._updating = False
        # A new selection shows the layer as it is; previews start when a control moves.
        self._revalidate(preview=False)

    def build_op(self) -> LayerPrune:
        """The operation the controls describe.

        Raises:
            RemainingUnknown: a "further" count waits for the units that remain in a
                big layer (counted in a worker; ``figures_ready`` follows).
            PruningError: nothing selected, or an invalid combination.
        """
        return self._ops.build(self._targets, self.page(), self.amount_box.amount(), self.mode())

    def current_op(self) -> LayerPrune | None:
        """The last valid operation (None when the controls are invalid)."""
        return self._op

    # -- actions ----------------------------------------------------------------------------
    def apply(self) -> bool:
        """Apply the current operation; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._preview.stop()
        self._set_status(f"Applying — {op.label}…", PREVIEW_STYLE)
        self._follow(self.controller.apply(op), op.label)
        return True

    def reset(self) -> bool:
        """Restore the selected layers' original weights (undoable)."""
        if not self._targets or self.controller.session is None:
            return False
        op = Reset(self._targets)
        self._follow(self.controller.apply(op), op.label)
        return True

    def make_permanent(self) -> bool:
        """After confirmation, bake the selected layers' zeros in (clears the undo history)."""
        if not self._targets or self.controller.session is None:
            return False
        if not self._confirm_permanent():
            return False
        label = f"Make permanent {self._target_summary()}"
        self._follow(self.controller.make_permanent(self._targets), label)
        return True

    def _follow(self, request: Request, label: str) -> None:
        """Say in the status line how an applied operation ended, until a control moves."""
        request.finished.connect(
            lambda _entry: self._show_outcome(f"Applied — {label}", INFO_STYLE)
        )
        request.failed.connect(lambda error: self._show_outcome(str(error), ERROR_STYLE))

    def _show_outcome(self, text: str, style: str) -> None:
        self._outcome = (text, style)
        self._update_status()

    def _confirm_permanent(self) -> bool:
        answer = QMessageBox.warning(
            self,
            "Make pruning permanent?",
            f"Make the pruning of {self._target_summary()} permanent?\n\n"
            "This bakes the zeros in, drops the original weights and clears the undo "
            "history; it cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _target_summary(self) -> str:
        return self._targets[0] if len(self._targets) == 1 else f"{len(self._targets)} layers"

    def _valid_op(self) -> LayerPrune | None:
        try:
            return self.build_op()
        except PruningError:
            return None

    # -- reactions ------------------------------------------------------------------------------
    def _on_changed(self) -> None:
        self._outcome = None
        self._revalidate(preview=True)

    def _revalidate(self, preview: bool) -> None:
        """Rebuild the op from the controls; schedule a preview when asked and live."""
        if self._updating:
            return
        self._show_units(self._ops.infos(self._targets))
        self._show_mode_texts()
        self._update_largest()
        self._counting = ""
        try:
            op: LayerPrune | None = self.build_op()
            self._error = ""
        except RemainingUnknown as exc:
            op, self._error, self._counting = None, "", str(exc)
        except PruningError as exc:
            op, self._error = None, str(exc)
        self._op = op
        # A preview asked for while counting starts once the count is known.
        self._preview_after_count = bool(self._counting) and (preview or self._preview_after_count)
        self._update_status()
        self._update_buttons()
        self.op_changed.emit(op)
        if preview and op is not None and self.live_check.isChecked():
            self._set_status(PREVIEW_PENDING, PREVIEW_STYLE)
            self._preview.schedule()
        else:
            self._preview.stop()

    def _update_largest(self) -> None:
        """Give a page that shows the largest |w| the selection's, measured in a worker."""
        page = self.page()
        if not page.needs_largest or not self._targets or self.controller.session is None:
            return
        page.show_largest(self._ops.largest(self._targets))

    def _update_status(self) -> None:
        if not self._targets:
            self._set_status("", "")
        elif self._error:
            self._set_status(self._error, ERROR_STYLE)
        elif self._counting:
            self._set_status(self._counting, INFO_STYLE)
        elif self._outcome is not None:
            self._set_status(*self._outcome)
        else:
            self._set_status("Ready to apply", INFO_STYLE)

    def _update_buttons(self) -> None:
        has_session = self.controller.session is not None and bool(self._targets)
        self.apply_button.setEnabled(self._op is not None and not self.controller.mutating)
        self.reset_button.setEnabled(has_session)
        self.permanent_button.setEnabled(has_session)

    def _on_preview_ready(self, preview: Preview, text: str, style: str) -> None:
        self._set_status(text, style)
        self.previewed.emit(preview)

    def _on_live_toggled(self, on: bool) -> None:
        if not on:
            self._preview.stop()
        self._on_changed()

    def _on_busy(self, busy: bool) -> None:
        self.apply_button.setEnabled(self._op is not None and not busy)

    def _on_model_loaded(self) -> None:
        session = self.controller.session
        known = set(session.names) if session is not None else set()
        self.set_targets(tuple(name for name in self._targets if name in known))

    def _on_masks_changed(self, names: tuple[str, ...]) -> None:
        if set(names) & set(self._targets):
            self._revalidate(preview=False)

    def _on_figures_ready(self, names: tuple[str, ...]) -> None:
        """Figures measured in a worker: the scale note, and a count that waited for them."""
        if not set(names) & set(self._targets):
            return
        # Keep a preview that is due; start the one a count waited for.
        self._revalidate(preview=self._preview_after_count or self._preview.scheduled)
