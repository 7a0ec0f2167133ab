"""The main window: model tree, layer views, pruning controls, history, statistics.

It builds the docks and tabs and wires widgets to the
:class:`~gui.session.controller.SessionController`: widgets send commands to the
controller, the controller's signals tell widgets what changed. Nothing here
touches a tensor that a worker is writing: while the controller is busy, the
layer views show "working" and wait for the result. Its parts live beside it:
the Layer tab (:mod:`gui.window.layer_tab`), the Pattern lab tab and
presentation mode (:mod:`gui.window.lab_tab`), the status bar
(:mod:`gui.window.status_bar`), the menus (:mod:`gui.window.menus`), opening
and saving files (:mod:`gui.window.model_files`) and File > Export view
(:mod:`gui.window.view_export`).
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from core.demos import DEMO_NAMES
from gui.accuracy.panel import AccuracyPanel
from gui.panels.history_view import HistoryView
from gui.panels.model_tree import ModelTreeView
from gui.panels.stats_panel import StatsPanel
from gui.pattern_lab.pattern_lab import PatternLab
from gui.pruning.global_panel import GlobalPanel
from gui.pruning.layer_controls import LayerControls
from gui.session.controller import SessionController
from gui.session.loaded import LoadedModel, load_builtin_demo
from gui.speed import CostLabPanel, SpeedPanel
from gui.widgets.export import Exportable
from gui.window import view_export
from gui.window.lab_tab import PatternLabTab
from gui.window.layer_tab import LayerTab
from gui.window.menus import WindowMenus
from gui.window.model_files import ModelFiles
from gui.window.status_bar import StatusItems


class MainWindow(QMainWindow):
    """PruneScope's main window (see module docstring)."""

    def __init__(self, controller: SessionController | None = None) -> None:
        super().__init__()
        self.setWindowTitle("PruneScope")
        self.setAcceptDrops(True)
        self._fit_to_screen()
        self.controller = controller or SessionController(self)
        self.settings = QSettings()
        self.files = ModelFiles(self, self.controller, self.settings, self.may_discard_work)
        self.files.recent_changed.connect(self._fill_recent_menu)
        self.files.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.files.error.connect(lambda text: self.show_error(text, ""))
        self.files.open_failed.connect(self._on_open_failed)
        self._build_widgets()
        self._build_docks()
        self.menus = WindowMenus(self)
        self.status_items = StatusItems(self.statusBar(), self.controller)
        # The parts' widgets, by the names tests, scripts and benchmarks use.
        self.recent_menu = self.menus.recent_menu
        self.save_action = self.menus.save_action
        self.undo_action = self.menus.undo_action
        self.redo_action = self.menus.redo_action
        self.kinds_menu = self.menus.kinds_menu
        self.presentation_action = self.menus.presentation_action
        self.progress = self.status_items.progress
        self.cancel_button = self.status_items.cancel_button
        self.sparsity_label = self.status_items.sparsity_label
        self.accuracy_label = self.status_items.accuracy_label
        self._connect()
        self._restore_settings()

    # -- construction ---------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """Default size: 1600 x 1000, or 92% of a smaller screen."""
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = 1600, 1000
        if screen is not None:
            width = min(width, int(screen.width() * 0.92))
            height = min(height, int(screen.height() * 0.92))
        self.resize(width, height)

    def _build_widgets(self) -> None:
        self.tree = ModelTreeView(self)
        self.layer_tab = LayerTab(self.controller, self)
        self.layer_views = self.layer_tab.views
        self.histogram = self.layer_tab.histogram
        self.layer_title = self.layer_tab.title
        self.stats_panel = StatsPanel(self, self.controller)
        self.layer_controls = LayerControls(self.controller)
        self.global_panel = GlobalPanel(self.controller)
        self.history_view = HistoryView(self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.layer_tab, "Layer")
        self.tabs.addTab(self.stats_panel, "Statistics")
        self.lab_tab = PatternLabTab(self)
        self.tabs.addTab(self.lab_tab, "Pattern lab")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.accuracy_panel = AccuracyPanel(self.controller)
        self.tabs.addTab(self.accuracy_panel, "Accuracy")
        self.speed_panel = SpeedPanel(self.controller)
        self.tabs.addTab(self.speed_panel, "Speed")
        self.cost_lab = CostLabPanel(self.controller)
        self.tabs.addTab(self.cost_lab, "Cost lab")
        self.setCentralWidget(self.tabs)

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "") + "Dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.tree_dock = self._dock("Model", self.tree, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.history_dock = self._dock(
            "History", self.history_view, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        prune_tabs = QTabWidget(self)
        prune_tabs.addTab(self.layer_controls, "Selected layers")
        prune_tabs.addTab(self.global_panel, "Global")
        self.prune_tabs = prune_tabs
        self.controls_dock = self._dock("Prune", prune_tabs, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tree_dock.setMinimumWidth(260)
        self.controls_dock.setMinimumWidth(340)
        self.history_dock.setMinimumHeight(140)

    def _connect(self) -> None:
        c, layer, status = self.controller, self.layer_tab, self.status_items
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_replaced)
        c.masks_changed.connect(self._on_masks_changed)
        c.history_changed.connect(self._on_history_changed)
        c.busy_changed.connect(status.set_busy)
        c.mutating_changed.connect(lambda mutating: self.layer_views.busy(mutating))
        c.stats_ready.connect(self.stats_panel.show_stats)
        c.stats_ready.connect(status.show_stats)
        c.accuracy_ready.connect(status.show_accuracy)
        c.accuracy_ready.connect(self.stats_panel.show_accuracy)
        c.error.connect(self.show_error)
        c.progress.connect(status.show_progress)
        c.cancelled.connect(status.show_cancelled)
        layer.message.connect(self.statusBar().showMessage)
        self.layer_controls.previewed.connect(layer.show_preview)
        self.tree.selection_changed.connect(self._on_selection)
        self.history_view.step_requested.connect(c.goto)
        self.global_panel.planned.connect(self.stats_panel.show_planned)

    # -- loading and saving -----------------------------------------------------------
    def open_demo(self, name: str) -> None:
        """Open one of the built-in demo models (asks first if pruning work is unsaved)."""
        if self.may_discard_work():
            self.load_model(load_builtin_demo(name))

    def may_discard_work(self) -> bool:
        """True when nothing unsaved would be lost, or the user says to discard it."""
        steps = self.controller.unsaved_steps()
        if not steps:
            return True
        answer = QMessageBox.question(
            self,
            "Discard unsaved pruning?",
            f"The current model has {steps} pruning step(s) that are not saved. Opening "
            "another model discards them.\n\nSave first with File > Save pruned model as.",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Discard

    def open_model_dialog(self) -> None:
        """Ask for a model file and open it (see :class:`~gui.window.model_files.ModelFiles`)."""
        self.files.open_dialog()

    def open_model_file(self, path: str, confirm: bool = True) -> bool:
        """Open a model file or folder in a worker.

        ``confirm=False`` is for callers that vouch for the file (tests, scripts):
        nothing is asked, a pickle is trusted, a missing factory is an error.
        """
        return self.files.open_path(path, trust=not confirm, interactive=confirm)

    def save_dialog(self) -> None:
        """Ask where and in which format to save the pruned model."""
        self.files.save_dialog()

    def save_to(self, path: str, format: str | None = None) -> bool:
        """Save the pruned model in a worker (format from the suffix unless given)."""
        return self.files.save_to(path, format)

    def export_target(self) -> Exportable:
        """What File > Export view draws: the current tab's figure, without its controls."""
        return view_export.export_target(self)

    def export_dialog(self) -> None:
        """Ask for a PNG/SVG file name and export the current view for slides."""
        chosen = view_export.ask_export_path(self)
        if chosen is not None:
            self.export_to(*chosen)

    def export_to(self, path: str, scale: float = 1.0) -> bool:
        """Export the current view to ``path`` (.png or .svg; PNG at ``scale`` x)."""
        return view_export.export_view(self, path, scale)

    def _on_open_failed(self) -> None:
        if self.controller.session is None:  # the window is never left without a model
            self.open_demo(DEMO_NAMES[0])

    def load_model(self, loaded: LoadedModel) -> None:
        """Show a model already in memory (a demo, or one a script or test built)."""
        if self.controller.busy:
            self.show_error("Wait for the running job to finish (or cancel it) first.", "")
            return
        self.controller.load(loaded)

    def recent_files(self) -> list[str]:
        """File > Open recent's paths, newest first."""
        return self.files.recent()

    def _fill_recent_menu(self) -> None:
        self.menus.fill_recent(self.recent_files())

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():  # the loader says what it cannot open
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            event.acceptProposedAction()
            self.open_model_file(urls[0].toLocalFile())

    # -- reactions ----------------------------------------------------------------------
    def _on_model_loaded(self) -> None:
        session, loaded = self.controller.session, self.controller.loaded
        if loaded is not None:
            self.setWindowTitle(f"PruneScope — {loaded.name}")
        self.tree.set_session(session)
        self.history_view.set_history(session.history if session else None)
        self.layer_tab.forget()  # the next layer drawn is new, whatever its name
        if session is not None and session.names:
            self.tree.select_param(session.names[0])

    def _on_model_replaced(self) -> None:
        """Slim (or its undo) swapped the model: new parameters, maybe new shapes."""
        session = self.controller.session
        current = self.layer_tab.current
        self.tree.set_session(session)
        self.layer_tab.forget()
        if session is not None and session.names:
            self.tree.select_param(current if current in session.names else session.names[0])

    def _on_selection(self, names: tuple[str, ...]) -> None:
        self.layer_controls.set_targets(names)
        self.layer_tab.select(names[0] if names else "")

    def _on_masks_changed(self, names: tuple[str, ...]) -> None:
        self.tree.model.refresh(names)
        self.layer_tab.masks_changed(names)

    def _on_history_changed(self) -> None:
        self.history_view.refresh()
        self.menus.show_history(self.controller.session)

    def layer_views_pending(self) -> bool:
        """Whether a heatmap is still waiting for a worker's reduction."""
        return self.layer_views.pending

    def show_error(self, message: str, details: str) -> None:
        """A readable error dialog; the traceback goes into 'Show Details'."""
        box = QMessageBox(QMessageBox.Icon.Warning, "PruneScope", message, parent=self)
        if details:
            box.setDetailedText(details)
        box.setObjectName("errorDialog")
        box.open()

    # -- settings -------------------------------------------------------------------
    def _restore_settings(self) -> None:
        budget = self.settings.value("history_budget_mib")
        with contextlib.suppress(TypeError, ValueError):
            if budget is not None and int(str(budget)) > 0:
                self.controller.set_history_budget(int(str(budget)) * 2**20)
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window_state")
        if not (isinstance(state, QByteArray) and self.restoreState(state)):
            horizontal, vertical = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
            self.resizeDocks([self.tree_dock, self.controls_dock], [440, 380], horizontal)
            self.resizeDocks([self.tree_dock, self.history_dock], [620, 200], vertical)

            def fit_tree_dock(width: int) -> None:
                """First launch: the tree's dock shows its columns up to Kept (at most 40%
                of the window, 12 px for the dock's margins), narrowing the controls' dock
                towards its minimum where the middle has no room to give."""
                width = min(width + 12, int(self.width() * 0.4))
                grow = width - self.tree_dock.width()
                if grow > 0:
                    controls = self.controls_dock
                    narrower = max(controls.minimumWidth(), controls.width() - grow)
                    self.resizeDocks([self.tree_dock, controls], [width, narrower], horizontal)

            self.tree.columns_sized.connect(fit_tree_dock, Qt.ConnectionType.SingleShotConnection)
        self._fill_recent_menu()
        method = self.settings.value("last_method")
        if isinstance(method, str):
            with contextlib.suppress(Exception):  # a method another version offered
                self.layer_controls.set_method(method)

    @property
    def pattern_lab(self) -> PatternLab:
        """The Pattern lab tab's figure, built the first time it is needed (it takes about
        0.3 s: the window opens that much sooner)."""
        return self.lab_tab.lab

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.lab_tab:
            self.pattern_lab.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.lab_tab.leave_presentation()  # save the normal layout, not the presentation one
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("last_method", self.layer_controls.method_name())
        self.settings.sync()
        if self.controller.busy:
            self.controller.cancel()
        super().closeEvent(event)
