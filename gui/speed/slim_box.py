"""Make the model smaller for real: group pruning, slim, and harvesting all-zero channels.

:class:`SlimBox` is the speed panel's lower part:

* **Structured group pruning** (:class:`core.pruning.groups.GroupPrune`):
  prune a share of each dependency group's channels by their norm, so the
  masked model is exactly what slimming makes smaller.
* **Slim** (:func:`core.pruning.slim.slim_job` then
  :func:`core.pruning.slim.slim_operation`): remove the pruned channels
  physically, as one undoable step; says how many channels in how many groups,
  the parameters before and after, the largest output difference, and the
  layers the dependency graph could not handle (left intact).
* **Harvest hidden structure** (:func:`core.pruning.slim.harvest_candidates`):
  list the channels unstructured pruning left entirely zero, and remove them.

Every step runs as a job through the controller; the window refreshes its tree
and views on ``model_replaced``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.common.jobs import CancelToken, Job, Progress, scaled
from core.pruning.groups import GroupPrune
from core.pruning.slim import SlimResult, harvest_candidates, slim_job, slim_operation
from gui.speed.row_table import ModelIndex, RowTableModel
from gui.speed.tracked_job import TrackedJob
from gui.widgets.forms import (
    ERROR_STYLE,
    INFO_STYLE,
    add_row,
    make_form,
    note_label,
    percent_slider,
)

if TYPE_CHECKING:
    from core.pruning.session import PruningSession
    from core.pruning.slim import HarvestCandidate
    from gui.session.controller import SessionController

SETTINGS_GROUP = "slim"
HARVEST_HEADERS = ("Group", "Channels", "Why they can go")
HARVEST_TIPS = (
    "The dependency group (named by its first producer layer).",
    "All-zero channels of the group that can be removed without changing the output.",
    "What makes them removable.",
)


def format_params(count: int, unit_of: int | None = None) -> str:
    """``1.2M``, ``310k``, ``950``, in the unit of ``unit_of`` (default: of ``count``)."""
    scale = count if unit_of is None else unit_of
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if scale >= factor:
            return f"{count / factor:.3g}{unit}"
    return f"{count:,}"


def slim_summary(result: SlimResult) -> str:
    """``Slim: removed 96 channels in 8 groups · 1.2M → 0.31M parameters · max |diff| 2e-7``."""
    channels = sum(result.removed.values())
    groups = sum(1 for n in result.removed.values() if n)
    before = format_params(result.params_before)
    after = format_params(result.params_after, unit_of=result.params_before)
    return (
        f"Slim: removed {channels:,} channel{'s' if channels != 1 else ''} in {groups} "
        f"group{'s' if groups != 1 else ''} · {before} → {after} parameters · "
        f"max |diff| {result.max_abs_diff:.1g}"
    )


def skipped_text(result: SlimResult) -> str:
    """The layers left intact, with why, and what could not be carried over (empty: none)."""
    parts = []
    if result.skipped:
        lines = [f"• {item.layer}: {item.reason}" for item in result.skipped]
        parts.append("Left intact (their channels could not be removed):\n" + "\n".join(lines))
    if result.notes:
        parts.append("\n".join(f"• {note}" for note in result.notes))
    return "\n".join(parts)


class HarvestTableModel(RowTableModel["HarvestCandidate"]):
    """Harvest candidates: the group, how many channels, and why they can go."""

    headers = HARVEST_HEADERS
    header_tips = HARVEST_TIPS

    def set_candidates(self, candidates: list[HarvestCandidate]) -> None:
        """Show ``candidates`` (an empty list clears the table)."""
        self.set_rows(candidates)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row, column = self._rows[index.row()], index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                return row.root
            if column == 1:
                return _channels_text(row.channels)
            return row.reason
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def _channels_text(channels: tuple[int, ...]) -> str:
    """``3 (#0, 4, 7)``: how many, and which (the group root's channel numbers)."""
    shown = ", ".join(str(c) for c in channels[:8])
    return f"{len(channels)} (#{shown}{', …' if len(channels) > 8 else ''})"


class SlimBox(QGroupBox):
    """Group pruning, slim and harvest for the session's model (see module docstring).

    Signals:
        slimmed(result): a :class:`SlimResult` replaced the session's model.
    """

    slimmed = Signal(object)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__("Make it smaller for real", parent)
        self.controller = controller
        self.settings = QSettings()
        self.group_job = TrackedJob("Group prune", controller, self)
        self.slim_job = TrackedJob("Slim", controller, self)
        self.harvest_job = TrackedJob("Find all-zero channels", controller, self)
        self.harvest_model = HarvestTableModel(self)
        self._last: SlimResult | None = None
        self._build()
        self._restore_settings()
        self._connect()
        self._update_buttons()

    # -- construction -----------------------------------------------------------------------
    def _build(self) -> None:
        self.explain = note_label(
            "Masked zeros cost as much as any weight. To gain time, remove whole channels: "
            "prune them as dependency groups (a conv's output channel together with its batch "
            "norm and the next layer's inputs), then Slim turns the masked model into a "
            "smaller dense one with the same outputs."
        )
        self.amount_slider = percent_slider(
            "Percent of each group's remaining channels to prune, least important first "
            "(importance: the norm of every weight the group holds for the channel)."
        )
        self.amount_slider.setValue(50.0)
        self.norm_combo = QComboBox()
        self.norm_combo.addItem("L2", 2)
        self.norm_combo.addItem("L1", 1)
        self.round_spin = QSpinBox()
        self.round_spin.setRange(1, 64)
        self.round_spin.setValue(1)
        self.group_button = QPushButton("Prune channel groups")
        self.group_button.setToolTip(
            "Prune the chosen share of every channel group (undoable). The classifier's "
            "outputs are never pruned."
        )
        self.slim_button = QPushButton("Slim (remove pruned channels physically)")
        self.slim_button.setToolTip(
            "Build a physically smaller model without the channels pruned as whole groups, "
            "check its outputs against the masked model, and make it the session's model "
            "(one undoable step). The next benchmark measures it as 'slim'."
        )
        self.slim_result = QLabel()
        self.slim_result.setWordWrap(True)
        self.slim_result.setObjectName("slimResult")
        self.slim_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.skipped_label = note_label("")
        self.harvest_button = QPushButton("Find all-zero channels")
        self.harvest_button.setToolTip(
            "Unstructured pruning sometimes leaves whole rows or channels at zero. Find the "
            "ones that can be removed without changing the output."
        )
        self.remove_button = QPushButton("Remove them")
        self.remove_button.setToolTip(
            "Slim the model, removing the channels listed (and any pruned as whole groups); "
            "one undoable step."
        )
        self.harvest_table = QTableView()
        self.harvest_table.setModel(self.harvest_model)
        self.harvest_table.verticalHeader().setVisible(False)
        self.harvest_table.setShowGrid(False)
        self.harvest_table.setAlternatingRowColors(True)
        self.harvest_table.setMinimumHeight(70)
        self.harvest_table.setMaximumHeight(150)
        header = self.harvest_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.harvest_status = note_label("")
        self.status = QLabel()
        self.status.setWordWrap(True)

        group_box = QGroupBox("Structured group pruning")
        form = make_form()
        add_row(form, "Amount %", self.amount_slider, self.amount_slider.toolTip())
        add_row(
            form,
            "Norm",
            self.norm_combo,
            "How a channel's importance is measured: L2 (root of the sum of squares) or "
            "L1 (sum of magnitudes) over all of the group's weights for that channel.",
        )
        add_row(
            form,
            "Keep a multiple of",
            self.round_spin,
            "Leave each group a multiple of this many channels. Kernels run best on "
            "multiples of 8 (vector width, tensor cores); 1 keeps exactly the amount.",
        )
        group_layout = QVBoxLayout(group_box)
        group_layout.addLayout(form)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.group_button)
        group_layout.addLayout(row)

        harvest_box = QGroupBox("Harvest hidden structure")
        harvest = QVBoxLayout(harvest_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.harvest_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        harvest.addLayout(buttons)
        harvest.addWidget(self.harvest_table)
        harvest.addWidget(self.harvest_status)

        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addWidget(self.explain)
        layout.addWidget(group_box)
        slim_row = QHBoxLayout()
        slim_row.addWidget(self.slim_button)
        slim_row.addStretch(1)
        layout.addLayout(slim_row)
        layout.addWidget(self.slim_result)
        layout.addWidget(self.skipped_label)
        layout.addWidget(harvest_box)
        layout.addWidget(self.status)

    def _connect(self) -> None:
        self.group_button.clicked.connect(self.group_prune)
        self.slim_button.clicked.connect(self.slim)
        self.harvest_button.clicked.connect(self.find_all_zero)
        self.remove_button.clicked.connect(self.remove_all_zero)
        for job in (self.group_job, self.slim_job, self.harvest_job):
            job.started.connect(self._update_buttons)
            job.ended.connect(lambda _outcome: self._update_buttons())
        self.amount_slider.valueChanged.connect(lambda _v: self._save_settings())
        self.norm_combo.currentIndexChanged.connect(lambda _i: self._save_settings())
        self.round_spin.valueChanged.connect(lambda _v: self._save_settings())
        c = self.controller
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_replaced)
        c.masks_changed.connect(lambda _names: self._forget_candidates())

    def _restore_settings(self) -> None:
        s = self.settings
        try:
            self.amount_slider.setValue(float(str(s.value(f"{SETTINGS_GROUP}/amount", 50.0))))
            norm = int(str(s.value(f"{SETTINGS_GROUP}/norm", 2)))
            self.round_spin.setValue(int(str(s.value(f"{SETTINGS_GROUP}/round_to", 1))))
        except ValueError:
            return
        index = self.norm_combo.findData(norm)
        if index >= 0:
            self.norm_combo.setCurrentIndex(index)

    def _save_settings(self) -> None:
        s = self.settings
        s.setValue(f"{SETTINGS_GROUP}/amount", self.amount_slider.value())
        s.setValue(f"{SETTINGS_GROUP}/norm", self.norm_combo.currentData())
        s.setValue(f"{SETTINGS_GROUP}/round_to", self.round_spin.value())

    # -- public API ----------------------------------------------------------------------------
    @property
    def last_result(self) -> SlimResult | None:
        """The last slim that replaced the model (None before one)."""
        return self._last

    def group_op(self) -> GroupPrune:
        """The group pruning the controls describe."""
        return GroupPrune(
            self.amount_slider.value() / 100.0,
            norm=int(self.norm_combo.currentData()),
            round_to=self.round_spin.value(),
        )

    def group_prune(self) -> bool:
        """Apply :meth:`group_op` to the session (undoable); False if it cannot start."""
        session = self._session_with_input()
        if session is None:
            return False
        try:
            op = self.group_op()
        except ValueError as exc:
            self._set_status(str(exc), ERROR_STYLE)
            return False
        self._set_status(f"{op.label}…", INFO_STYLE)

        def done(_entry: object) -> None:
            self._set_status(
                f"Applied: {op.label}. Slim now removes those channels physically.", INFO_STYLE
            )

        return self.group_job.start(
            lambda token: session.apply_job(op, token),
            done,
            mutating=True,
            on_error=lambda exc: self._set_status(f"Group pruning failed: {exc}", ERROR_STYLE),
        )

    def slim(self, harvest: bool = False) -> bool:
        """Slim the session's model (``harvest``: also remove all-zero channels); one undo step."""
        session = self._session_with_input()
        if session is None:
            return False
        example = session.example_input
        assert example is not None

        def job(token: CancelToken) -> Job[SlimResult]:
            result = yield from scaled(
                slim_job(session, example, harvest=harvest, token=token), 0.0, 0.9
            )
            token.check()
            yield Progress(0.9, "replacing the model with the slim one")
            yield from scaled(session.apply_job(slim_operation(result), token), 0.9, 1.0)
            return result

        what = "all-zero channels" if harvest else "pruned channels"
        self._set_status(f"Slimming: removing {what}…", INFO_STYLE)
        return self.slim_job.start(
            job, self._on_slimmed, mutating=True, on_error=self._on_slim_failed
        )

    def find_all_zero(self) -> bool:
        """List the channels unstructured pruning left all-zero (in a job)."""
        session = self._session_with_input()
        if session is None:
            return False
        example = session.example_input
        assert example is not None

        def job(_token: CancelToken) -> Job[list[HarvestCandidate]]:
            yield Progress(0.0, "tracing channel groups")
            return harvest_candidates(session, example)

        self.harvest_status.setText("Looking for all-zero channels…")
        return self.harvest_job.start(
            job,
            self._on_candidates,
            on_error=lambda exc: self.harvest_status.setText(f"Could not look: {exc}"),
        )

    def remove_all_zero(self) -> bool:
        """Slim with harvest: remove the listed all-zero channels physically (undoable)."""
        return self.slim(harvest=True)

    def status_text(self) -> str:
        """The box's status line."""
        return self.status.text()

    # -- events ------------------------------------------------------------------------------
    def _on_slimmed(self, result: SlimResult) -> None:
        self._last = result
        self.slim_result.setText(slim_summary(result))
        self.skipped_label.setText(skipped_text(result))
        self.skipped_label.setVisible(bool(self.skipped_label.text()))
        self.harvest_model.set_candidates([])
        self._on_model_replaced()
        self.slimmed.emit(result)

    def _on_slim_failed(self, exc: BaseException) -> None:
        self._set_status(f"Slim failed: {exc}", ERROR_STYLE)

    def _on_candidates(self, candidates: list[HarvestCandidate]) -> None:
        self.harvest_model.set_candidates(candidates)
        if candidates:
            total = sum(len(c.channels) for c in candidates)
            self.harvest_status.setText(
                f"{total:,} all-zero channel{'s' if total != 1 else ''} in {len(candidates)} "
                f"group{'s' if len(candidates) != 1 else ''} can go without changing the output."
            )
        else:
            self.harvest_status.setText("No all-zero channels: nothing hidden to harvest.")
        self._update_buttons()

    def _on_model_loaded(self) -> None:
        self._last = None
        self.slim_result.setText("")
        self.skipped_label.setText("")
        self.skipped_label.hide()
        self._set_status("", INFO_STYLE)
        self._forget_candidates()

    def _on_model_replaced(self) -> None:
        session = self.controller.session
        if self._last is not None and session is not None and not self.slim_job.active:
            if session.model is self._last.model:
                self._set_status(
                    "The slim model is the session's model (Undo returns the masked one).",
                    INFO_STYLE,
                )
            else:
                self._set_status(
                    "The session holds the masked model again (Redo brings the slim one "
                    "back); the benchmark still measures the slim model as 'slim'.",
                    INFO_STYLE,
                )
        self._forget_candidates()

    def _forget_candidates(self) -> None:
        if self.harvest_model.rowCount():
            self.harvest_model.set_candidates([])
            self.harvest_status.setText("The model changed: look again.")
        self._update_buttons()

    # -- helpers ---------------------------------------------------------------------------------
    def _session_with_input(self) -> PruningSession | None:
        session = self.controller.session
        if session is None:
            self._set_status("Open a model first.", ERROR_STYLE)
            return None
        if session.example_input is None:
            self._set_status(
                "This model has no example input, which tracing its channel groups needs: "
                "open it as a demo or a saved session, or from a factory with an input shape.",
                ERROR_STYLE,
            )
            return None
        return session

    def _update_buttons(self) -> None:
        session = self.controller.session
        ready = session is not None and session.example_input is not None
        busy = self.group_job.active or self.slim_job.active or self.harvest_job.active
        for button in (self.group_button, self.slim_button, self.harvest_button):
            button.setEnabled(ready and not busy)
        self.remove_button.setEnabled(ready and not busy and self.harvest_model.rowCount() > 0)
        if session is not None and session.example_input is None:
            self.slim_button.setToolTip("Needs the model's example input to trace its channels.")

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)
