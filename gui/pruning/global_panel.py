"""Global magnitude pruning across many layers, planned before it is applied.

:class:`GlobalPanel` prunes the smallest |w| of all the remaining weights of
the included layers together, so layers end at different sparsities. A table
(:class:`~gui.pruning.layer_table.LayerTableModel`) lists every layer: whether
it takes part, its current sparsity, an optional cap, and the sparsity the
plan would leave.
Layers the plan would prune away entirely are highlighted, since a layer with
no weights left cuts the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.pruning.operations import GlobalPrune
from gui.pruning.layer_table import (
    CAP,
    HEADERS,
    INCLUDE,
    LAYER,
    PLANNED,
    CapDelegate,
    LayerTableModel,
    parse_cap,
)
from gui.pruning.method_pages import PREVIEW_DELAY_MS
from gui.widgets.forms import (
    ERROR_STYLE,
    INFO_STYLE,
    PREVIEW_STYLE,
    add_row,
    make_form,
    note_label,
    percent_slider,
)

if TYPE_CHECKING:
    from core.pruning.global_prune import GlobalPlan
    from gui.session.controller import SessionController
    from gui.session.requests import Request

#: Narrowest width (pixels) the Layer column is fitted to.
NAME_COLUMN_MIN = 80

#: Names of the layer table (:mod:`gui.pruning.layer_table`) offered here too.
__all__ = ["CAP", "INCLUDE", "LAYER", "PLANNED", "GlobalPanel", "LayerTableModel", "parse_cap"]


class GlobalPanel(QWidget):
    """Plan and apply a global magnitude pruning (see module docstring).

    Signals:
        planned(sparsities): planned sparsity per included layer after a plan,
            ``{}`` when the plan was cleared (stale).
    """

    planned = Signal(dict)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._plan_request: Request | None = None  # the plan asked for, until it is shown
        self._name_fitted = False
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PREVIEW_DELAY_MS)
        self._plan_timer.timeout.connect(self.preview_plan)
        self.model = LayerTableModel(self)
        self._build_widgets()
        self._build_layout()
        self._connect()
        self._reload(None)

    # -- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.slider = percent_slider(
            "Percent of the remaining weights of the included layers to prune, "
            "smallest |w| across all of them first."
        )
        self.slider.setValue(50.0)
        self.explain = note_label(
            "Ranks the remaining weights of all included layers together by magnitude and "
            "prunes the smallest, so layers end at different sparsities."
        )
        self.live_check = QCheckBox("Live preview")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Re-plan while you move the slider or edit the table.")
        self.preview_button = QPushButton("Preview plan")
        self.preview_button.setToolTip(
            "Compute the planned sparsity of every layer, changing nothing."
        )
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.setToolTip("Prune the included layers by global magnitude (undoable).")
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "color: #921a12; background: #fadbd8; border: 1px solid #e6a59e;"
            "border-radius: 3px; padding: 4px 6px;"
        )
        self.warning.setToolTip("A layer with no weights left cuts the network's signal path.")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("What the panel would do, or why it cannot.")
        self.table = self._build_table()

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setItemDelegateForColumn(CAP, CapDelegate(table))
        table.setToolTip("Layers taking part; tick to include, double-click Max % to cap.")
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        # Names differ at their ends ("layer3.1.conv1"): elide their common start.
        table.setTextElideMode(Qt.TextElideMode.ElideLeft)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.setEditTriggers(
            QTableView.EditTrigger.DoubleClicked
            | QTableView.EditTrigger.EditKeyPressed
            | QTableView.EditTrigger.SelectedClicked
        )
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setMinimumSectionSize(28)
        for column in range(len(HEADERS)):
            mode = QHeaderView.ResizeMode.ResizeToContents
            if column == LAYER:
                mode = QHeaderView.ResizeMode.Interactive  # the user drags it wider
            header.setSectionResizeMode(column, mode)
        return table

    def _fit_name_column(self) -> None:
        """Size the Layer column to its longest name, within what the table has room for.

        It stays at least :data:`NAME_COLUMN_MIN` pixels wide (longer names are
        elided at the start, their ends stay readable); the user may drag it wider.
        """
        if not self.isVisible():
            self._name_fitted = False  # the width is known once the panel is shown
            return
        table, header = self.table, self.table.horizontalHeader()
        others = sum(
            max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(len(HEADERS))
            if c != LAYER
        )
        wanted = max(table.sizeHintForColumn(LAYER), header.sectionSizeHint(LAYER))
        room = table.viewport().width() - others
        table.setColumnWidth(LAYER, max(NAME_COLUMN_MIN, min(wanted, room)))
        self._name_fitted = True

    def _build_layout(self) -> None:
        amount = QGroupBox("Global magnitude pruning")
        form = make_form()
        add_row(form, "Amount %", self.slider, self.slider.toolTip())
        form.addRow("", self.explain)
        amount.setLayout(form)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.live_check)
        buttons.addStretch(1)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(amount)
        layout.addLayout(buttons)
        layout.addWidget(self.warning)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def _connect(self) -> None:
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
        return self._plan_timer.isActive()

    # -- public API -----------------------------------------------------------------------------
    def set_targets(self, names: tuple[str, ...]) -> None:
        """Include exactly ``names`` (empty: every layer)."""
        self.model.set_included(set(names) if names else None)
        self._on_changed()

    def set_amount_percent(self, percent: float) -> None:
        """Set the amount, in percent of the remaining weights of the included layers."""
        self.slider.setValue(percent)

    def amount_percent(self) -> float:
        """The amount in percent (one decimal)."""
        return round(float(self.slider.value()), 1)

    def set_included(self, name: str, included: bool) -> None:
        """Include or exclude (lock) layer ``name``."""
        row = self.model.rows.index(self.model.row_of(name))
        state = Qt.CheckState.Checked if included else Qt.CheckState.Unchecked
        self.model.setData(self.model.index(row, INCLUDE), state, Qt.ItemDataRole.CheckStateRole)

    def set_cap(self, name: str, percent: float | None) -> None:
        """Cap layer ``name`` at ``percent`` sparsity (None: no cap)."""
        row = self.model.rows.index(self.model.row_of(name))
        value = "" if percent is None else str(percent)
        if not self.model.setData(self.model.index(row, CAP), value):
            raise PruningError(f"{name}: a cap must be between 0 and 100 %, got {percent}")

    def included(self) -> tuple[str, ...]:
        """The included layers, in model order."""
        return tuple(row.name for row in self.model.rows if row.included)

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

    def planned_sparsity(self) -> dict[str, float]:
        """Planned sparsity of each included layer after the last plan ({} before one)."""
        return {
            row.name: planned
            for row in self.model.rows
            if row.included and (planned := row.planned_sparsity) is not None
        }

    def wiped_layers(self) -> tuple[str, ...]:
        """Layers the last plan would prune away entirely."""
        return tuple(row.name for row in self.model.rows if row.wiped)

    def status_text(self) -> str:
        """The status line's text."""
        return self.status.text()

    def preview_plan(self) -> bool:
        """Ask the controller for a plan of the current op; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._clear_plan()
        self._set_status("Planning…", PREVIEW_STYLE)
        request = self._plan_request = self.controller.plan(op)
        request.finished.connect(self._on_plan_ready)
        request.failed.connect(lambda error: self._set_status(str(error), ERROR_STYLE))
        return True

    def apply(self) -> bool:
        """Apply the current global pruning; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._plan_timer.stop()
        self._set_status(f"Applying — {op.label}…", PREVIEW_STYLE)
        request = self.controller.apply(op)
        request.finished.connect(
            lambda _entry: self._set_status(f"Applied — {op.label}", INFO_STYLE)
        )
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
            self._set_status(self._describe(op), INFO_STYLE)
        self._update_buttons(op is not None)
        # Live plans only while the panel is on screen: a plan the user never
        # asked for must not reach other views (e.g. the Statistics overlay).
        if replan and op is not None and self.live_check.isChecked() and self.isVisible():
            self._plan_timer.start()
        else:
            self._plan_timer.stop()

    def showEvent(self, event: QShowEvent) -> None:
        """Coming on screen with live preview on: plan what the panel shows."""
        super().showEvent(event)
        if not self._name_fitted:
            self._fit_name_column()
        has_plan = any(row.planned is not None for row in self.model.rows)
        if self.live_check.isChecked() and not has_plan and self._plan_request is None:
            self._on_changed()

    def hideEvent(self, event: QHideEvent) -> None:
        """Going off screen: drop a live plan not asked for yet."""
        self._plan_timer.stop()
        super().hideEvent(event)

    def _describe(self, op: GlobalPrune) -> str:
        remaining = sum(row.numel - row.pruned for row in self.model.rows if row.included)
        count = round(float(op.amount) * remaining)
        return (
            f"Prunes {count:,} of the {remaining:,} remaining weights in {len(op.targets)} layers"
        )

    def _update_buttons(self, valid: bool) -> None:
        self.preview_button.setEnabled(valid)
        self.apply_button.setEnabled(valid and not self.controller.mutating)

    def _clear_plan(self) -> None:
        had_plan = any(row.planned is not None for row in self.model.rows)
        if self._plan_request is not None:  # a plan of what the panel no longer shows
            self._plan_request.cancel()
            self._plan_request = None
        self.model.set_planned({})
        self._update_warning()
        if had_plan:
            self.planned.emit({})

    def _on_plan_ready(self, plan: GlobalPlan) -> None:
        """Show the plan: it is of the op the panel shows (any change cancels its request)."""
        session = self.controller.session
        self._plan_request = None
        if session is None:
            return
        self.model.update_current(session)
        after = {
            name: self.model.row_of(name).pruned + cut.pruned for name, cut in plan.cuts.items()
        }
        self.model.set_planned(after)
        self._update_warning()
        self._set_status(
            f"Plan — not applied: {plan.pruned:,} weights would be pruned", PREVIEW_STYLE
        )
        self.planned.emit(self.planned_sparsity())

    def _update_warning(self) -> None:
        wiped = self.wiped_layers()
        self.warning.setVisible(bool(wiped))
        if wiped:
            noun = "layer" if len(wiped) == 1 else "layers"
            self.warning.setText(f"⚠  {len(wiped)} {noun} would be pruned away entirely")

    def _on_masks_changed(self, _names: tuple[str, ...]) -> None:
        session = self.controller.session
        if session is None:
            return
        self.model.update_current(session)
        self._on_changed(replan=False)

    def _on_busy(self, busy: bool) -> None:
        self.apply_button.setEnabled(self.preview_button.isEnabled() and not busy)

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)
