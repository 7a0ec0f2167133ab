"""The Speed tab's "Benchmark" box: what to measure and how, with Run / Cancel.

:class:`BenchmarkSettingsBox` holds the benchmark's settings (batch sizes,
threads, device, one sample's input shape, time per measurement, forms), the
Run and Cancel buttons, a progress bar and the status line
(:class:`~gui.speed.run_controls.RunControls`). It reads the settings as a
:class:`core.speed.benchmark.BenchmarkConfig` and remembers them in
:class:`QSettings` (group ``speed``, :class:`~gui.speed.saved_fields.SavedFields`);
starting and following the benchmark is the panel's job.
"""

from __future__ import annotations

import os

import torch
from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.speed.benchmark import BenchmarkConfig
from core.speed.timing import default_threads
from gui.speed.forms import FORM_ORDER, FORM_TIPS, form_label
from gui.speed.inputs import format_list, parse_positive_ints, parse_shape
from gui.speed.run_controls import RunControls, time_per_measurement_spin
from gui.speed.saved_fields import SavedFields
from gui.widgets.forms import add_row, make_form

DEFAULT_BATCHES = "1, 16, 64"
SETTINGS_GROUP = "speed"
"""The :class:`QSettings` group of the Speed tab (the export folder is kept there too)."""


def available_devices() -> list[str]:
    """``cpu``, and ``cuda`` when torch sees a CUDA GPU."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class BenchmarkSettingsBox(QGroupBox):
    """The benchmark's settings, Run / Cancel, progress and status (see module docstring).

    Every change is saved at once.

    Signals:
        changed(): the batch sizes, the input shape or the device changed (the
            speed advice depends on them).

    Args:
        settings: where the settings are remembered.
        parent: the Qt parent.
    """

    changed = Signal()

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__("Benchmark", parent)
        self.settings = settings
        self._build_widgets()
        self._build_layout()
        self.fields = SavedFields(
            settings,
            SETTINGS_GROUP,
            {
                "batch_sizes": self.batch_edit,
                "threads": self.threads_spin,
                "device": self.device_combo,
                "min_run_time": self.min_time_spin,
            },
        )
        self._restore()
        self._connect()

    # -- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.batch_edit = QLineEdit(DEFAULT_BATCHES)
        self.batch_edit.setPlaceholderText(DEFAULT_BATCHES)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.threads_spin.setValue(default_threads())
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())
        self.shape_edit = QLineEdit()
        self.min_time_spin = time_per_measurement_spin(10.0, 0.2)
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
        self.controls = RunControls(
            "Run benchmark",
            "Measure every chosen form at every batch size (outputs are checked against the "
            "masked model first). Runs in the background; the table fills as it goes.",
            "Stop the benchmark; rows measured so far stay.",
            status_name="speedStatus",
        )
        c = self.controls
        self.run_button, self.cancel_button = c.run_button, c.cancel_button
        self.progress, self.status = c.progress, c.status

    def _build_layout(self) -> None:
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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        self.controls.add_to(layout)

    def _connect(self) -> None:
        for edit in (self.batch_edit, self.shape_edit):
            edit.textChanged.connect(lambda _text: self._on_changed())
        self.device_combo.currentTextChanged.connect(lambda _text: self._on_changed())
        self.threads_spin.valueChanged.connect(lambda _v: self.save())
        self.min_time_spin.valueChanged.connect(lambda _v: self.save())
        for check in self.form_checks.values():
            check.toggled.connect(lambda _on: self.save())

    # -- settings ---------------------------------------------------------------------------
    def _restore(self) -> None:
        self.fields.restore()
        skipped = str(self.fields.value("skipped_forms", "")).split(",")
        for form, check in self.form_checks.items():
            if check.isEnabled():
                check.setChecked(form not in skipped)

    def save(self) -> None:
        """Remember the settings as they are now."""
        skipped = [f for f, c in self.form_checks.items() if not c.isChecked()]
        self.fields.save(skipped_forms=",".join(skipped))

    def _on_changed(self) -> None:
        self.save()
        self.changed.emit()

    # -- reading ------------------------------------------------------------------------------
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

    def device(self) -> str:
        """The device chosen (``cpu`` or ``cuda``)."""
        return self.device_combo.currentText()

    def first_batch(self) -> int:
        """The first batch size typed (1 when the batch sizes cannot be read)."""
        try:
            return parse_positive_ints(self.batch_edit.text(), "Batch sizes")[0]
        except ValueError:
            return 1

    # -- showing ------------------------------------------------------------------------------
    def show_sample_shape(self, shape: tuple[int, ...]) -> None:
        """Type ``shape`` (one sample's, without the batch) as the input shape ("" for none)."""
        self.shape_edit.setText(format_list(shape) if shape else "")

    def set_running(self, active: bool, has_model: bool) -> None:
        """Enable Run (with a model, when idle), Cancel (while running) and the settings."""
        inputs = (self.batch_edit, self.shape_edit, self.threads_spin, self.device_combo,
                  self.min_time_spin)  # fmt: skip
        self.controls.set_running(active, can_run=has_model, inputs=inputs)

    def set_status(self, text: str, style: str) -> None:
        """Show ``text`` in the status line under the buttons, styled by ``style``."""
        self.controls.set_status(text, style)
