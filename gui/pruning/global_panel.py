"""Global magnitude pruning across many layers, planned before it is applied.

:class:`GlobalPanel` prunes the smallest |w| of all the remaining weights of
the included layers together, so layers end at different sparsities. A table
(:class:`~gui.pruning.layer_table.LayerTableModel`) lists every layer: whether
it takes part, its current sparsity, an optional cap, and the sparsity the
plan would leave.
Layers the plan would prune away entirely are highlighted, since a layer with
no weights left cuts the network.

The jobs live apart: the widgets in :mod:`gui.pruning.global_form`, the live
plan's delay and the plan on its way in :mod:`gui.pruning.global_plan`, the
status line's words in :mod:`gui.pruning.global_status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QWidget

from core.common.errors import PruningError
from core.pruning.operations import GlobalPrune
from gui.pruning.global_form import NAME_COLUMN_MIN as NAME_COLUMN_MIN
from gui.pruning.global_form import GlobalForm
from gui.pruning.global_plan import PlanRequests
from gui.pruning.global_status import PLANNING, applied_text, applying_text, describe, plan_text
from gui.pruning.layer_table import CAP, INCLUDE, LAYER, PLANNED, LayerTableModel, parse_cap
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, PREVIEW_STYLE

if TYPE_CHECKING:
    from core.pruning.global_prune import GlobalPlan
    from gui.session.controller import SessionController

#: Names of the layer table (:mod:`gui.pruning.layer_table`) offered here too.
__all__ = ["CAP", "INCLUDE", "LAYER", "PLANNED", "GlobalPanel", "LayerTableModel", "parse_cap"]


class GlobalPanel(GlobalForm):
    """Plan and apply a global magnitude pruning (see module docstring).

    Signals:
        planned(sparsities): planned sparsity per included layer after a plan,
            ``{}`` when the plan was cleared (stale).
    """

    planned = Signal(dict)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._plans = PlanRequests(controller, self)
        self._connect()
        self._reload(None)

    def _connect(self) -> None:
        self._plans.due.connect(self.preview_plan)
        self._plans.ready.connect(self._on_plan_ready)
        self._plans.failed.connect(lambda message: self._set_status(message, ERROR_STYLE))
        self.slider.valueChanged.connect(lambda _value: self._on_changed())
        self.model.edited.connect(lambda: self._on_changed())
        self.live_check.toggled.connect(lambda _on: self._on_changed())
        self.preview_button.clicked.connect(self.preview_plan)
        self.apply_button.clicked.connect(self.apply)
        c = self.controller
        c.model_loaded.connect(lambda: self._reload(None))
        c.model_replaced.connect(lambda: self._reload(None))
        c.masks_changed.connect(self._on_masks_changed)
        c.mutating_changed.connect(self._on_busy)

    @property
    def plan_scheduled(self) -> bool:
        """Whether a live plan is waiting for the controls to settle."""
        return self._plans.scheduled

    @property
    def plan_pending(self) -> bool:
        """Whether a plan was asked for and has not ended yet."""
        return self._plans.pending

    # -- public API -----------------------------------------------------------------------------
    def set_targets(self, names: tuple[str, ...]) -> None:
        """Include exactly ``names`` (empty: every layer)."""
        self.model.set_included(set(names) if names else None)
        self._on_changed()

    def build_op(self) -> GlobalPrune:
        """The global pruning the panel describes.

        Raises:
            PruningError: no model, or no layer included.
        """
        if self.controller.session is None:
            raise PruningError("no model is loaded")
        targets = self.included()
        if not targets:
            raise PruningError("include at least one layer")
        caps = tuple(
            (row.name, round(row.cap / 100.0, 6))
            for row in self.model.rows
            if row.included and row.cap is not None
        )
        return GlobalPrune(targets, round(self.amount_percent() / 100.0, 6), caps)

    def preview_plan(self) -> bool:
        """Ask the controller for a plan of the current op; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._clear_plan()
        self._set_status(PLANNING, PREVIEW_STYLE)
        self._plans.ask(op)
        return True

    def apply(self) -> bool:
        """Apply the current global pruning; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._plans.stop()
        self._set_status(applying_text(op), PREVIEW_STYLE)
        request = self.controller.apply(op)
        request.finished.connect(lambda _entry: self._set_status(applied_text(op), INFO_STYLE))
        request.failed.connect(lambda error: self._set_status(str(error), ERROR_STYLE))
        return True

    # -- reactions ------------------------------------------------------------------------
    def _valid_op(self) -> GlobalPrune | None:
        try:
            op = self.build_op()
        except PruningError as exc:
            self._set_status(str(exc), ERROR_STYLE)
            return None
        return op

    def _reload(self, included: set[str] | None) -> None:
        self.model.load(self.controller.session, included)
        self._fit_name_column()
        self._clear_plan()
        self._on_changed()

    def _on_changed(self, replan: bool = True) -> None:
        """Drop the stale plan, re-check the op and (live) schedule a new plan."""
        self._clear_plan()
        op = self._valid_op()
        if op is not None:
            self._set_status(describe(op, self.model.rows), INFO_STYLE)
        self._update_buttons(op is not None)
        # Live plans only while the panel is on screen: a plan the user never
        # asked for must not reach other views (e.g. the Statistics overlay).
        if replan and op is not None and self.live_check.isChecked() and self.isVisible():
            self._plans.schedule()
        else:
            self._plans.stop()

    def showEvent(self, event: QShowEvent) -> None:
        """Coming on screen with live preview on: plan what the panel shows."""
        super().showEvent(event)
        if self.live_check.isChecked() and not self._has_plan() and not self._plans.pending:
            self._on_changed()

    def hideEvent(self, event: QHideEvent) -> None:
        """Going off screen: drop a live plan not asked for yet."""
        self._plans.stop()
        super().hideEvent(event)

    def _update_buttons(self, valid: bool) -> None:
        self.preview_button.setEnabled(valid)
        self.apply_button.setEnabled(valid and not self.controller.mutating)

    def _clear_plan(self) -> None:
        had_plan = self._has_plan()
        self._plans.cancel()  # a plan of what the panel no longer shows
        self.model.set_planned({})
        self._update_warning()
        if had_plan:
            self.planned.emit({})

    def _on_plan_ready(self, plan: GlobalPlan) -> None:
        """Show the plan: it is of the op the panel shows (any change cancels its request)."""
        session = self.controller.session
        if session is None:
            return
        self.model.update_current(session)
        after = {
            name: self.model.row_of(name).pruned + cut.pruned for name, cut in plan.cuts.items()
        }
        self.model.set_planned(after)
        self._update_warning()
        self._set_status(plan_text(plan), PREVIEW_STYLE)
        self.planned.emit(self.planned_sparsity())

    def _on_masks_changed(self, _names: tuple[str, ...]) -> None:
        session = self.controller.session
        if session is None:
            return
        self.model.update_current(session)
        self._on_changed(replan=False)

    def _on_busy(self, busy: bool) -> None:
        self.apply_button.setEnabled(self.preview_button.isEnabled() and not busy)
