"""The menu of which kinds of parameters are prunable (the Model menu, the tree's context menu).

The kinds, their remembered choice per model and the checks live in
:mod:`gui.session.target_kinds`; this is the widget that shows and changes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from gui.session.target_kinds import KINDS, loses_work, remember_options

if TYPE_CHECKING:
    from gui.session.controller import SessionController


class TargetKindsMenu(QMenu):
    """Checkable kinds of prunable parameters for the loaded model.

    Checking a kind makes those parameters prunable at once (pruning steps are kept);
    unchecking one rebuilds the session, after asking (``confirm_discard``) when
    pruning steps would be lost. The choice is remembered for the model.
    """

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__("&Prunable parameters", parent)
        self.controller = controller
        self.setToolTipsVisible(True)
        self.actions_by_option: dict[str, QAction] = {}
        for kind in KINDS:
            action = QAction(kind.text, self)
            action.setCheckable(True)
            action.setToolTip(kind.tip)
            action.setStatusTip(kind.tip)
            action.toggled.connect(lambda _on, o=kind.option: self._chosen(o))
            self.addAction(action)
            self.actions_by_option[kind.option] = action
        self.addSeparator()
        note = self.addAction("Linear and Conv weights are always prunable")
        note.setEnabled(False)
        #: Asked before pruning steps are discarded (given their number); True: go on.
        self.confirm_discard: Callable[[int], bool] = self._ask_discard
        controller.model_loaded.connect(self.sync)
        controller.model_replaced.connect(self.sync)
        controller.busy_changed.connect(lambda _busy: self.sync())
        self.aboutToShow.connect(self.sync)
        self.sync()

    def options(self) -> dict[str, bool]:
        """The options the menu's checks say."""
        return {o: action.isChecked() for o, action in self.actions_by_option.items()}

    def sync(self) -> None:
        """Show the session's options; enabled only with a model and no job running."""
        session = self.controller.session
        usable = session is not None and not self.controller.busy
        for option, action in self.actions_by_option.items():
            action.blockSignals(True)
            action.setChecked(bool(session is not None and session.target_options.get(option)))
            action.setEnabled(usable)
            action.blockSignals(False)

    def choose(self, option: str, on: bool) -> None:
        """Make parameters of ``option``'s kind prunable (``on``) or not, like a click."""
        self.actions_by_option[option].setChecked(on)

    def _chosen(self, option: str) -> None:
        controller = self.controller
        session = controller.session
        if session is None or controller.busy:
            self.sync()
            return
        wanted = self.options()
        history = session.history
        steps = len(session.operations) + len(history.entries) - history.cursor  # redo too
        if loses_work(session.target_options, wanted, steps) and not self.confirm_discard(steps):
            self.sync()
            return
        controller.retarget(wanted)
        loaded = controller.loaded
        if loaded is not None:
            remember_options(loaded.key, wanted)
        self.sync()

    def _ask_discard(self, steps: int) -> bool:
        answer = QMessageBox.question(
            self.parentWidget(),
            "Discard pruning steps?",
            f"Making fewer kinds of parameters prunable starts the model over: its {steps} "
            "pruning step(s) are discarded and every weight is restored.\n\n"
            "Adding kinds keeps the pruning done so far.",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard
