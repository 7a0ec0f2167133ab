"""The main window: model tree, layer views, pruning controls, history, statistics.

It wires widgets to the :class:`~gui.session.controller.SessionController`: widgets
send commands to the controller, the controller's signals tell widgets what
changed. Nothing here touches a tensor that a worker is writing: while the
controller is busy, the layer views show "working" and wait for the result.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.analysis.stats import ModelStats
from core.demos import DEMO_NAMES
from core.pruning.operations import PaintStroke
from core.viz.display import LAYOUTS, display_shape
from gui.accuracy.panel import AccuracyPanel
from gui.heatmap.histogram import MagnitudeHistogram
from gui.heatmap.layer_views import LayerViews
from gui.panels.history_view import HistoryView
from gui.panels.model_tree import ModelTreeView
from gui.panels.stats_panel import StatsPanel
from gui.panels.target_kinds_menu import TargetKindsMenu
from gui.pattern_lab.pattern_lab import PatternLab
from gui.pruning.global_panel import GlobalPanel
from gui.pruning.layer_controls import LayerControls
from gui.session.controller import SessionController
from gui.session.layer_reads import LayerSnapshot, Preview
from gui.session.loaded import LoadedModel, load_builtin_demo
from gui.speed import CostLabPanel, SpeedPanel
from gui.widgets.export import DEFAULT_FILTER as DEFAULT_EXPORT_FILTER
from gui.widgets.export import FILE_FILTER as EXPORT_FILTER
from gui.widgets.export import Exportable, export_widget, filter_scale
from gui.window.model_files import ModelFiles


def _elongation(shape: tuple[int, int]) -> float:
    """How far a rows x cols picture is from square (0 for a square)."""
    rows, cols = shape
    return abs(math.log(max(rows, 1) / max(cols, 1)))


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
        self._current: str = ""  # parameter selected for the layer views
        self._shown: str = ""  # parameter the layer views last drew
        self._progress_message = ""  # last progress text, cleared when the job ends
        self._build_widgets()
        self._build_docks()
        self._build_menus()
        self._build_status_bar()
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
        self.layer_views = LayerViews(self)
        self.histogram = MagnitudeHistogram(self)
        self.stats_panel = StatsPanel(self, self.controller)
        self._pattern_lab: PatternLab | None = None  # built when first shown (see pattern_lab)
        self._before_presentation: tuple[QByteArray, Qt.WindowState] | None = None
        self.layer_controls = LayerControls(self.controller)
        self.global_panel = GlobalPanel(self.controller)
        self.history_view = HistoryView(self)
        self.layer_title = QLabel("Select a layer in the model tree", self)
        self.layer_title.setObjectName("layerTitle")
        self.layer_title.setStyleSheet("font-weight: 600; font-size: 13pt; padding: 4px 2px;")
        layer_page = QWidget(self)
        layout = QVBoxLayout(layer_page)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.layer_title)
        layout.addWidget(self.layer_views, 3)
        layout.addWidget(self.histogram, 1)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(layer_page, "Layer")
        self.tabs.addTab(self.stats_panel, "Statistics")
        lab_scroll = QScrollArea(self)
        lab_scroll.setWidgetResizable(True)
        lab_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self._lab_page = lab_scroll
        self.tabs.addTab(lab_scroll, "Pattern lab")
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

    def _action(self, text: str, slot: object, shortcut: object = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(
            self._action(
                "&Open model…",
                self.open_model_dialog,
                QKeySequence.StandardKey.Open,
                "Open a model file: a state_dict (with the code that builds it), a saved "
                "PruneScope session, TorchScript, a torch-pruned or a whole pickled model",
            )
        )
        file_menu.addAction(
            self._action(
                "Open model &folder…",
                self.files.open_folder_dialog,
                tip="Open a Hugging Face model folder (config.json + model.safetensors)",
            )
        )
        demos = file_menu.addMenu("Open &demo")
        for name in DEMO_NAMES:
            demos.addAction(self._action(name, lambda _=False, n=name: self.open_demo(n)))
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self.save_action = self._action(
            "&Save pruned model as…",
            self.save_dialog,
            QKeySequence.StandardKey.Save,
            "Save as a plain state_dict, a PruneScope session, torch's pruned format, "
            "sparse, torch.export or ONNX, with the recipe beside it",
        )
        file_menu.addAction(self.save_action)
        file_menu.addAction(
            self._action(
                "&Export view…",
                self.export_dialog,
                "Ctrl+E",
                "Save the current tab (layer views, statistics or pattern lab) as PNG or SVG",
            )
        )
        file_menu.addSeparator()
        file_menu.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(
            "&Undo", self.controller.undo, QKeySequence.StandardKey.Undo
        )
        self.redo_action = self._action(
            "&Redo", self.controller.redo, QKeySequence.StandardKey.Redo
        )
        edit.addAction(self.undo_action)
        edit.addAction(self.redo_action)
        edit.addSeparator()
        edit.addAction(self._action("Reset &all layers", self.controller.reset_all, tip="Undoable"))
        edit.addSeparator()
        edit.addAction(
            self._action(
                "History &memory budget…",
                self._ask_history_budget,
                tip="How much memory undo data may use; beyond it the oldest steps "
                "can no longer be undone",
            )
        )

        model_menu = bar.addMenu("&Model")
        #: Which kinds of parameters are prunable (also the model tree's context menu).
        self.kinds_menu = TargetKindsMenu(self.controller, self)
        model_menu.addMenu(self.kinds_menu)
        self.tree.set_context_menu(self.kinds_menu)

        view = bar.addMenu("&View")
        for dock in (self.tree_dock, self.history_dock, self.controls_dock):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        presentation = self._action(
            "&Presentation mode (pattern lab)",
            lambda checked: self.pattern_lab.set_presentation(checked),
            "F11",
        )
        presentation.setCheckable(True)
        view.addAction(presentation)
        self.presentation_action = presentation
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About PruneScope", self._about))

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.accuracy_label = QLabel(self)
        self.sparsity_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the running job; the model is left as it was")
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.cancel_button.hide()
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.sparsity_label)
        status.addPermanentWidget(self.accuracy_label)
        # Only jobs that run longer than this show the progress bar (no flicker).
        self._progress_delay = QTimer(self)
        self._progress_delay.setSingleShot(True)
        self._progress_delay.setInterval(250)
        self._progress_delay.timeout.connect(self._show_progress)

    def _connect(self) -> None:
        c = self.controller
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_replaced)
        c.masks_changed.connect(self._on_masks_changed)
        c.history_changed.connect(self._on_history_changed)
        c.busy_changed.connect(self._on_busy)
        c.mutating_changed.connect(lambda mutating: self.layer_views.busy(mutating))
        c.stats_ready.connect(self._on_stats)
        c.accuracy_ready.connect(self._on_accuracy)
        c.accuracy_ready.connect(self.stats_panel.show_accuracy)
        c.error.connect(self.show_error)
        c.progress.connect(self._on_progress)
        c.cancelled.connect(
            lambda request: self.statusBar().showMessage(f"{request.label}: cancelled", 4000)
        )
        self.layer_controls.previewed.connect(self._on_preview)
        self.tree.selection_changed.connect(self._on_selection)
        self.history_view.step_requested.connect(c.goto)
        self.layer_views.paint_stroke_finished.connect(self._on_paint)
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
        index = self.tabs.currentIndex()
        if index == 0:  # the layer's title, three heatmaps and the histogram
            plots = [view.plot_item for view in self.layer_views.views]
            return [self.layer_title, *plots, self.histogram.getPlotItem()]
        if index == 2:
            return self.pattern_lab.figure_items()
        return {1: self.stats_panel}.get(index, self.tabs.currentWidget())

    def export_dialog(self) -> None:
        """Ask for a PNG/SVG file name and export the current view for slides."""
        start = Path(str(self.settings.value("last_dir", str(Path.home()))))
        name = self.tabs.tabText(self.tabs.currentIndex()).lower().replace(" ", "_")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export view", str(start / f"{name}.png"), EXPORT_FILTER, DEFAULT_EXPORT_FILTER
        )
        if path:
            self.export_to(path, scale=filter_scale(chosen))

    def export_to(self, path: str, scale: float = 1.0) -> bool:
        """Export the current view to ``path`` (.png or .svg; PNG at ``scale`` x)."""
        try:
            if self.tabs.currentIndex() == 2:  # laid out for a slide, see PatternLab.export
                written = self.pattern_lab.export(path, scale=scale)
            else:
                written = export_widget(self.export_target(), path, scale=scale)
        except Exception as exc:
            self.show_error(f"Could not export {Path(path).name}: {exc}", "")
            return False
        self.statusBar().showMessage(f"Exported {written.name}", 5000)
        return True

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
        self.recent_menu.clear()
        for path in self.recent_files():
            self.recent_menu.addAction(
                self._action(path, lambda _=False, p=path: self.open_model_file(p))
            )
        self.recent_menu.setEnabled(bool(self.recent_files()))

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
        self._current = ""
        if session is not None and session.names:
            self.tree.select_param(session.names[0])

    def _on_model_replaced(self) -> None:
        """Slim (or its undo) swapped the model: new parameters, maybe new shapes."""
        session = self.controller.session
        current = self._current
        self.tree.set_session(session)
        self._current, self._shown = "", ""
        if session is not None and session.names:
            self.tree.select_param(current if current in session.names else session.names[0])

    def _on_selection(self, names: tuple[str, ...]) -> None:
        self.layer_controls.set_targets(names)
        self._current = names[0] if names else ""
        self._show_current()

    def _show_current(self) -> None:
        if self.controller.session is not None and self._current:
            self.controller.fetch_layer(self._current).finished.connect(self._on_layer_ready)

    def _on_layer_ready(self, views: LayerSnapshot) -> None:
        session, name = self.controller.session, views.name
        if session is None or name != self._current:
            return
        info = session.info(name)
        shape = " × ".join(map(str, info.shape))
        pruned = views.figures.sparsity  # counted in the worker with the views
        self.layer_title.setText(
            f"{name}  ·  {info.module_type}  ·  {shape}  ·  {pruned:.1%} pruned"
        )
        layout = None
        if name != self._shown:  # a new layer: the layout whose picture is squarest
            layout = min(LAYOUTS, key=lambda lay: _elongation(display_shape(info.shape, lay)))
        self._shown = name
        self.layer_views.show_layer(views.original, views.mask, views.effective, layout=layout)
        self.histogram.show_counts(views.counts)
        self.histogram.show_threshold(None)  # a fresh layer ends any preview

    def _on_masks_changed(self, names: tuple[str, ...]) -> None:
        self.tree.model.refresh(names)
        if self._current in names:
            self._show_current()

    def _on_history_changed(self) -> None:
        session = self.controller.session
        self.history_view.refresh()
        self.undo_action.setEnabled(bool(session and session.history.can_undo()))
        self.redo_action.setEnabled(bool(session and session.history.can_redo()))
        if session is not None:
            entries = session.history.entries
            cursor = session.history.cursor
            self.undo_action.setText(f"&Undo {entries[cursor - 1].label}" if cursor else "&Undo")
            redo = entries[cursor].label if cursor < len(entries) else ""
            self.redo_action.setText(f"&Redo {redo}" if redo else "&Redo")

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self._progress_delay.start()
        else:
            self._progress_delay.stop()
            self.progress.hide()
            self.cancel_button.hide()
            if self.statusBar().currentMessage() == self._progress_message:
                self.statusBar().clearMessage()

    def _show_progress(self) -> None:
        if self.controller.busy:
            self.progress.show()
            self.cancel_button.show()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        running = self.controller.running
        label = running.label if running is not None else ""
        self._progress_message = f"{label}: {message}" if label else message
        self.statusBar().showMessage(self._progress_message)

    def _on_stats(self, stats: ModelStats) -> None:
        self.stats_panel.show_stats(stats)
        self.sparsity_label.setText(
            f"Sparsity {stats.sparsity:.1%}  ·  {stats.compression:.2f}x smaller"
        )

    def _on_accuracy(self, accuracy: float) -> None:
        if accuracy != accuracy:  # NaN: no evaluation data for this model
            self.accuracy_label.setText("Accuracy: not measured at this step")
        else:
            self.accuracy_label.setText(f"Test accuracy {accuracy:.1%}")

    def _on_preview(self, preview: Preview) -> None:
        layer = preview.layer
        if layer is not None and layer.name == self._current and self._shown == layer.name:
            self.layer_views.show_preview_mask(layer.mask)
            self.histogram.show_threshold(layer.threshold)

    def _on_paint(self, cells: list[tuple[int, int]], keep: bool) -> None:
        session = self.controller.session
        name = self._current
        if session is None or not name or not cells:
            return
        shape = session.info(name).shape
        index = self.layer_views.flat_indices(shape, cells).numpy()
        verb = "Restore" if keep else "Prune"
        # A stroke records only the weights it changes; one that changes nothing is not recorded.
        self.controller.apply(PaintStroke(name, index, keep))
        self.statusBar().showMessage(f"{verb} {len(cells)} weight(s) of {name}", 3000)

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

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About PruneScope",
            "PruneScope: see and do neural-network pruning.\n\n"
            "Masks, originals, undo, recipes and statistics come from a Qt-free engine; "
            "every long job runs in a worker and can be cancelled.",
        )

    # -- settings -------------------------------------------------------------------
    def _ask_history_budget(self) -> None:
        current = self.controller.history_budget // 2**20
        mib, ok = QInputDialog.getInt(
            self,
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
            self.controller.set_history_budget(mib * 2**20)
        except RuntimeError as exc:
            self.show_error(str(exc), "")
            return
        self.settings.setValue("history_budget_mib", mib)
        session = self.controller.session
        if session is not None:
            self.statusBar().showMessage(session.history.reach(), 5000)

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

    def _on_presentation(self, on: bool) -> None:
        """Presentation mode gives the pattern lab the whole screen; leaving it restores docks."""
        with QSignalBlocker(self.presentation_action):
            self.presentation_action.setChecked(on)
        if on and self._before_presentation is None:
            self._before_presentation = (self.saveState(), self.windowState())
            for dock in (self.tree_dock, self.history_dock, self.controls_dock):
                dock.hide()
            self.tabs.setCurrentWidget(self._lab_page)
            self.showFullScreen()
        elif not on and self._before_presentation is not None:
            state, window_state = self._before_presentation
            self._before_presentation = None
            self.restoreState(state)
            self.setWindowState(window_state)

    @property
    def pattern_lab(self) -> PatternLab:
        """The Pattern lab tab's figure, built the first time it is needed (it takes about
        0.3 s: the window opens that much sooner)."""
        if self._pattern_lab is None:
            lab = PatternLab(self)
            lab.presentation_changed.connect(self._on_presentation)
            self._lab_page.setWidget(lab)
            self._pattern_lab = lab
        return self._pattern_lab

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self._lab_page:
            self.pattern_lab.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._pattern_lab is not None:  # save the normal layout, not the presentation one
            self._pattern_lab.set_presentation(False)
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("last_method", self.layer_controls.method_name())
        self.settings.sync()
        if self.controller.busy:
            self.controller.cancel()
        super().closeEvent(event)
