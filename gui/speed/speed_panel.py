"""The "Speed" tab: how fast is the pruned model really, and how to make it faster.

:class:`SpeedPanel` puts the engine's real-speed tools in one place:

* **Advice** (:func:`core.speed.advice.speed_advice`) in plain words before
  anything is measured: when the pattern will not speed anything up, and why.
* **Benchmark** (:func:`core.speed.benchmark.benchmark_job`): settings (batch
  sizes, threads, device, one sample's input shape, time per measurement,
  forms), Run / Cancel with progress; rows fill the table as each form is
  measured; bar charts of latency and of speed-up beside the FLOPs cut; the
  method text; export to CSV or JSON.
* **Slim** and **harvest** (:class:`gui.speed.slim_box.SlimBox`): prune channels
  as whole dependency groups, remove them physically as one undoable step, and
  find channels unstructured pruning left all-zero. The slim model is measured
  as the "slim" form by the next benchmark.

Every measurement runs as a job through the :class:`~gui.session.controller.SessionController`
(one job at a time); nothing here touches the session's tensors on the GUI thread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress, scaled
from core.pruning.slim import slim_job
from core.speed.advice import speed_advice
from core.speed.benchmark import BenchmarkConfig, BenchmarkReport, FormResult, benchmark_job
from core.speed.timing import default_threads
from gui.speed.advice_view import AdviceView
from gui.speed.benchmark_table import HEADERS, BenchmarkTableModel
from gui.speed.charts import LatencyChart, SpeedupChart, legend_html
from gui.speed.forms import FORM_COLORS, FORM_ORDER, FORM_TIPS, form_label
from gui.speed.inputs import format_list, parse_positive_ints, parse_shape
from gui.speed.slim_box import SlimBox
from gui.speed.tracked_job import TrackedJob
from gui.widgets.colormaps import ACCENT_RGB
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, add_row, make_form, note_label

if TYPE_CHECKING:
    from torch import nn

    from core.analysis.stats import ModelStats
    from core.pruning.session import PruningSession
    from core.pruning.slim import SlimResult
    from core.speed.advice import Advice
    from gui.session.controller import SessionController

DEFAULT_BATCHES = "1, 16, 64"
TABLE_MIN_ROWS = 3
TABLE_MAX_ROWS = 16
ADVICE_DELAY_MS = 300
"""Quiet time after a change before the advice is worked out again."""
SETTINGS_GROUP = "speed"
EXPORT_FILTER = "CSV table (*.csv);;JSON report (*.json)"


def available_devices() -> list[str]:
    """``cpu``, and ``cuda`` when torch sees a CUDA GPU."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class SpeedPanel(QWidget):
    """Benchmark, advice, slim and harvest for the session's model (see module docstring).

    Args:
        controller: the window's session controller (jobs run through it).
        parent: the Qt parent.
    """

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = QSettings()
        self.benchmark = TrackedJob("Benchmark", controller, self)
        self.advice_job = TrackedJob("Speed advice", controller, self)
        self.table_model = BenchmarkTableModel(self)
        self._report: BenchmarkReport | None = None
        self._slim_model: torch.nn.Module | None = None
        self._advice_wanted = False
        self._advice_timer = QTimer(self)
        self._advice_timer.setSingleShot(True)
        self._advice_timer.setInterval(ADVICE_DELAY_MS)
        self._advice_timer.timeout.connect(self.refresh_advice)
        self._build_widgets()
        self._build_layout()
        self._restore_settings()
        self._connect()
        self._fit_table()
        self._on_model_loaded()

    # -- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.intro = note_label(
            "Pruning makes a model smaller on paper; whether it runs faster depends on how it "
            "is executed. Zeros inside dense tensors cost the same as any other number. "
            "Measure it here: the original, the masked model, sparse kernels, the slimmed "
            "model and 2:4 side by side."
        )
        self.advice_view = AdviceView(self)
        self.advice_status = note_label("")
        self.batch_edit = QLineEdit(DEFAULT_BATCHES)
        self.batch_edit.setPlaceholderText(DEFAULT_BATCHES)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.threads_spin.setValue(default_threads())
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())
        self.shape_edit = QLineEdit()
        self.min_time_spin = QDoubleSpinBox()
        self.min_time_spin.setRange(0.01, 10.0)
        self.min_time_spin.setDecimals(2)
        self.min_time_spin.setSingleStep(0.05)
        self.min_time_spin.setSuffix(" s")
        self.min_time_spin.setValue(0.2)
        self.form_checks: dict[str, QCheckBox] = {}
        for form in FORM_ORDER:
            check = QCheckBox(form_label(form))
            check.setChecked(True)
            check.setToolTip(FORM_TIPS[form])
            self.form_checks[form] = check
        self.form_checks["dense"].setEnabled(False)  # the baseline of every speed-up
        self.form_checks["dense"].setToolTip(
            FORM_TIPS["dense"] + " Always measured: speed-ups are relative to it."
        )
        self.form_checks["masked"].setEnabled(False)  # the reference of the output check
        self.form_checks["masked"].setToolTip(
            FORM_TIPS["masked"] + " Always measured: every other form's outputs are checked "
            "against it."
        )
        self.run_button = QPushButton("Run benchmark")
        self.run_button.setDefault(True)
        self.run_button.setToolTip(
            "Measure every chosen form at every batch size (outputs are checked against the "
            "masked model first). Runs in the background; the table fills as it goes."
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the benchmark; rows measured so far stay.")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("speedStatus")
        self.table = self._build_table()
        self.method_label = note_label("")
        self.method_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.slim_note = note_label("")
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setToolTip("Save the table as CSV (one row per form and batch size).")
        self.json_button = QPushButton("Export JSON…")
        self.json_button.setToolTip(
            "Save the whole report (settings, method, rows, advice) as JSON."
        )
        self.latency_chart = LatencyChart(self)
        self.latency_chart.setToolTip("Median time per forward pass; the whisker spans the IQR.")
        self.speedup_chart = SpeedupChart(self)
        self.speedup_chart.setToolTip(
            "Filled: measured speed-up over dense. Hollow: the cut in FLOPs the form really "
            "executes (dense FLOPs / its FLOPs; zeros in dense tensors still count). Dotted: "
            "the cut the masks promise on paper. The gaps are what fewer operations did not "
            "buy in time."
        )
        self.chart_legend = QLabel(self)
        self.chart_legend.setWordWrap(True)
        self.slim_box = SlimBox(self.controller, self)

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.table_model)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        for column in range(len(HEADERS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    def _fit_table(self) -> None:
        """Tall enough for every row (between :data:`TABLE_MIN_ROWS` and :data:`TABLE_MAX_ROWS`)."""
        table = self.table
        rows = min(max(self.table_model.rowCount(), TABLE_MIN_ROWS), TABLE_MAX_ROWS)
        height = (
            table.horizontalHeader().sizeHint().height()
            + rows * table.verticalHeader().defaultSectionSize()
            + table.horizontalScrollBar().sizeHint().height()
            + 2 * table.frameWidth()
        )
        table.setFixedHeight(height)

    def _build_layout(self) -> None:
        advice_box = QGroupBox("Before you measure")
        advice_layout = QVBoxLayout(advice_box)
        advice_layout.addWidget(self.advice_view)
        advice_layout.addWidget(self.advice_status)

        settings_box = QGroupBox("Benchmark")
        form = make_form()
        add_row(
            form,
            "Batch sizes",
            self.batch_edit,
            "Samples per forward pass, comma separated (e.g. 1, 16, 64). Small batches "
            "show latency, large ones throughput; sparse kernels pay off differently.",
        )
        add_row(
            form,
            "Threads",
            self.threads_spin,
            "CPU threads every form runs with (the same for all, so the comparison is "
            "fair). Default: all cores.",
        )
        add_row(
            form,
            "Device",
            self.device_combo,
            "Where the model runs. 2:4 semi-structured sparsity needs a CUDA GPU with "
            "sparse tensor cores.",
        )
        add_row(
            form,
            "Input shape",
            self.shape_edit,
            "One sample's shape without the batch dimension, e.g. 3, 64, 64. Taken from "
            "the model's example input; edit it for another resolution.",
        )
        add_row(
            form,
            "Time per measurement",
            self.min_time_spin,
            "Minimum time torch.utils.benchmark spends repeating one form at one batch "
            "size. Longer is steadier; the whole run takes about forms × batches × this.",
        )
        forms_row = QHBoxLayout()
        forms_row.setSpacing(10)
        for check in self.form_checks.values():
            forms_row.addWidget(check)
        forms_row.addStretch(1)
        forms_widget = QWidget()
        forms_widget.setLayout(forms_row)
        forms_row.setContentsMargins(0, 0, 0, 0)
        add_row(form, "Forms", forms_widget, "Which forms of the model to measure.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        settings_layout = QVBoxLayout(settings_box)
        settings_layout.addLayout(form)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.status)

        results_box = QGroupBox("Results")
        results = QVBoxLayout(results_box)
        results.addWidget(self.table)
        export_row = QHBoxLayout()
        export_row.addWidget(self.slim_note, 1)
        export_row.addWidget(self.csv_button)
        export_row.addWidget(self.json_button)
        results.addLayout(export_row)
        results.addWidget(self.latency_chart)
        results.addWidget(self.speedup_chart)
        results.addWidget(self.chart_legend)
        results.addWidget(self.method_label)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(8, 8, 8, 8)
        column.setSpacing(10)
        column.addWidget(self.intro)
        column.addWidget(advice_box)
        column.addWidget(settings_box)
        column.addWidget(results_box)
        column.addWidget(self.slim_box)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        self.scroll = scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _connect(self) -> None:
        self.table_model.rowsInserted.connect(lambda *_args: self._fit_table())
        self.table_model.modelReset.connect(self._fit_table)
        self.run_button.clicked.connect(self.run_benchmark)
        self.cancel_button.clicked.connect(self.cancel)
        self.csv_button.clicked.connect(lambda: self.export_dialog(".csv"))
        self.json_button.clicked.connect(lambda: self.export_dialog(".json"))
        self.benchmark.started.connect(self._on_started)
        self.benchmark.progress.connect(self._on_progress)
        self.benchmark.detail.connect(self._on_detail)
        self.benchmark.ended.connect(self._on_ended)
        self.advice_job.ended.connect(lambda _outcome: self._advise_again_if_wanted())
        for edit in (self.batch_edit, self.shape_edit):
            edit.textChanged.connect(lambda _text: self._on_settings_changed())
        self.device_combo.currentTextChanged.connect(lambda _text: self._on_settings_changed())
        self.threads_spin.valueChanged.connect(lambda _v: self._save_settings())
        self.min_time_spin.valueChanged.connect(lambda _v: self._save_settings())
        for check in self.form_checks.values():
            check.toggled.connect(lambda _on: self._save_settings())
        self.slim_box.slimmed.connect(self._on_slimmed)
        c = self.controller
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_replaced)
        c.masks_changed.connect(lambda _names: self._schedule_advice())
        c.stats_ready.connect(self._on_stats)

    # -- settings ---------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.settings
        s.beginGroup(SETTINGS_GROUP)
        try:
            self.batch_edit.setText(str(s.value("batch_sizes", DEFAULT_BATCHES)))
            threads = _int(s.value("threads"), default_threads())
            self.threads_spin.setValue(min(max(threads, 1), self.threads_spin.maximum()))
            device = str(s.value("device", "cpu"))
            if device in available_devices():
                self.device_combo.setCurrentText(device)
            self.min_time_spin.setValue(_float(s.value("min_run_time"), 0.2))
            skipped = str(s.value("skipped_forms", "")).split(",")
            for form, check in self.form_checks.items():
                if check.isEnabled():
                    check.setChecked(form not in skipped)
        finally:
            s.endGroup()

    def _save_settings(self) -> None:
        s = self.settings
        s.beginGroup(SETTINGS_GROUP)
        s.setValue("batch_sizes", self.batch_edit.text())
        s.setValue("threads", self.threads_spin.value())
        s.setValue("device", self.device_combo.currentText())
        s.setValue("min_run_time", self.min_time_spin.value())
        skipped = [f for f, c in self.form_checks.items() if not c.isChecked()]
        s.setValue("skipped_forms", ",".join(skipped))
        s.endGroup()

    # -- public API ----------------------------------------------------------------------------
    @property
    def report(self) -> BenchmarkReport | None:
        """The last finished benchmark's report (None before one finished)."""
        return self._report

    @property
    def slim_model(self) -> torch.nn.Module | None:
        """The slim model the next benchmark measures as its "slim" form (None: none yet)."""
        return self._slim_model

    def set_slim_model(self, model: torch.nn.Module | None) -> None:
        """Measure ``model`` as the "slim" form from the next benchmark on (None: no slim form).

        The Slim button sets it; its outputs are checked against the masked model's
        like every form's, so a slim model of another state is reported as failed.
        """
        self._slim_model = model
        self._update_slim_note()

    def config(self) -> BenchmarkConfig:
        """The benchmark settings as typed.

        Raises:
            ValueError: a setting cannot be read (the message says which and why).
        """
        batches = parse_positive_ints(self.batch_edit.text(), "Batch sizes", limit=65_536)
        shape = parse_shape(self.shape_edit.text())
        forms = tuple(f for f, check in self.form_checks.items() if check.isChecked())
        return BenchmarkConfig(
            batch_sizes=batches,
            threads=self.threads_spin.value(),
            device=self.device_combo.currentText(),
            input_shape=shape,
            min_run_time=self.min_time_spin.value(),
            forms=forms,
        )

    def status_text(self) -> str:
        """The status line under the Run button."""
        return self.status.text()

    def run_benchmark(self) -> bool:
        """Start the benchmark with the current settings; False (and why, in the status) if not."""
        session = self.controller.session
        if session is None:
            self._set_status("Open a model first.", ERROR_STYLE)
            return False
        if self.benchmark.active:
            return False
        try:
            config = self.config()
        except ValueError as exc:
            self._set_status(str(exc), ERROR_STYLE)
            return False
        self._save_settings()
        assert config.input_shape is not None
        example = self._example_input(config.input_shape)
        slim = self._slim_model

        def job(token: CancelToken) -> Job[BenchmarkReport]:
            slim_model = slim
            if slim_model is None and "slim" in config.forms:
                # No Slim step yet: slim a copy for the benchmark (the session is not touched),
                # so dense, masked and slim are measured side by side.
                slim_model = yield from _slim_for_benchmark(session, token)
            return (
                yield from benchmark_job(
                    session, example, config, slim_model=slim_model, token=token
                )
            )

        self.table_model.clear()
        self._report = None
        self._draw_charts()
        self._set_status("Waiting for the running job…", INFO_STYLE)
        self.benchmark.start(job, self._on_report, on_error=self._on_failed)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        """Cancel the benchmark (rows measured so far stay)."""
        self.benchmark.cancel()

    def export_report(self, path: str | Path) -> Path:
        """Write the last report to ``path``: ``.json`` as JSON, anything else as CSV.

        Raises:
            RuntimeError: no benchmark has finished yet.
        """
        if self._report is None:
            raise RuntimeError("run the benchmark first")
        target = Path(path)
        if target.suffix.lower() == ".json":
            self._report.to_json(target)
        else:
            self._report.to_csv(target)
        return target

    def export_dialog(self, suffix: str) -> None:
        """Ask where to save the report (CSV or JSON) and save it."""
        if self._report is None:
            return
        folder = str(self.settings.value(f"{SETTINGS_GROUP}/export_dir", str(Path.home())))
        name = str(Path(folder) / f"benchmark{suffix}")
        chosen = "JSON report (*.json)" if suffix == ".json" else "CSV table (*.csv)"
        path, _ = QFileDialog.getSaveFileName(self, "Export benchmark", name, EXPORT_FILTER, chosen)
        if not path:
            return
        if not Path(path).suffix:
            path += suffix
        try:
            written = self.export_report(path)
        except (OSError, RuntimeError, ValueError) as exc:
            self._set_status(f"Could not export: {exc}", ERROR_STYLE)
            return
        self.settings.setValue(f"{SETTINGS_GROUP}/export_dir", str(written.parent))
        self._set_status(f"Saved {written}", INFO_STYLE)

    def refresh_advice(self) -> bool:
        """Work out the speed advice for the current settings in a job (False if not possible)."""
        session = self.controller.session
        if session is None:
            return False
        if self.advice_job.active:
            self._advice_wanted = True  # once more when this one ends
            return False
        self._advice_wanted = False
        device = self.device_combo.currentText()
        try:
            batch = parse_positive_ints(self.batch_edit.text(), "Batch sizes")[0]
        except ValueError:
            batch = 1

        def job(_token: CancelToken) -> Job[list[Advice]]:
            yield Progress(0.0, "working out speed advice")
            return speed_advice(session, device=device, batch_size=batch)

        self.advice_status.setText("Working out advice…")
        return self.advice_job.start(job, self._show_advice, on_error=self._advice_failed)

    # -- job events ----------------------------------------------------------------------------
    def _on_started(self) -> None:
        self.progress.setValue(0)
        self._set_status("Measuring…", INFO_STYLE)
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(round(1000 * min(max(fraction, 0.0), 1.0)))
        self._set_status(message, INFO_STYLE)

    def _on_detail(self, detail: Any) -> None:
        if isinstance(detail, FormResult):
            self.table_model.add_result(detail)
            self._draw_charts()

    def _on_report(self, report: BenchmarkReport) -> None:
        self._report = report
        self.table_model.set_results(report.rows)
        self._draw_charts()
        self.method_label.setText(
            f"<b>Method.</b> {report.method}<br>Device: {report.device_name} · "
            f"{report.threads} thread{'s' if report.threads != 1 else ''}"
        )
        if report.advice:
            self.advice_view.show_advice(report.advice)
        timed = sum(1 for r in report.rows if r.median_ms is not None)
        self._set_status(
            f"Done: {timed} of {len(report.rows)} measurements timed. Hover a greyed row "
            "for why it did not run.",
            INFO_STYLE,
        )

    def _on_failed(self, exc: BaseException) -> None:
        self._set_status(f"Benchmark failed: {exc}", ERROR_STYLE)

    def _on_ended(self, outcome: str) -> None:
        self.progress.setValue(1000 if outcome == "done" else 0)
        if outcome == "cancelled":
            shown = self.table_model.rowCount()
            self._set_status(f"Cancelled; {shown} measurement(s) kept.", INFO_STYLE)
        self._update_buttons()

    # -- advice --------------------------------------------------------------------------------
    def _schedule_advice(self) -> None:
        if self.isVisible():
            self._advice_timer.start()
        else:
            self._advice_wanted = True

    def _advise_again_if_wanted(self) -> None:
        if self._advice_wanted and self.isVisible():
            self.refresh_advice()

    def _show_advice(self, advice: list[Advice]) -> None:
        self.advice_view.show_advice(
            advice, "Nothing to warn about: run the benchmark to see the real figures."
        )
        self.advice_status.setText(
            f"For {self.device_combo.currentText()} at batch size "
            f"{self._first_batch()}; refreshed as you prune."
        )

    def _advice_failed(self, exc: BaseException) -> None:
        self.advice_status.setText(f"No advice: {exc}")
        self.advice_status.setStyleSheet(ERROR_STYLE)

    def _first_batch(self) -> int:
        try:
            return parse_positive_ints(self.batch_edit.text(), "Batch sizes")[0]
        except ValueError:
            return 1

    # -- model events ---------------------------------------------------------------------------
    def _on_model_loaded(self) -> None:
        loaded = self.controller.loaded
        self._slim_model = None
        self.slim_note.setText("")
        example = loaded.example_input if loaded is not None else None
        shape = tuple(example.shape[1:]) if example is not None else ()
        self.shape_edit.setText(format_list(shape) if shape else "")
        self.table_model.clear()
        self._report = None
        self._draw_charts()
        self.method_label.setText("")
        self._set_status("" if loaded is None else "Ready.", INFO_STYLE)
        self.advice_view.show_advice([])
        self._schedule_advice()
        self._update_buttons()

    def _on_model_replaced(self) -> None:
        self._update_slim_note()
        self._schedule_advice()
        self._update_buttons()

    def _on_stats(self, stats: ModelStats) -> None:
        dense, effective = stats.flops_dense, stats.flops_effective
        cut = dense / effective if dense and effective else None
        self.speedup_chart.set_paper_cut(cut)
        self._draw_legend()

    def _on_slimmed(self, result: SlimResult) -> None:
        self.set_slim_model(result.model)

    def _update_slim_note(self) -> None:
        session = self.controller.session
        if self._slim_model is None or session is None:
            self.slim_note.setText("")
        elif session.model is self._slim_model:
            self.slim_note.setText(
                "The session holds the slim model now, so 'dense' and 'masked' measure it "
                "too. Undo the Slim step to compare with the original; the 'slim' row keeps "
                "measuring the slim model."
            )
        else:
            self.slim_note.setText("The next benchmark measures your slim model as 'slim'.")

    def _on_settings_changed(self) -> None:
        self._save_settings()
        self._schedule_advice()
        self._update_buttons()

    # -- helpers --------------------------------------------------------------------------------
    def _example_input(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The model's example input (the benchmark repeats its samples, or draws seeded
        values when ``shape`` differs from it); zeros of ``shape`` when it has none."""
        loaded = self.controller.loaded
        example = loaded.example_input if loaded is not None else None
        return example if example is not None else torch.zeros((1, *shape))

    def _draw_charts(self) -> None:
        rows = self.table_model.rows
        self.latency_chart.show_rows(rows)
        self.speedup_chart.show_rows(rows)
        self._draw_legend()

    def _draw_legend(self) -> None:
        rows = self.table_model.rows
        forms = [f for f in FORM_ORDER if any(r.form == f for r in rows)]
        entries = [(form_label(f), FORM_COLORS[f], "■") for f in forms]
        if forms:
            entries.append(("FLOPs cut (hollow)", (110, 110, 110), "□"))
        if forms and self.speedup_chart.paper_cut is not None:
            entries.append(("FLOPs cut on paper (dense / effective)", ACCENT_RGB, "┈"))
        self.chart_legend.setText(legend_html(entries) if entries else "")

    def _update_buttons(self) -> None:
        has_model = self.controller.session is not None
        active = self.benchmark.active
        self.run_button.setEnabled(has_model and not active)
        self.cancel_button.setEnabled(active)
        has_report = self._report is not None and not active
        self.csv_button.setEnabled(has_report)
        self.json_button.setEnabled(has_report)
        for widget in (self.batch_edit, self.shape_edit, self.threads_spin, self.device_combo,
                       self.min_time_spin):  # fmt: skip
            widget.setEnabled(not active)

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._advice_wanted:
            self._advice_timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if self._advice_timer.isActive():
            self._advice_timer.stop()
            self._advice_wanted = True


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _float(value: object, default: float) -> float:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return default


def _slim_for_benchmark(session: PruningSession, token: CancelToken) -> Job[nn.Module | None]:
    """A slim copy of the session's model when some channel group is pruned whole, else None
    (the benchmark then says why the slim form is missing)."""
    example = session.example_input
    if example is None:
        return None
    try:
        result = yield from scaled(slim_job(session, example, token=token), 0.0, 0.05)
    except PruningError:
        return None  # e.g. a model the dependency graph cannot trace
    return result.model if result.removed else None
