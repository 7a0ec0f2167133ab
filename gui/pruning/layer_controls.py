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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.pruning.methods import method_class
from core.pruning.operations import LayerPrune, Mode, Reset

if TYPE_CHECKING:
    from core.pruning.masks import PackedMask
    from core.pruning.methods.base import PruningMethod
    from core.pruning.session import PruningSession
    from core.pruning.targets import TargetInfo
    from gui.session.controller import SessionController
    from gui.session.layer_reads import Preview
    from gui.session.requests import Request

from gui.pruning.method_pages import (
    PREVIEW_DELAY_MS,
    AmountBox,
    CurrentPageStack,
    ParamPage,
    check_remaining,
    check_target,
    counts_remaining,
    make_page,
    offered_methods,
)
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, PREVIEW_STYLE, WARNING_STYLE, note_label

#: Layers up to this many entries have their remaining units counted at once (well
#: under a millisecond; their packed masks are immutable); bigger ones in a worker.
INLINE_COUNT_LIMIT = 1 << 18


class RemainingUnknown(PruningError):
    """The units that remain in a layer are still being counted in a worker."""


class LayerControls(QWidget):
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
        self._preview_after_count = False
        self._updating = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._request_preview)
        self._build_widgets()
        self._build_layout()
        self._connect()
        self.set_targets(())

    # -- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.hint = QLabel("Select one or more layers in the model tree to prune them.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #6b6b6b; padding: 6px;")
        self.target_label = QLabel()
        self.target_label.setWordWrap(True)
        self.target_label.setStyleSheet("font-weight: 600;")
        self.target_label.setToolTip("The layers the controls below act on.")
        self.method_combo = QComboBox()
        self.method_combo.setToolTip("The pruning method: which weights are chosen to be zeroed.")
        self.summary = note_label()
        self.pages: dict[str, ParamPage] = {}
        self.param_stack = CurrentPageStack()
        for name in offered_methods():
            self._add_method(name)
        self.amount_box = AmountBox()
        self.further_radio = QRadioButton()
        self.set_radio = QRadioButton()
        self.set_radio.setChecked(True)
        self.further_radio.setToolTip(
            "Prune on top of the current mask: the amount is taken from what still remains."
        )
        self.set_radio.setToolTip(
            "Recompute from the original weights, so the layer ends at exactly this sparsity."
        )
        self._build_buttons()

    def _add_method(self, name: str) -> None:
        method = method_class(name)
        self.method_combo.addItem(method.label, name)
        index = self.method_combo.count() - 1
        self.method_combo.setItemData(index, method.summary, Qt.ItemDataRole.ToolTipRole)
        page = make_page(name)
        page.changed.connect(self._on_changed)
        self.pages[name] = page
        self.param_stack.addWidget(page)

    def _build_buttons(self) -> None:
        self.live_check = QCheckBox("Live preview")
        self.live_check.setChecked(True)
        self.live_check.setToolTip(
            "Show the masks the current settings would produce while you adjust them."
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("What the controls would do, or why they cannot.")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.setToolTip("Prune the selected layers with these settings (undoable).")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Restore the selected layers' original weights (undoable).")
        self.permanent_button = QPushButton("Make permanent…")
        self.permanent_button.setToolTip(
            "Bake the zeros into the selected layers and drop their originals (cannot be undone)."
        )

    def _build_layout(self) -> None:
        self.body = QWidget()
        column = QVBoxLayout(self.body)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        column.addWidget(self.target_label)
        column.addWidget(self._method_group())
        column.addWidget(self.amount_box)
        self.param_group = self._param_group()
        column.addWidget(self.param_group)
        column.addWidget(self._mode_group())
        column.addWidget(self.live_check)
        column.addWidget(self.status)
        column.addLayout(self._button_row())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)
        outer.addWidget(self.hint)
        outer.addWidget(scroll)

    def _method_group(self) -> QGroupBox:
        group = QGroupBox("Method")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.method_combo)
        layout.addWidget(self.summary)
        return group

    def _param_group(self) -> QGroupBox:
        group = QGroupBox("Parameters")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addWidget(self.param_stack)
        return group

    def _mode_group(self) -> QGroupBox:
        group = QGroupBox("Mode")
        group.setToolTip("How the amount relates to what is already pruned.")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        buttons = QButtonGroup(self)
        for radio in (self.set_radio, self.further_radio):
            buttons.addButton(radio)
            layout.addWidget(radio)
        return group

    def _button_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.apply_button)
        row.addWidget(self.reset_button)
        row.addStretch(1)
        row.addWidget(self.permanent_button)
        return row

    def _connect(self) -> None:
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.amount_box.changed.connect(self._on_changed)
        self.set_radio.toggled.connect(self._on_changed)
        self.live_check.toggled.connect(self._on_live_toggled)
        self.apply_button.clicked.connect(self.apply)
        self.reset_button.clicked.connect(self.reset)
        self.permanent_button.clicked.connect(self.make_permanent)
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
        return self._preview_timer.isActive()

    @property
    def targets(self) -> tuple[str, ...]:
        """The layers the controls act on."""
        return self._targets

    def set_targets(self, names: tuple[str, ...]) -> None:
        """Act on ``names`` (the model tree's selection); empty disables the controls."""
        self._targets = tuple(names)
        self.hint.setVisible(not self._targets)
        self.body.setEnabled(bool(self._targets))
        self._update_target_label()
        infos = self._infos()
        if infos:
            self._updating = True
            try:
                for page in self.pages.values():
                    page.set_targets(infos, self._session())
            finally:
                self._updating = False
        # A new selection shows the layer as it is; previews start when a control moves.
        self._revalidate(preview=False)

    def method_name(self) -> str:
        """The registry name of the selected method."""
        return str(self.method_combo.currentData())

    def set_method(self, name: str) -> None:
        """Select method ``name`` (a registry name)."""
        index = self.method_combo.findData(name)
        if index < 0:
            raise PruningError(f"method {name!r} is not offered here")
        self.method_combo.setCurrentIndex(index)

    def page(self, name: str | None = None) -> ParamPage:
        """The parameter page of ``name`` (default: the selected method)."""
        return self.pages[name or self.method_name()]

    def set_amount_percent(self, percent: float) -> None:
        """Set the amount in percent (the quantile for the quantile rule)."""
        page = self.page()
        if page.owns_amount():
            page.set_percent(percent)
        else:
            self.amount_box.set_percent(percent)

    def set_amount_count(self, count: int) -> None:
        """Set the amount as a count of units (clamped to the first target's units)."""
        self.amount_box.set_count(count)

    def mode(self) -> Mode:
        """``"set"`` or ``"further"``."""
        return "set" if self.set_radio.isChecked() else "further"

    def set_mode(self, mode: str) -> None:
        """Select ``"further"`` or ``"set"``."""
        if mode not in ("further", "set"):
            raise PruningError(f"mode must be 'further' or 'set', got {mode!r}")
        (self.set_radio if mode == "set" else self.further_radio).setChecked(True)

    def build_op(self) -> LayerPrune:
        """The operation the controls describe.

        Raises:
            RemainingUnknown: a "further" count waits for the units that remain in a
                big layer (counted in a worker; ``figures_ready`` follows).
            PruningError: nothing selected, or an invalid combination.
        """
        session = self._session()
        if not self._targets:
            raise PruningError("select one or more layers first")
        method = self._build_method()
        infos = [session.info(name) for name in self._targets]
        counting = []
        for info in infos:
            try:
                self._check_target(session, info, method)
            except RemainingUnknown:
                counting.append(info.name)
        if counting:
            where = counting[0] if len(counting) == 1 else f"{len(counting)} layers"
            raise RemainingUnknown(f"Counting the {method.unit} that remain in {where}…")
        return LayerPrune(self._targets, method, self.mode())

    def current_op(self) -> LayerPrune | None:
        """The last valid operation (None when the controls are invalid)."""
        return self._op

    def status_text(self) -> str:
        """The status line's text."""
        return self.status.text()

    @property
    def preview_pending(self) -> bool:
        """Whether a live preview is scheduled (the controls wait for the user to pause)."""
        return self._preview_timer.isActive()

    @property
    def counting(self) -> bool:
        """Whether the controls wait for a worker to count what remains of a big layer."""
        return bool(self._counting)

    def apply(self) -> bool:
        """Apply the current operation; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._preview_timer.stop()
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
        """Say in the status line how an applied operation ended."""
        request.finished.connect(lambda _entry: self._set_status(f"Applied — {label}", INFO_STYLE))
        request.failed.connect(lambda error: self._set_status(str(error), ERROR_STYLE))

    # -- building -----------------------------------------------------------------------------
    def _session(self) -> PruningSession:
        session = self.controller.session
        if session is None:
            raise PruningError("no model is loaded")
        return session

    def _infos(self) -> list[TargetInfo]:
        session = self.controller.session
        if session is None:
            return []
        try:
            return [session.info(name) for name in self._targets]
        except PruningError:
            return []

    def _build_method(self) -> PruningMethod:
        return self.page().method(self.amount_box.amount())

    def _check_target(
        self, session: PruningSession, info: TargetInfo, method: PruningMethod
    ) -> None:
        """Check ``method`` on one layer; a "further" count against what remains of it.

        Raises:
            RemainingUnknown: the remaining units of a big layer are not counted yet
                (a worker is asked to count them).
        """
        check_target(method, info, None)  # shape, parameters, a count against all units
        if self.mode() != "further" or not counts_remaining(method):
            return  # "set" starts again from the whole layer
        current = session.packed_mask(info.name)
        if current is None:
            return  # nothing pruned: every unit remains
        if info.numel <= INLINE_COUNT_LIMIT:
            check_target(method, info, current)
            return
        pattern = method.pattern()
        figures = self.controller.layer_figures(info.name)
        if figures is None or pattern not in figures.remaining:
            self.controller.measure_layers((info.name,), (pattern,))
            raise RemainingUnknown(info.name)
        check_remaining(method, info, figures.remaining[pattern])

    def _valid_op(self) -> LayerPrune | None:
        try:
            return self.build_op()
        except PruningError:
            return None

    # -- reactions ------------------------------------------------------------------------------
    def _on_method_changed(self, _index: int = -1) -> None:
        name = self.method_name()
        method = method_class(name)
        page = self.page(name)
        self.summary.setText(method.summary)
        self.param_stack.setCurrentWidget(page)
        self.param_stack.updateGeometry()
        self.param_group.setVisible(not page.empty)
        self.amount_box.setVisible(method.uses_amount and not page.owns_amount())
        self.amount_box.count_radio.setEnabled(method.uses_amount)
        self._on_changed()

    def _on_changed(self, *_args: object) -> None:
        self._revalidate(preview=True)

    def _revalidate(self, preview: bool) -> None:
        """Rebuild the op from the controls; schedule a preview when asked and live."""
        if self._updating:
            return
        self._update_units()
        self._update_mode_texts()
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
            self._set_status("Preview — not applied", PREVIEW_STYLE)
            self._preview_timer.start()
        else:
            self._preview_timer.stop()

    def _update_largest(self) -> None:
        """Give a page that shows the largest |w| the selection's, measured in a worker."""
        page = self.page()
        if not page.needs_largest or not self._targets or self.controller.session is None:
            return
        figures = [self.controller.layer_figures(name) for name in self._targets]
        known = [f for f in figures if f is not None]
        if len(known) == len(figures):
            page.show_largest(max((f.largest for f in known), default=0.0))
        else:
            page.show_largest(None)
            self.controller.measure_layers(self._targets)

    def _update_units(self) -> None:
        infos = self._infos()
        if infos:
            units, noun = self.page().units(infos[0].shape)
            self.amount_box.set_units(units, noun)

    def _update_mode_texts(self) -> None:
        page = self.page()
        if method_class(self.method_name()).uses_amount and not page.owns_amount():
            amount = self.amount_box.amount_text()
            self.set_radio.setText(f"Set sparsity to {amount}")
            self.further_radio.setText(f"Prune a further {amount} of what remains")
        else:
            self.set_radio.setText("Recompute from the original weights")
            self.further_radio.setText("Apply on top of the current mask")

    def _update_status(self) -> None:
        if not self._targets:
            self._set_status("", "")
        elif self._error:
            self._set_status(self._error, ERROR_STYLE)
        elif self._counting:
            self._set_status(self._counting, INFO_STYLE)
        else:
            self._set_status("Ready to apply", INFO_STYLE)

    def _update_buttons(self) -> None:
        has_session = self.controller.session is not None and bool(self._targets)
        self.apply_button.setEnabled(self._op is not None and not self.controller.mutating)
        self.reset_button.setEnabled(has_session)
        self.permanent_button.setEnabled(has_session)

    def _update_target_label(self) -> None:
        infos = self._infos()
        if not infos:
            self.target_label.setText("")
            return
        if len(infos) == 1:
            shape = " × ".join(str(d) for d in infos[0].shape)
            text = f"{infos[0].name}\n{infos[0].module_type}  {shape}  ({infos[0].numel:,} weights)"
        else:
            total = sum(info.numel for info in infos)
            text = f"{len(infos)} layers, {total:,} weights"
        self.target_label.setText(text)
        self.target_label.setToolTip("\n".join(info.name for info in infos))

    def _target_summary(self) -> str:
        return self._targets[0] if len(self._targets) == 1 else f"{len(self._targets)} layers"

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def _request_preview(self) -> None:
        if self._op is None or not self.live_check.isChecked() or self.controller.session is None:
            return
        request = self.controller.preview(self._op)
        request.finished.connect(self._on_preview_ready)
        request.failed.connect(lambda error: self._set_status(str(error), ERROR_STYLE))

    def _on_preview_ready(self, preview: Preview) -> None:
        """Show a preview of the operation the controls still describe (else it is stale)."""
        op = self._op
        if (
            op is None
            or self._error
            or not (preview.op is op or preview.op.to_dict() == op.to_dict())
        ):
            return
        masks = preview.masks
        session = self._session()
        total = sum(session.info(name).numel for name in masks)
        pruned = sum(0 if mask is None else mask.pruned for mask in masks.values())
        share = pruned / total if total else 0.0
        self._set_status(*_preview_status(session, masks, share, total))
        self.previewed.emit(preview)

    def _on_live_toggled(self, on: bool) -> None:
        if not on:
            self._preview_timer.stop()
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
        self._revalidate(preview=self._preview_after_count or self._preview_timer.isActive())

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


def _preview_status(
    session: PruningSession, masks: Mapping[str, PackedMask | None], share: float, total: int
) -> tuple[str, str]:
    """What Apply will do, as a status line and its style; a warning when it empties layers."""
    emptied = [
        name
        for name, mask in masks.items()
        if mask is not None and mask.pruned == session.info(name).numel
    ]
    text = f"Preview — not applied: {share:.1%} of {total:,} weights would be pruned"
    if not emptied:
        return text, PREVIEW_STYLE
    which = "the layer" if len(masks) == 1 else f"{len(emptied)} of {len(masks)} layers"
    return (
        f"Careful: Apply prunes every weight of {which} (the layer then passes nothing on). "
        + text.removeprefix("Preview — not applied: "),
        WARNING_STYLE,
    )
