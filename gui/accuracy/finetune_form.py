"""The fine-tuning settings: optimiser, learning rate and schedule, epochs, distillation,
which epoch to keep, and what Cancel does.

:class:`FinetuneForm` edits a :class:`core.training.finetune.FinetuneConfig`
(:meth:`FinetuneForm.config`, :meth:`FinetuneForm.set_config`), remembers the
last settings in ``QSettings`` and offers the demo defaults (:data:`DEFAULTS`).
Fields that do not apply are disabled: momentum unless SGD, temperature and
alpha unless distillation is on.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import fields, replace

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.training.finetune import AUGMENTATIONS, OPTIMIZERS, SCHEDULES, FinetuneConfig
from gui.widgets.colormaps import ALARM_RGB, hex_color

DEFAULTS = FinetuneConfig(
    epochs=10,
    batch_size=64,
    optimizer="adam",
    lr=1e-3,
    schedule="cosine",
    momentum=0.9,
    weight_decay=0.0,
    seed=0,
    distill=True,
    temperature=4.0,
    alpha=0.7,
    keep="best",
    patience=None,
    on_cancel="keep",
    augment="none",
)
"""What the form starts with: good for the digits demos."""
SETTINGS_KEY = "accuracy/finetune"
TIP = Qt.ItemDataRole.ToolTipRole
OPTIMIZER_TEXT = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
OPTIMIZER_TIPS = {
    "sgd": "Stochastic gradient descent with momentum: needs a larger learning rate (~0.01-0.1)",
    "adam": "Adam: adapts the step per weight; 1e-3 is a good start",
    "adamw": "Adam with decoupled weight decay: use with a weight decay such as 0.01",
}
AUGMENT_TEXT = {"none": "None", "shift": "1-pixel shifts"}
AUGMENT_TIPS = {
    "none": "Train on the samples as they are",
    "shift": "Move each training image by up to one pixel each way (images only): "
    "more variety, less over-fitting on small data sets",
}
SCHEDULE_TEXT = {"constant": "Constant", "cosine": "Cosine decay", "onecycle": "One-cycle"}
SCHEDULE_TIPS = {
    "constant": "The same learning rate every step",
    "cosine": "Starts at the learning rate and decays to 0 along a half cosine: "
    "settles the weights at the end",
    "onecycle": "Warms up to the learning rate, then anneals far below it; "
    "tolerates a higher peak learning rate",
}


class FinetuneForm(QWidget):
    """Edits a :class:`FinetuneConfig` (see module docstring).

    Signals:
        changed(): a setting changed (it is saved at once).
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings if settings is not None else QSettings()
        self._loading = False
        self._build()
        self.set_config(self._restored())
        self._connect()

    # -- construction ------------------------------------------------------------------
    def _build(self) -> None:
        self.optimizer_combo = QComboBox(self)
        for name in OPTIMIZERS:
            self.optimizer_combo.addItem(OPTIMIZER_TEXT.get(name, name), name)
            self.optimizer_combo.setItemData(
                self.optimizer_combo.count() - 1, OPTIMIZER_TIPS.get(name, ""), TIP
            )
        self.optimizer_combo.setToolTip("How the weights are updated from their gradients")
        self.lr_edit = _number_edit(self, "Learning rate: the size of the steps (e.g. 1e-3)")
        self.schedule_combo = QComboBox(self)
        for name in SCHEDULES:
            self.schedule_combo.addItem(SCHEDULE_TEXT.get(name, name), name)
            self.schedule_combo.setItemData(
                self.schedule_combo.count() - 1, SCHEDULE_TIPS.get(name, ""), TIP
            )
        self.schedule_combo.setToolTip("How the learning rate changes over the run")
        self.augment_combo = QComboBox(self)
        for name in AUGMENTATIONS:
            self.augment_combo.addItem(AUGMENT_TEXT.get(name, name), name)
            self.augment_combo.setItemData(
                self.augment_combo.count() - 1, AUGMENT_TIPS.get(name, ""), TIP
            )
        self.augment_combo.setToolTip("Random changes to the training samples at each step")
        self.epochs_spin = _int_spin(self, 1, 10_000, "Passes over the training split")
        self.batch_spin = _int_spin(
            self, 1, 1 << 16, "Samples per optimiser step (a loader keeps its own batches)"
        )
        self.weight_decay_edit = _number_edit(
            self, "Pulls the kept weights towards 0 (L2 for SGD/Adam, decoupled for AdamW); "
            "pruned weights stay exactly 0 either way",
        )  # fmt: skip
        self.momentum_spin = QDoubleSpinBox(self)
        self.momentum_spin.setRange(0.0, 0.999)
        self.momentum_spin.setDecimals(3)
        self.momentum_spin.setSingleStep(0.05)
        self.momentum_spin.setToolTip("SGD only: how much of the previous step carries on")
        self.seed_spin = _int_spin(self, 0, 2**31 - 1, "Same seed, same data order, same result")
        self.distill_check = QCheckBox("Distil from the unpruned model", self)
        self.distill_check.setToolTip(
            "Knowledge distillation: the unpruned model is the teacher; the pruned model "
            "learns its softened predictions as well as the labels. Usually recovers more "
            "accuracy at high sparsity"
        )
        self.temperature_spin = QDoubleSpinBox(self)
        self.temperature_spin.setRange(0.1, 100.0)
        self.temperature_spin.setDecimals(1)
        self.temperature_spin.setSingleStep(0.5)
        self.temperature_spin.setToolTip(
            "Temperature T: softens both models' predictions so the student also learns "
            "which wrong classes the teacher finds likely (higher = softer)"
        )
        self.alpha_spin = QDoubleSpinBox(self)
        self.alpha_spin.setRange(0.0, 1.0)
        self.alpha_spin.setDecimals(2)
        self.alpha_spin.setSingleStep(0.05)
        self.alpha_spin.setToolTip(
            "Weight α of the teacher: loss = α·T²·KL(teacher ‖ student) + (1 − α)·cross-entropy"
        )
        self.keep_combo = QComboBox(self)
        self.keep_combo.addItem("Best on validation", "best")
        self.keep_combo.addItem("Last epoch", "last")
        self.keep_combo.setToolTip(
            "Which epoch's weights to keep: the one with the best validation accuracy "
            "(nothing if no epoch beats the start), or simply the last. Never chosen on test"
        )
        self.patience_spin = _int_spin(
            self, 0, 10_000, "Stop early after this many epochs without a better validation "
            "score; off: run every epoch",
        )  # fmt: skip
        self.patience_spin.setSpecialValueText("off")
        self.cancel_keep = QRadioButton("Keep the last completed epoch", self)
        self.cancel_keep.setToolTip(
            "Cancel applies the weights of the completed epochs (the best or last so far, "
            "as chosen above) as one undoable step; never a half-finished epoch"
        )
        self.cancel_revert = QRadioButton("Return to the state before the run", self)
        self.cancel_revert.setToolTip("Cancel leaves the model and the history as they were")
        self.cancel_group = QButtonGroup(self)
        self.cancel_group.addButton(self.cancel_keep)
        self.cancel_group.addButton(self.cancel_revert)
        self.defaults_button = QPushButton("Defaults", self)
        self.defaults_button.setToolTip(
            "Adam 1e-3, cosine, 10 epochs, batch 64, distillation T 4 α 0.7, keep the best"
        )
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(f"color: {hex_color(ALARM_RGB)};")
        self.error_label.hide()

        training = QFormLayout()
        training.addRow("Optimiser", self.optimizer_combo)
        training.addRow("Learning rate", self.lr_edit)
        training.addRow("Schedule", self.schedule_combo)
        training.addRow("Epochs", self.epochs_spin)
        training.addRow("Batch size", self.batch_spin)
        training.addRow("Weight decay", self.weight_decay_edit)
        training.addRow("Momentum", self.momentum_spin)
        choices = QFormLayout()
        choices.addRow(self.distill_check)
        choices.addRow("Temperature", self.temperature_spin)
        choices.addRow("Alpha (teacher)", self.alpha_spin)
        choices.addRow("Keep", self.keep_combo)
        choices.addRow("Patience", self.patience_spin)
        choices.addRow("Augmentation", self.augment_combo)
        choices.addRow("Seed", self.seed_spin)
        for form in (training, choices):
            form.setContentsMargins(0, 0, 0, 0)
            form.setVerticalSpacing(2)
            for row in range(form.rowCount()):
                item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
                field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
                caption = item.widget() if item is not None else None
                widget = field.widget() if field is not None else None
                if caption is not None and widget is not None:
                    caption.setToolTip(widget.toolTip())
        columns = QHBoxLayout()
        columns.setContentsMargins(0, 0, 0, 0)
        columns.setSpacing(24)
        columns.addLayout(training, 1)
        columns.addLayout(choices, 1)
        cancel_row = QHBoxLayout()
        cancel_row.setContentsMargins(0, 0, 0, 0)
        cancel_caption = QLabel("When cancelled:", self)
        cancel_caption.setToolTip(self.cancel_keep.toolTip())
        cancel_row.addWidget(cancel_caption)
        cancel_row.addWidget(self.cancel_keep)
        cancel_row.addWidget(self.cancel_revert)
        cancel_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(columns)
        layout.addLayout(cancel_row)
        layout.addWidget(self.error_label)

    def _connect(self) -> None:
        for combo in (
            self.optimizer_combo,
            self.schedule_combo,
            self.keep_combo,
            self.augment_combo,
        ):
            combo.currentIndexChanged.connect(self._changed)
        for edit in (self.lr_edit, self.weight_decay_edit):
            edit.textChanged.connect(self._changed)
        for spin in (
            self.epochs_spin,
            self.batch_spin,
            self.momentum_spin,
            self.seed_spin,
            self.temperature_spin,
            self.alpha_spin,
            self.patience_spin,
        ):
            spin.valueChanged.connect(self._changed)
        self.distill_check.toggled.connect(self._changed)
        self.cancel_group.buttonToggled.connect(lambda _b, on: self._changed() if on else None)
        self.defaults_button.clicked.connect(lambda: self.set_config(DEFAULTS))

    # -- public API ---------------------------------------------------------------------
    def config(self) -> FinetuneConfig:
        """The settings as a checked :class:`FinetuneConfig`.

        Raises:
            PruningError: a value is not a number or is out of range (the form shows why).
        """
        try:
            config = FinetuneConfig(
                epochs=self.epochs_spin.value(),
                batch_size=self.batch_spin.value(),
                optimizer=str(self.optimizer_combo.currentData()),
                lr=_number(self.lr_edit, "learning rate"),
                schedule=str(self.schedule_combo.currentData()),
                momentum=self.momentum_spin.value(),
                weight_decay=_number(self.weight_decay_edit, "weight decay"),
                seed=self.seed_spin.value(),
                distill=self.distill_check.isChecked(),
                temperature=self.temperature_spin.value(),
                alpha=self.alpha_spin.value(),
                keep=str(self.keep_combo.currentData()),
                patience=self.patience_spin.value() or None,
                on_cancel="keep" if self.cancel_keep.isChecked() else "revert",
                augment=str(self.augment_combo.currentData()),
            )
            config.check()
        except PruningError as exc:
            self.show_error(str(exc))
            raise
        self.show_error("")
        return config

    def set_config(self, config: FinetuneConfig) -> None:
        """Show ``config`` in the form (saved as the last settings)."""
        self._loading = True
        try:
            _select(self.optimizer_combo, config.optimizer)
            self.lr_edit.setText(_format(config.lr))
            _select(self.schedule_combo, config.schedule)
            self.epochs_spin.setValue(config.epochs)
            self.batch_spin.setValue(config.batch_size)
            self.weight_decay_edit.setText(_format(config.weight_decay))
            self.momentum_spin.setValue(config.momentum)
            self.seed_spin.setValue(config.seed)
            self.distill_check.setChecked(config.distill)
            self.temperature_spin.setValue(config.temperature)
            self.alpha_spin.setValue(config.alpha)
            _select(self.keep_combo, config.keep)
            self.patience_spin.setValue(config.patience or 0)
            _select(self.augment_combo, config.augment)
            (self.cancel_keep if config.on_cancel == "keep" else self.cancel_revert).setChecked(
                True
            )
        finally:
            self._loading = False
        self._changed()

    def set_on_cancel(self, on_cancel: str) -> None:
        """Choose what Cancel does: ``"keep"`` or ``"revert"``."""
        (self.cancel_keep if on_cancel == "keep" else self.cancel_revert).setChecked(True)

    def show_error(self, message: str) -> None:
        """Show why the settings cannot run ('' hides it)."""
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def error_text(self) -> str:
        """The error shown ('' when none)."""
        return self.error_label.text() if not self.error_label.isHidden() else ""

    # -- internals ------------------------------------------------------------------------
    def _changed(self, *_args: object) -> None:
        if self._loading:
            return
        self.momentum_spin.setEnabled(self.optimizer_combo.currentData() == "sgd")
        distill = self.distill_check.isChecked()
        self.temperature_spin.setEnabled(distill)
        self.alpha_spin.setEnabled(distill)
        self.show_error("")
        try:
            config = self.config()
        except PruningError:
            return
        self._settings.setValue(SETTINGS_KEY, json.dumps(config.to_dict()))
        self.changed.emit()

    def _restored(self) -> FinetuneConfig:
        saved = self._settings.value(SETTINGS_KEY)
        if isinstance(saved, str):
            with contextlib.suppress(Exception):  # settings of another version: defaults
                known = {f.name for f in fields(FinetuneConfig)}
                values = {k: v for k, v in json.loads(saved).items() if k in known}
                config = replace(DEFAULTS, **values)
                config.check()
                return config
        return DEFAULTS


def _number_edit(parent: QWidget, tip: str) -> QLineEdit:
    edit = QLineEdit(parent)
    validator = QDoubleValidator(0.0, 1e6, 12, edit)
    validator.setNotation(QDoubleValidator.Notation.ScientificNotation)
    edit.setValidator(validator)
    edit.setToolTip(tip)
    edit.setMaximumWidth(140)
    return edit


def _int_spin(parent: QWidget, low: int, high: int, tip: str) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setToolTip(tip)
    return spin


def _number(edit: QLineEdit, what: str) -> float:
    text = edit.text().strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise PruningError(f"The {what} must be a number such as 1e-3, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise PruningError(f"The {what} must be a finite number >= 0, got {text}")
    return value


def _format(value: float) -> str:
    """``1e-3`` style for small numbers, plain otherwise."""
    if value == 0:
        return "0"
    if abs(value) < 0.01:
        mantissa, exponent = f"{value:.6e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    return f"{value:g}"


def _select(combo: QComboBox, value: str) -> None:
    index = combo.findData(value)
    if index >= 0:
        combo.setCurrentIndex(index)
