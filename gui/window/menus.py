"""The main window's menus: File, Edit, Model, View and Help, and their small dialogs.

:class:`WindowMenus` builds them on the window's menu bar; their actions call
the window's public methods and the controller. It keeps File > Open recent
and Edit > Undo/Redo up to date when the window tells it to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QInputDialog, QMessageBox

from core.demos import DEMO_NAMES
from core.pruning.session import PruningSession
from gui.panels.target_kinds_menu import TargetKindsMenu

if TYPE_CHECKING:
    from gui.window.main_window import MainWindow


class WindowMenus(QObject):
    """The menu bar of a :class:`~gui.window.main_window.MainWindow` (see module docstring).

    Attributes:
        recent_menu: File > Open recent.
        save_action: File > Save pruned model as.
        undo_action, redo_action: Edit > Undo and Redo, named after their steps.
        kinds_menu: Model > the kinds of parameters that are prunable (also the
            model tree's context menu).
        presentation_action: View > Presentation mode (checked while it is on).
    """

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        controller = window.controller
        bar = window.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(
            self._action(
                "&Open model…",
                window.open_model_dialog,
                QKeySequence.StandardKey.Open,
                "Open a model file: a state_dict (with the code that builds it), a saved "
                "PruneScope session, TorchScript, a torch-pruned or a whole pickled model",
            )
        )
        file_menu.addAction(
            self._action(
                "Open model &folder…",
                window.files.open_folder_dialog,
                tip="Open a Hugging Face model folder (config.json + model.safetensors)",
            )
        )
        demos = file_menu.addMenu("Open &demo")
        for name in DEMO_NAMES:
            demos.addAction(self._action(name, lambda _=False, n=name: window.open_demo(n)))
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self.save_action = self._action(
            "&Save pruned model as…",
            window.save_dialog,
            QKeySequence.StandardKey.Save,
            "Save as a plain state_dict, a PruneScope session, torch's pruned format, "
            "sparse, torch.export or ONNX, with the recipe beside it",
        )
        file_menu.addAction(self.save_action)
        file_menu.addAction(
            self._action(
                "&Export view…",
                window.export_dialog,
                "Ctrl+E",
                "Save the current tab (layer views, statistics or pattern lab) as PNG or SVG",
            )
        )
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", window.close, QKeySequence.StandardKey.Quit))

        edit = bar.addMenu("&Edit")
        self.undo_action = self._action("&Undo", controller.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("&Redo", controller.redo, QKeySequence.StandardKey.Redo)
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        edit.addSeparator()
        edit.addAction(self._action("Reset &all layers", controller.reset_all, tip="Undoable"))
        edit.addSeparator()
        edit.addAction(
            self._action(
                "History &memory budget…",
                self.ask_history_budget,
                tip="How much memory undo data may use; beyond it the oldest steps "
                "can no longer be undone",
            )
        )

        model_menu = bar.addMenu("&Model")
        self.kinds_menu = TargetKindsMenu(controller, window)
        model_menu.addMenu(self.kinds_menu)
        window.tree.set_context_menu(self.kinds_menu)

        view = bar.addMenu("&View")
        for dock in (window.tree_dock, window.history_dock, window.controls_dock):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        presentation = self._action(
            "&Presentation mode (pattern lab)",
            lambda checked: window.pattern_lab.set_presentation(checked),
            "F11",
        )
        presentation.setCheckable(True)
        view.addAction(presentation)
        self.presentation_action = presentation
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About PruneScope", self.about))

    def _action(
        self,
        text: str,
        slot: Callable[..., object],
        shortcut: QKeySequence.StandardKey | str | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    # -- kept up to date -------------------------------------------------------------------
    def fill_recent(self, paths: list[str]) -> None:
        """File > Open recent lists ``paths`` (newest first); disabled when there are none."""
        self.recent_menu.clear()
        for path in paths:
            self.recent_menu.addAction(
                self._action(path, lambda _=False, p=path: self.window.open_model_file(p))
            )
        self.recent_menu.setEnabled(bool(paths))

    def show_history(self, session: PruningSession | None) -> None:
        """Enable Undo and Redo, named after the steps they would undo and redo."""
        self.undo_action.setEnabled(bool(session and session.history.can_undo()))
        self.redo_action.setEnabled(bool(session and session.history.can_redo()))
        if session is not None:
            entries = session.history.entries
            cursor = session.history.cursor
            self.undo_action.setText(f"&Undo {entries[cursor - 1].label}" if cursor else "&Undo")
            redo = entries[cursor].label if cursor < len(entries) else ""
            self.redo_action.setText(f"&Redo {redo}" if redo else "&Redo")

    # -- dialogs -----------------------------------------------------------------------------
    def ask_history_budget(self) -> None:
        """Edit > History memory budget: ask how many MiB undo data may use, and remember it."""
        window, controller = self.window, self.window.controller
        current = controller.history_budget // 2**20
        mib, ok = QInputDialog.getInt(
            window,
            "History memory budget",
            "Undo data may use up to (MiB); beyond it the oldest steps\n"
            "stay in the recipe but can no longer be undone:",
            current,
            1,
            1 << 20,
        )
        if not ok:
            return
        try:
            controller.set_history_budget(mib * 2**20)
        except RuntimeError as exc:
            window.show_error(str(exc), "")
            return
        window.settings.setValue("history_budget_mib", mib)
        session = controller.session
        if session is not None:
            window.statusBar().showMessage(session.history.reach(), 5000)

    def about(self) -> None:
        """Help > About PruneScope."""
        QMessageBox.about(
            self.window,
            "About PruneScope",
            "PruneScope: see and do neural-network pruning.\n\n"
            "Masks, originals, undo, recipes and statistics come from a Qt-free engine; "
            "every long job runs in a worker and can be cancelled.",
        )
