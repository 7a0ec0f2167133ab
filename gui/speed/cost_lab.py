"""The "Cost lab" tab: what pruning costs and saves, measured on single Linear layers.

:class:`CostLabPanel` teaches the central lesson of real speed with
measurements rather than claims. Layers of a few sizes are pruned at a few
ratios, two ways (single weights anywhere, or whole rows), and each is timed
four ways: dense, masked (zeros in a dense tensor), with a sparse kernel, and
physically smaller (:func:`core.speed.cost_lab.cost_lab_job`). The table and
the plots (latency against ratio, one plot per size) fill as rows arrive.

The one-click **speed test** (:func:`core.speed.cost_lab.speed_test_job`)
times a 1000×1000 Linear at 80% on a batch of 100 and explains the result in
plain words: zeros in a dense tensor cost the same; sparse kernels pay only at
high sparsity; a physically smaller layer is faster in proportion.

The work needs no model. With a controller that has a session it runs through
:meth:`SessionController.submit` (one job at a time in the window); otherwise
on a runner of its own.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.common.jobs import CancelToken, Job
from core.speed.cost_lab import CostRow, SpeedTest, cost_lab_job, speed_test_job
from core.speed.timing import default_threads
from gui.speed.charts import CostLabChart, SpeedTestChart
from gui.speed.cost_table import HEADERS, CostTableModel
from gui.speed.inputs import format_list, parse_positive_ints, parse_ratios
from gui.speed.run_controls import RunControls, time_per_measurement_spin
from gui.speed.saved_fields import SavedFields
from gui.speed.scroll_column import scroll_column
from gui.speed.tracked_job import TrackedJob
from gui.widgets.forms import ERROR_STYLE, INFO_STYLE, add_row, make_form, note_label

if TYPE_CHECKING:
    from gui.session.controller import SessionController

DEFAULT_SIZES = (100, 500, 1000)
DEFAULT_RATIOS = (0.0, 0.2, 0.5, 0.8, 0.9)
DEFAULT_BATCH = 100
MAX_SIZE = 8192
SETTINGS_GROUP = "cost_lab"
SPEED_TEST = {"batch_size": 100, "size": 1000, "ratio": 0.8}
SPEED_TEST_TEXT = "Speed test (batch 100, 1000×1000 Linear, 80%)"


class CostLabPanel(QWidget):
    """Dense vs masked vs sparse vs smaller, measured (see module docstring).

    Args:
        controller: the window's controller (jobs run through it when it has a model);
            None: the panel runs its jobs itself.
        parent: the Qt parent.
    """

    def __init__(
        self, controller: SessionController | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = QSettings()
        self.lab_job = TrackedJob("Cost lab", controller, self)
        self.test_job = TrackedJob("Speed test", controller, self)
        self.table_model = CostTableModel(self)
        self._speed_test: SpeedTest | None = None
        self._build_widgets()
        self._build_layout()
        self.fields = SavedFields(
            self.settings,
            SETTINGS_GROUP,
            {
                "sizes": self.sizes_edit,
                "ratios": self.ratios_edit,
                "batch": self.batch_spin,
                "threads": self.threads_spin,
                "min_run_time": self.min_time_spin,
            },
        )
        self.fields.restore()
        self._connect()
        self._update_buttons()

    # -- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.intro = note_label(
            "One Linear layer, pruned two ways: unstructured (single weights anywhere) or "
            "structured (whole rows). Each is timed as dense, masked (the zeros kept in a "
            "dense tensor), with a sparse kernel (only kept weights stored and multiplied) "
            "and physically smaller (the pruned rows removed). FLOPs fall with the ratio; "
            "watch which times follow them."
        )
        self.sizes_edit = QLineEdit(format_list(DEFAULT_SIZES))
        self.ratios_edit = QLineEdit(format_list(DEFAULT_RATIOS))
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setValue(DEFAULT_BATCH)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(os.cpu_count() or 1, default_threads()))
        self.threads_spin.setValue(default_threads())
        self.min_time_spin = time_per_measurement_spin(5.0, 0.05)
        self.controls = RunControls(
            "Run cost lab",
            "Time every size × ratio × kind (runs in the background; rows appear as they are "
            "measured).",
            "Stop the measurement; rows measured so far stay.",
        )
        c = self.controls
        self.run_button, self.cancel_button = c.run_button, c.cancel_button
        self.progress, self.status = c.progress, c.status
        self.test_button = QPushButton(SPEED_TEST_TEXT)
        self.test_button.setToolTip(
            "One click: dense vs masked vs sparse kernel vs torch CSR vs a physically smaller "
            "layer, with what it means."
        )
        self.speed_chart = SpeedTestChart(self)
        self.speed_chart.setToolTip("Dense time / each form's time: above 1 is faster.")
        self.explanation = QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setObjectName("speedTestExplanation")
        self.explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        for column in range(len(HEADERS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(280)
        self.chart = CostLabChart(self)
        self.legend = QLabel(CostLabChart.legend())
        self.legend.setWordWrap(True)

    def _build_layout(self) -> None:
        settings_box = QGroupBox("Layers and ratios")
        form = make_form()
        add_row(
            form,
            "Sizes",
            self.sizes_edit,
            "Layer sizes n for n × n Linear layers, comma separated (e.g. 100, 500, 1000). "
            f"Up to {MAX_SIZE}.",
        )
        add_row(
            form,
            "Ratios",
            self.ratios_edit,
            "Shares of the weights pruned, comma separated (0.8 or 80%).",
        )
        add_row(form, "Batch size", self.batch_spin, "Samples per forward pass.")
        add_row(
            form,
            "Threads",
            self.threads_spin,
            "CPU threads for every measurement (the same for all).",
        )
        add_row(form, "Time per measurement", self.min_time_spin,
                "Minimum time spent repeating each measurement (also of the speed test); longer "
                "is steadier.")  # fmt: skip
        settings = QVBoxLayout(settings_box)
        settings.addLayout(form)
        self.controls.add_to(settings)

        test_box = QGroupBox("The speed test")
        test = QVBoxLayout(test_box)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addStretch(1)
        test.addLayout(row)
        test.addWidget(self.speed_chart)
        test.addWidget(self.explanation)

        results_box = QGroupBox("Measurements")
        results = QVBoxLayout(results_box)
        results.addWidget(self.table)
        results.addWidget(self.chart)
        results.addWidget(self.legend)

        self.scroll = scroll_column(self, (self.intro, test_box, settings_box, results_box))

    def _connect(self) -> None:
        self.run_button.clicked.connect(self.run_lab)
        self.test_button.clicked.connect(self.run_speed_test)
        self.cancel_button.clicked.connect(self.cancel)
        for job in (self.lab_job, self.test_job):
            job.started.connect(self._on_started)
            job.progress.connect(self._on_progress)
            job.ended.connect(self._on_ended)
        self.lab_job.detail.connect(self._on_detail)
        self.fields.on_change(self.fields.save)

    # -- public API ----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether the cost lab or the speed test is queued or running."""
        return self.lab_job.active or self.test_job.active

    @property
    def speed_test(self) -> SpeedTest | None:
        """The last speed test's result (None before one finished)."""
        return self._speed_test

    def sizes(self) -> tuple[int, ...]:
        """The layer sizes typed. Raises ValueError with the reason."""
        return parse_positive_ints(self.sizes_edit.text(), "Sizes", limit=MAX_SIZE)

    def ratios(self) -> tuple[float, ...]:
        """The pruning ratios typed. Raises ValueError with the reason."""
        return parse_ratios(self.ratios_edit.text())

    def status_text(self) -> str:
        """The status line under the buttons."""
        return self.status.text()

    def run_lab(self) -> bool:
        """Measure every size × ratio × kind in a job; False (and why, in the status) if not."""
        if self.busy:
            return False
        try:
            sizes, ratios = self.sizes(), self.ratios()
        except ValueError as exc:
            self.controls.set_status(str(exc), ERROR_STYLE)
            return False
        batch, threads = self.batch_spin.value(), self.threads_spin.value()
        min_time = self.min_time_spin.value()

        def job(token: CancelToken) -> Job[tuple[CostRow, ...]]:
            return (
                yield from cost_lab_job(
                    sizes,
                    ratios,
                    batch_size=batch,
                    threads=threads,
                    min_run_time=min_time,
                    token=token,
                )
            )

        self.table_model.clear()
        self.chart.show_rows([])
        self.controls.set_status("Waiting for the running job…", INFO_STYLE)
        started = self.lab_job.start(job, self._on_rows, on_error=self._on_failed)
        self._update_buttons()
        return started

    def run_speed_test(self) -> bool:
        """Run the speed test (batch 100, 1000×1000 Linear, 80%) in a job."""
        if self.busy:
            return False
        threads, min_time = self.threads_spin.value(), self.min_time_spin.value()

        def job(token: CancelToken) -> Job[SpeedTest]:
            return (
                yield from speed_test_job(
                    **SPEED_TEST, threads=threads, min_run_time=min_time, token=token
                )
            )

        self.explanation.setText("")
        self.controls.set_status("Waiting for the running job…", INFO_STYLE)
        started = self.test_job.start(job, self._on_speed_test, on_error=self._on_failed)
        self._update_buttons()
        return started

    def cancel(self) -> None:
        """Cancel whichever measurement is queued or running."""
        self.lab_job.cancel()
        self.test_job.cancel()

    # -- job events ----------------------------------------------------------------------------
    def _on_started(self) -> None:
        self.controls.show_started()
        self._update_buttons()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.controls.show_step(fraction, message)

    def _on_detail(self, detail: Any) -> None:
        if isinstance(detail, CostRow):
            self.table_model.add_row(detail)
            self.chart.show_rows(self.table_model.rows)

    def _on_rows(self, rows: tuple[CostRow, ...]) -> None:
        self.table_model.set_rows(rows)
        self.chart.show_rows(rows)
        self.controls.set_status(f"Done: {len(rows)} rows measured.", INFO_STYLE)

    def _on_speed_test(self, result: SpeedTest) -> None:
        self._speed_test = result
        times = {
            "masked_ms": result.masked_ms,
            "sparse_ms": result.sparse_ms,
            "torch_csr_ms": result.torch_csr_ms,
            "small_ms": result.small_ms,
        }
        self.speed_chart.show_times(result.dense_ms, times)
        self.explanation.setText(result.explanation)
        self.controls.set_status(
            f"Speed test: dense {result.dense_ms:.3g} ms for a batch of {result.batch_size} "
            f"through a {result.size}×{result.size} Linear at {result.ratio:.0%}.",
            INFO_STYLE,
        )

    def _on_failed(self, exc: BaseException) -> None:
        self.controls.set_status(f"Measurement failed: {exc}", ERROR_STYLE)

    def _on_ended(self, outcome: str) -> None:
        self.controls.show_ended(outcome)
        if outcome == "cancelled":
            kept = self.table_model.rowCount()
            self.controls.set_status(f"Cancelled; {kept} row(s) kept.", INFO_STYLE)
        self._update_buttons()

    # -- helpers --------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        inputs = (self.sizes_edit, self.ratios_edit, self.batch_spin, self.threads_spin,
                  self.min_time_spin)  # fmt: skip
        self.controls.set_running(self.busy, starters=(self.test_button,), inputs=inputs)
