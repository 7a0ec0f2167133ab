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

The boxes are their own modules: :mod:`gui.speed.advice_box` (the advice, kept up
to date), :mod:`gui.speed.benchmark_settings` (settings, Run / Cancel, status) and
:mod:`gui.speed.benchmark_results` (table, charts, method); this module runs the
benchmark and exports its report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, scaled
from core.pruning.slim import slim_job
from core.speed.benchmark import BenchmarkConfig, BenchmarkReport, FormResult, benchmark_job
from gui.speed.advice_box import SpeedAdviceBox
from gui.speed.benchmark_results import BenchmarkResultsBox
from gui.speed.benchmark_settings import SETTINGS_GROUP, BenchmarkSettingsBox
from gui.speed.scroll_column import scroll_column
from gui.speed.slim_box import SlimBox
from gui.speed.tracked_job import TrackedJob
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, note_label

if TYPE_CHECKING:
    from torch import nn

    from core.analysis.stats import ModelStats
    from core.pruning.session import PruningSession
    from core.pruning.slim import SlimResult
    from gui.session.controller import SessionController

EXPORT_FILTER = "CSV table (*.csv);;JSON report (*.json)"


class SpeedPanel(QWidget):
    """Benchmark, advice, slim and harvest for the session's model (see module docstring).

    The panel is made of :class:`~gui.speed.advice_box.SpeedAdviceBox`,
    :class:`~gui.speed.benchmark_settings.BenchmarkSettingsBox`,
    :class:`~gui.speed.benchmark_results.BenchmarkResultsBox` and
    :class:`~gui.speed.slim_box.SlimBox`, in a scroll area; it runs the benchmark
    and exports its report. The parts' widgets are reachable as the panel's
    attributes too (``batch_edit``, ``run_button``, ``table_model``…).

    Args:
        controller: the window's session controller (jobs run through it).
        parent: the Qt parent.
    """

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = QSettings()
        self.benchmark = TrackedJob("Benchmark", controller, self)
        self._report: BenchmarkReport | None = None
        self._slim_model: torch.nn.Module | None = None
        self.intro = note_label(
            "Pruning makes a model smaller on paper; whether it runs faster depends on how it "
            "is executed. Zeros inside dense tensors cost the same as any other number. "
            "Measure it here: the original, the masked model, sparse kernels, the slimmed "
            "model and 2:4 side by side."
        )
        self.settings_box = BenchmarkSettingsBox(self.settings)
        self.advice_box = SpeedAdviceBox(controller, self.settings_box)
        self.results_box = BenchmarkResultsBox()
        self.slim_box = SlimBox(self.controller, self)
        self._expose_parts()
        self._build_layout()
        self._connect()
        self.results_box.fit_table()
        self._on_model_loaded()

    # -- construction ---------------------------------------------------------------------
    def _expose_parts(self) -> None:
        """The parts' widgets as the panel's attributes (tests and scripts reach them so)."""
        a, s, r = self.advice_box, self.settings_box, self.results_box
        self.advice_job, self.advice_view, self.advice_status = a.job, a.view, a.status
        self.batch_edit, self.threads_spin, self.device_combo = (
            s.batch_edit, s.threads_spin, s.device_combo
        )  # fmt: skip
        self.shape_edit, self.min_time_spin, self.form_checks = (
            s.shape_edit, s.min_time_spin, s.form_checks
        )  # fmt: skip
        self.run_button, self.cancel_button = s.run_button, s.cancel_button
        self.progress, self.status = s.progress, s.status
        self.table_model, self.table, self.method_label = r.table_model, r.table, r.method_label
        self.slim_note, self.csv_button, self.json_button = r.slim_note, r.csv_button, r.json_button
        self.latency_chart, self.speedup_chart = r.latency_chart, r.speedup_chart
        self.chart_legend = r.chart_legend

    def _build_layout(self) -> None:
        parts = (self.intro, self.advice_box, self.settings_box, self.results_box, self.slim_box)
        self.scroll = scroll_column(self, parts)

    def _connect(self) -> None:
        self.run_button.clicked.connect(self.run_benchmark)
        self.cancel_button.clicked.connect(self.cancel)
        self.csv_button.clicked.connect(lambda: self.export_dialog(".csv"))
        self.json_button.clicked.connect(lambda: self.export_dialog(".json"))
        self.benchmark.started.connect(self._on_started)
        self.benchmark.progress.connect(self._on_progress)
        self.benchmark.detail.connect(self._on_detail)
        self.benchmark.ended.connect(self._on_ended)
        self.settings_box.changed.connect(self._on_settings_changed)
        self.slim_box.slimmed.connect(self._on_slimmed)
        c = self.controller
        c.model_loaded.connect(self._on_model_loaded)
        c.model_replaced.connect(self._on_model_replaced)
        c.masks_changed.connect(lambda _names: self.advice_box.schedule())
        c.stats_ready.connect(self._on_stats)

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
        return self.settings_box.config()

    def status_text(self) -> str:
        """The status line under the Run button."""
        return self.status.text()

    def run_benchmark(self) -> bool:
        """Start the benchmark with the current settings; False (and why, in the status) if not."""
        session = self.controller.session
        if session is None:
            self.settings_box.set_status("Open a model first.", ERROR_STYLE)
            return False
        if self.benchmark.active:
            return False
        try:
            config = self.config()
        except ValueError as exc:
            self.settings_box.set_status(str(exc), ERROR_STYLE)
            return False
        self.settings_box.save()
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

        self.results_box.clear()
        self._report = None
        self.settings_box.set_status("Waiting for the running job…", INFO_STYLE)
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
            self.settings_box.set_status(f"Could not export: {exc}", ERROR_STYLE)
            return
        self.settings.setValue(f"{SETTINGS_GROUP}/export_dir", str(written.parent))
        self.settings_box.set_status(f"Saved {written}", INFO_STYLE)

    def refresh_advice(self) -> bool:
        """Work out the speed advice for the current settings in a job (False if not possible)."""
        return self.advice_box.refresh()

    # -- job events ----------------------------------------------------------------------------
    def _on_started(self) -> None:
        self.settings_box.controls.show_started()
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.settings_box.controls.show_step(fraction, message)

    def _on_detail(self, detail: Any) -> None:
        if isinstance(detail, FormResult):
            self.results_box.add_result(detail)

    def _on_report(self, report: BenchmarkReport) -> None:
        self._report = report
        self.results_box.show_report(report)
        if report.advice:
            self.advice_box.show_advice(report.advice)
        timed = sum(1 for r in report.rows if r.median_ms is not None)
        self.settings_box.set_status(
            f"Done: {timed} of {len(report.rows)} measurements timed. Hover a greyed row "
            "for why it did not run.",
            INFO_STYLE,
        )

    def _on_failed(self, exc: BaseException) -> None:
        self.settings_box.set_status(f"Benchmark failed: {exc}", ERROR_STYLE)

    def _on_ended(self, outcome: str) -> None:
        self.settings_box.controls.show_ended(outcome)
        if outcome == "cancelled":
            shown = self.table_model.rowCount()
            self.settings_box.set_status(f"Cancelled; {shown} measurement(s) kept.", INFO_STYLE)
        self._update_buttons()

    # -- model events ---------------------------------------------------------------------------
    def _on_model_loaded(self) -> None:
        loaded = self.controller.loaded
        self._slim_model = None
        self.slim_note.setText("")
        example = loaded.example_input if loaded is not None else None
        shape = tuple(example.shape[1:]) if example is not None else ()
        self.settings_box.show_sample_shape(shape)
        self.results_box.clear()
        self._report = None
        self.method_label.setText("")
        self.settings_box.set_status("" if loaded is None else "Ready.", INFO_STYLE)
        self.advice_box.show_advice([])
        self.advice_box.schedule()
        self._update_buttons()

    def _on_model_replaced(self) -> None:
        self._update_slim_note()
        self.advice_box.schedule()
        self._update_buttons()

    def _on_stats(self, stats: ModelStats) -> None:
        dense, effective = stats.flops_dense, stats.flops_effective
        cut = dense / effective if dense and effective else None
        self.results_box.set_paper_cut(cut)

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
        self.advice_box.schedule()
        self._update_buttons()

    # -- helpers --------------------------------------------------------------------------------
    def _example_input(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The model's example input (the benchmark repeats its samples, or draws seeded
        values when ``shape`` differs from it); zeros of ``shape`` when it has none."""
        loaded = self.controller.loaded
        example = loaded.example_input if loaded is not None else None
        return example if example is not None else torch.zeros((1, *shape))

    def _update_buttons(self) -> None:
        active = self.benchmark.active
        self.settings_box.set_running(active, has_model=self.controller.session is not None)
        self.results_box.set_exportable(self._report is not None and not active)


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
