"""The Accuracy tab: choose data, evaluate the pruned model, fine-tune it with the masks held.

Everything that touches the model runs as a core job through the controller
(:meth:`SessionController.submit`): loading and checking the data
(:func:`core.training.data.load_data_job`, :func:`~core.training.data.check_data`),
evaluating (:func:`core.training.evaluate.evaluate_session_job`) and fine-tuning
(:func:`core.training.finetune.finetune_job`, a mutating job: one undoable
history entry). Evaluate and Fine-tune load the chosen data first when it is not
loaded yet; a mismatch with the model is shown in the data box and nothing else
runs.

An evaluation is stored at the history position it was measured at
(``"evaluation:<split>"``, see :mod:`gui.session.measurements`), so the history
list shows accuracy beside each step that has one, and going back to a step
shows what was measured there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.training.data import Dataset, check_data, load_data_job
from core.training.evaluate import Evaluation, evaluate_session_job
from core.training.finetune import EpochRecord, FinetuneConfig, FinetuneResult, finetune_job
from gui.accuracy.curves import FinetuneCurves
from gui.accuracy.data_source import DataChoice, DataSourceBox
from gui.accuracy.evaluation_view import EvaluationView, percent
from gui.accuracy.finetune_form import FinetuneForm
from gui.session.controller import SessionController
from gui.session.measurements import evaluation_key
from gui.session.requests import Request
from gui.widgets.colormaps import ALARM_RGB, INK, MUTED, hex_color

SPLITS: tuple[tuple[str, str], ...] = (
    ("test", "Test"),
    ("val", "Validation"),
    ("train", "Train"),
)
LOAD_LABEL = "Load data"
EVALUATE_LABEL = "Evaluate"
#: Fine-tune jobs are labelled with the config's label, which starts with this.
FINETUNE_PREFIX = "Fine-tune"
SETTINGS_SPLIT = "accuracy/evaluate_split"
SETTINGS_FIDELITY = "accuracy/fidelity"


def finetune_summary(result: FinetuneResult) -> str:
    """One line on how a fine-tune ended, e.g.
    ``Fine-tuned 10 epochs · kept epoch 7 (best validation 97.9%)``."""
    done = [r for r in result.records if r.epoch >= 1]
    n = len(done)
    epochs = f"{n} epoch{'s' if n != 1 else ''}"
    chosen = next((r for r in done if r.epoch == result.chosen_epoch), None)
    best = max((r.val_top1 for r in done if r.val_top1 is not None), default=None)
    if result.cancelled:
        head = f"Cancelled after {epochs}"
    elif result.stopped_early:
        head = f"Stopped early after {epochs} (validation stopped improving)"
    else:
        head = f"Fine-tuned {epochs}"
    if result.entry is None or result.chosen_epoch <= 0:
        if result.cancelled:
            return f"{head} · the model is as it was before the run"
        start = result.baseline
        baseline = (
            f" ({percent(start.val_top1)})" if start is not None and _finite(start.val_top1) else ""
        )
        return f"{head} · no epoch beat the starting validation score{baseline}: model unchanged"
    if chosen is None:
        return f"{head} · kept epoch {result.chosen_epoch}"
    if _finite(chosen.val_top1):
        is_best = best is not None and chosen.val_top1 == best
        what = "best validation" if is_best else "validation"
        return f"{head} · kept epoch {chosen.epoch} ({what} {percent(chosen.val_top1)})"
    if _finite(chosen.val_loss):
        return f"{head} · kept epoch {chosen.epoch} (validation loss {chosen.val_loss:.4g})"
    return f"{head} · kept epoch {chosen.epoch}"


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class _Page(QWidget):
    """A page in a scroll area that scrolls only below its minimum height.

    A resizable :class:`QScrollArea` makes a widget with word-wrapped labels as tall
    as its *preferred* height for the width (``heightForWidth``), which would push
    the curves and tables off screen on a laptop; this page asks for its minimum.
    """

    def heightForWidth(self, width: int) -> int:
        return self.minimumSizeHint().height()


def _scroll(widget: QWidget, parent: QWidget) -> QScrollArea:
    area = QScrollArea(parent)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


class AccuracyPanel(QWidget):
    """Data, evaluation and fine-tuning for the controller's session (module docstring).

    Signals:
        data_loaded(dataset): data was loaded and fits the model.
        evaluated(evaluation): an evaluation finished (and was stored in the history).
        finetuned(result): a fine-tune ended (finished, stopped early or cancelled).
    """

    data_loaded = Signal(object)
    evaluated = Signal(object)
    finetuned = Signal(object)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = QSettings()
        self._data: Dataset | None = None
        self._data_choice: DataChoice | None = None
        self._running = ""  # the label of our job, submitted and not finished ("" none)
        self._request: Request | None = None  # that job
        self._shown_at: dict[str, Any] | None = None  # measurements the view's result is from
        self._build()
        self._connect()
        self._on_model_loaded()

    # -- construction ------------------------------------------------------------------
    def _build(self) -> None:
        self.source = DataSourceBox(self, self.settings)
        data_box = QGroupBox("Data", self)
        data_layout = QVBoxLayout(data_box)
        data_layout.setContentsMargins(8, 6, 8, 6)
        data_layout.addWidget(self.source)

        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(_scroll(self._build_evaluate_page(), self), "Evaluate")
        self.tabs.addTab(_scroll(self._build_finetune_page(), self), "Fine-tune")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(data_box)
        layout.addWidget(self.tabs, 1)

    def _build_evaluate_page(self) -> QWidget:
        page = _Page(self)
        self.split_combo = QComboBox(page)
        for split, text in SPLITS:
            self.split_combo.addItem(text, split)
        self.split_combo.setToolTip(
            "Which split to evaluate on: report accuracy on test; validation is what "
            "fine-tuning chooses on"
        )
        split = self.settings.value(SETTINGS_SPLIT)
        if isinstance(split, str) and self.split_combo.findData(split) >= 0:
            self.split_combo.setCurrentIndex(self.split_combo.findData(split))
        self.fidelity_check = QCheckBox("Fidelity", page)
        self.fidelity_check.setToolTip(
            "Also run the unpruned model (a copy) and count how often both predict the same "
            "class; needs no labels, costs a second forward pass"
        )
        self.fidelity_check.setChecked(
            str(self.settings.value(SETTINGS_FIDELITY, "true")) != "false"
        )
        self.evaluate_button = QPushButton("Evaluate", page)
        self.evaluate_button.setToolTip(
            "Measure loss, top-1/top-5, per-class accuracy and the confusion matrix of the "
            "model as pruned now; the result is kept with this history step"
        )
        self.evaluate_cancel = QPushButton("Cancel", page)
        self.evaluate_cancel.setToolTip("Stop the evaluation (nothing is changed)")
        self.evaluate_progress = QProgressBar(page)
        self.evaluate_progress.setRange(0, 1000)
        self.evaluate_progress.setTextVisible(False)
        self.evaluate_progress.setMaximumWidth(200)
        self.evaluate_progress.hide()
        self.evaluate_status = QLabel(page)
        self.evaluate_status.setWordWrap(True)
        self.evaluate_status.setObjectName("evaluateStatus")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Split", page))
        row.addWidget(self.split_combo)
        row.addWidget(self.fidelity_check)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.evaluate_cancel)
        row.addWidget(self.evaluate_progress)
        row.addStretch(1)
        self.view = EvaluationView(page)
        self.view.setMinimumHeight(360)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.evaluate_status)
        layout.addWidget(self.view, 1)
        return page

    def _build_finetune_page(self) -> QWidget:
        page = _Page(self)
        self.form = FinetuneForm(page, self.settings)
        self.finetune_button = QPushButton("Fine-tune", page)
        self.finetune_button.setToolTip(
            "Train the kept weights on the training split with the masks held (pruned weights "
            "stay exactly zero); the whole run is one step in the history (undo restores the "
            "weights exactly)"
        )
        self.finetune_cancel = QPushButton("Cancel", page)
        self.finetune_cancel.setToolTip(
            "Stop the run; what happens is chosen under 'When cancelled'"
        )
        self.finetune_progress = QProgressBar(page)
        self.finetune_progress.setRange(0, 1000)
        self.finetune_progress.setTextVisible(False)
        self.finetune_progress.setMaximumWidth(200)
        self.finetune_progress.hide()
        self.finetune_status = QLabel(page)
        self.finetune_status.setWordWrap(True)
        self.finetune_status.setObjectName("finetuneStatus")
        self.finetune_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.finetune_notes = QLabel(page)
        self.finetune_notes.setWordWrap(True)
        self.finetune_notes.setStyleSheet(f"color: {MUTED};")
        self.finetune_notes.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.finetune_button)
        row.addWidget(self.finetune_cancel)
        row.addWidget(self.finetune_progress)
        row.addStretch(1)
        row.addWidget(self.form.defaults_button)
        self.curves = FinetuneCurves(page)
        self.curves.setMinimumHeight(170)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(self.form)
        layout.addLayout(row)
        layout.addWidget(self.finetune_status)
        layout.addWidget(self.finetune_notes)
        layout.addWidget(self.curves, 1)
        return page

    def _connect(self) -> None:
        c = self.controller
        c.model_loaded.connect(self._on_model_loaded)
        c.history_changed.connect(self._sync_to_history)
        c.busy_changed.connect(lambda _busy: self._update_enabled())
        self.source.changed.connect(self._on_source_changed)
        self.source.load_requested.connect(self.load_data)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.finetune_button.clicked.connect(self.finetune)
        self.evaluate_cancel.clicked.connect(self.cancel)
        self.finetune_cancel.clicked.connect(self.cancel)
        self.split_combo.currentIndexChanged.connect(self._on_split)
        self.fidelity_check.toggled.connect(
            lambda on: self.settings.setValue(SETTINGS_FIDELITY, "true" if on else "false")
        )

    # -- public API -----------------------------------------------------------------------
    @property
    def data(self) -> Dataset | None:
        """The loaded data (None until loaded, or after the choice changed)."""
        return self._data

    @property
    def running(self) -> str:
        """The label of this panel's job that is queued or running ('' when none)."""
        return self._running

    @property
    def job(self) -> Request | None:
        """The request of this panel's job, queued or running (None when none)."""
        return self._request

    def split(self) -> str:
        """The split chosen for evaluation."""
        return str(self.split_combo.currentData())

    def set_split(self, split: str) -> None:
        """Choose the split to evaluate on (``test``, ``val`` or ``train``)."""
        index = self.split_combo.findData(split)
        if index < 0:
            raise ValueError(f"no split {split!r}")
        self.split_combo.setCurrentIndex(index)

    def load_data(self) -> bool:
        """Load the chosen data and check it against the model, in a worker."""
        return self._load(self.source.choice())

    def evaluate(self) -> bool:
        """Evaluate the model on the chosen split (loading the data first if needed)."""
        if not self._can_start():
            return False
        return self._with_data(self._start_evaluation)

    def finetune(self) -> bool:
        """Fine-tune with the form's settings (loading the data first if needed).

        Returns False (and says why in the form) when a setting is invalid.
        """
        if not self._can_start():
            return False
        try:
            config = self.form.config()
        except PruningError:
            return False
        return self._with_data(lambda data: self._start_finetune(data, config))

    def cancel(self) -> None:
        """Cancel this panel's running job (the controller's Cancel does the same)."""
        if self._request is not None:
            self._request.cancel()

    # -- data -----------------------------------------------------------------------------
    def _input_shape(self) -> tuple[int, ...] | None:
        loaded = self.controller.loaded
        if loaded is None or loaded.example_input is None:
            return None
        return tuple(int(d) for d in loaded.example_input.shape[1:])

    def _with_data(self, then: Callable[[Dataset], None]) -> bool:
        choice = self.source.choice()
        if self._data is not None and self._data_choice == choice:
            then(self._data)
            return True
        return self._load(choice, then)

    def _load(self, choice: DataChoice, then: Callable[[Dataset], None] | None = None) -> bool:
        session = self.controller.session
        if session is None or not choice.ready:
            self.source.show_error("Choose the data first." if session else "Open a model first.")
            return False
        if not self._can_start():
            return False
        input_shape = self._input_shape()

        def job(token: CancelToken) -> Job[Dataset]:
            data = yield from load_data_job(
                choice.spec,
                val_fraction=choice.val_fraction,
                test_fraction=choice.test_fraction,
                seed=choice.seed,
                input_shape=input_shape,
                token=token,
            )
            yield Progress(1.0, "checking the data against the model")
            check_data(session.model, data)
            return data

        def loaded(data: Dataset) -> None:
            self._data, self._data_choice = data, choice
            self.source.show_loaded(data.description, tuple(getattr(data, "notes", ())))
            self._offer_splits(data)
            self.data_loaded.emit(data)
            if then is not None and self.controller.session is session:
                then(data)

        def failed(exc: BaseException) -> None:
            self._data = None
            self.source.show_error(str(exc) or type(exc).__name__)

        name = "digits" if choice.kind == "digits" else Path(choice.spec).name or choice.spec
        self.source.show_pending(f"Loading {name}…")
        return self._submit(f"{LOAD_LABEL} {name}", job, loaded, failed)

    def _offer_splits(self, data: Dataset) -> None:
        model = self.split_combo.model()
        have = data.splits()
        for row in range(self.split_combo.count()):
            split = str(self.split_combo.itemData(row))
            item = model.item(row)  # type: ignore[attr-defined]
            item.setEnabled(split in have)
            item.setToolTip("" if split in have else f"{data.name} has no {split} split")
        if self.split() not in have and have:
            self.set_split("test" if "test" in have else have[-1])

    def _on_source_changed(self, choice: DataChoice) -> None:
        if self._data is not None and self._data_choice == choice:
            return
        self._data = None
        if self._running.startswith(LOAD_LABEL):
            return
        if choice.ready:
            self.source.show_pending("Loaded when you evaluate or fine-tune, or press Load.")
        else:
            self.source.show_pending("")
        self._update_enabled()

    # -- evaluation ------------------------------------------------------------------------
    def _start_evaluation(self, data: Dataset) -> None:
        session = self.controller.session
        if session is None:
            return
        split = self.split()
        if split not in data.splits():
            self._set_evaluate_status(f"{data.name} has no {split} split.", error=True)
            return
        fidelity = self.fidelity_check.isChecked()

        def job(token: CancelToken) -> Job[Evaluation]:
            return (
                yield from evaluate_session_job(
                    session, data, split, fidelity=fidelity, token=token
                )
            )

        def done(evaluation: Evaluation) -> None:
            self.controller.record_measurement(evaluation_key(split), evaluation.to_dict())
            self._show_evaluation(evaluation, self._step_text())
            self._set_evaluate_status("")
            self.evaluated.emit(evaluation)

        def failed(exc: BaseException) -> None:
            self._set_evaluate_status(str(exc) or type(exc).__name__, error=True)

        self._set_evaluate_status(f"Evaluating on {split}…")
        self._submit(f"{EVALUATE_LABEL} {split}", job, done, failed)

    def _show_evaluation(self, evaluation: Evaluation, where: str) -> None:
        session = self.controller.session
        self._shown_at = session.history.measurements() if session is not None else None
        data = self._data
        names = getattr(data, "class_names", None) if data is not None else None
        self.view.show_evaluation(evaluation, f"Measured at {where}", names)

    def _step_text(self, cursor: int | None = None) -> str:
        session = self.controller.session
        if session is None:
            return ""
        history = session.history
        at = history.cursor if cursor is None else cursor
        if at == 0:
            return f"the start ({history.start_label})"
        return f"step {at}: {history.entries[at - 1].label}"

    def _sync_to_history(self) -> None:
        """Show what was measured at the current history step, or mark the result stale."""
        session = self.controller.session
        if session is None:
            return
        measurements = session.history.measurements()
        if measurements is self._shown_at:
            return
        stored = measurements.get(evaluation_key(self.split()))
        if isinstance(stored, dict):
            try:
                evaluation = Evaluation.from_dict(stored)
            except (KeyError, TypeError, ValueError):
                evaluation = None
            if evaluation is not None:
                self._show_evaluation(evaluation, self._step_text())
                return
        if self.view.evaluation is not None:
            self.view.set_note(
                f"{self.view.where.text()} — the model has changed since: Evaluate again "
                "to measure this step",
                stale=True,
            )
            self._shown_at = measurements

    def _on_split(self) -> None:
        self.settings.setValue(SETTINGS_SPLIT, self.split())
        self._shown_at = None
        self._sync_to_history()

    def _set_evaluate_status(self, text: str, error: bool = False) -> None:
        color = hex_color(ALARM_RGB) if error else MUTED
        self.evaluate_status.setStyleSheet(f"color: {color};")
        self.evaluate_status.setText(text)
        self.evaluate_status.setVisible(bool(text))

    # -- fine-tuning -----------------------------------------------------------------------
    def _start_finetune(self, data: Dataset, config: FinetuneConfig) -> None:
        session = self.controller.session
        if session is None:
            return
        if "train" not in data.splits():
            self._set_finetune_status(f"{data.name} has no train split to fine-tune on.", True)
            return

        def job(token: CancelToken) -> Job[FinetuneResult]:
            return (yield from finetune_job(session, data, config, token))

        def done(result: FinetuneResult) -> None:
            self.curves.mark_chosen(result.chosen_epoch if result.entry is not None else 0)
            self._set_finetune_status(finetune_summary(result), notes=result.notes)
            self.finetuned.emit(result)

        def failed(exc: BaseException) -> None:
            self._set_finetune_status(str(exc) or type(exc).__name__, error=True)

        self.curves.clear(config.epochs, distilled=config.distill)
        self._set_finetune_status(f"{config.label}: starting…")
        self._submit(config.label, job, done, failed, mutating=True)

    def _on_detail(self, detail: object) -> None:
        if not self._running.startswith(FINETUNE_PREFIX) or not isinstance(detail, EpochRecord):
            return
        self.curves.add(detail)
        if detail.epoch >= 1:
            parts = [f"epoch {detail.epoch}", f"train loss {detail.train_loss:.4g}"]
            if _finite(detail.val_loss):
                parts.append(f"validation loss {detail.val_loss:.4g}")
            if _finite(detail.val_top1):
                parts.append(f"validation {percent(detail.val_top1)}")
            self._set_finetune_status(" · ".join(parts))

    def _set_finetune_status(
        self, text: str, error: bool = False, notes: tuple[str, ...] = ()
    ) -> None:
        color = hex_color(ALARM_RGB) if error else INK
        self.finetune_status.setStyleSheet(f"color: {color};")
        self.finetune_status.setText(text)
        self.finetune_notes.setText(" · ".join(notes))
        self.finetune_notes.setVisible(bool(notes))

    def finetune_text(self) -> str:
        """The line under the Fine-tune button (progress, then how the run ended)."""
        return self.finetune_status.text()

    def evaluate_text(self) -> str:
        """The line under the Evaluate button (progress, the summary, or an error)."""
        return self.evaluate_status.text()

    # -- jobs and state ---------------------------------------------------------------------
    def _submit(
        self,
        label: str,
        job: Callable[[CancelToken], Job[Any]],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        mutating: bool = False,
    ) -> bool:
        """Queue our job; a :class:`PruningError` is ours to show, others get the dialog too."""
        self._running = label
        self._progress_bar().setValue(0)
        self._progress_bar().show()
        request = self._request = self.controller.submit(
            label, job, mutating=mutating, silent_errors=(PruningError,)
        )
        request.started.connect(self._update_enabled)
        request.progress.connect(self._on_progress)
        request.detail.connect(self._on_detail)
        request.finished.connect(on_result)
        request.failed.connect(on_error)
        request.cancelled.connect(lambda: self._on_cancelled(label))
        request.ended.connect(lambda _state: self._on_finished(request))
        self._update_enabled()
        return True

    def _progress_bar(self) -> QProgressBar:
        if self._running.startswith(FINETUNE_PREFIX):
            return self.finetune_progress
        return self.evaluate_progress

    def _can_start(self) -> bool:
        return self.controller.session is not None and not self._running

    def _on_progress(self, fraction: float, message: str) -> None:
        self._progress_bar().setValue(int(fraction * 1000))
        if self._running.startswith(FINETUNE_PREFIX) and not self.curves.records:
            self._set_finetune_status(message)

    def _on_cancelled(self, label: str) -> None:
        if label != self._running:
            return
        if label.startswith(FINETUNE_PREFIX):
            self._set_finetune_status("Cancelled: the model is as it was before the run.")
        elif label.startswith(EVALUATE_LABEL):
            self._set_evaluate_status("Evaluation cancelled.")
        else:
            self.source.show_pending("Loading cancelled.")

    def _on_finished(self, request: Request) -> None:
        if request is self._request:  # after its result or error was shown
            bar = self._progress_bar()
            self._running, self._request = "", None
            bar.setValue(0)
            bar.hide()
        self._update_enabled()

    def _on_model_loaded(self) -> None:
        """A new model: forget data and results; the digits demos get the digits."""
        self._data, self._data_choice, self._running = None, None, ""
        self._request = None
        self._shown_at = None
        self.view.clear("Evaluate to measure the model as pruned now.")
        self.curves.clear()
        for bar in (self.evaluate_progress, self.finetune_progress):
            bar.hide()
        self._set_evaluate_status("")
        self._set_finetune_status("")
        loaded = self.controller.loaded
        if loaded is not None and loaded.data is not None:  # a digits demo: its own data
            if self.source.choice().kind != "digits":
                self.source.set_choice(replace(self.source.choice(), kind="digits"), False)
            self.load_data()  # instant, and shows at once whether it fits
        else:  # the user's model: the user's last choice
            if self.source.choice() != self.source.remembered():
                self.source.set_choice(self.source.remembered(), False)
            self._on_source_changed(self.source.choice())
        self._update_enabled()

    def _update_enabled(self) -> None:
        has_model = self.controller.session is not None
        idle = has_model and not self.controller.busy and not self._running
        ready = self.source.choice().ready
        ours = self._request is not None and self._request.running
        self.evaluate_button.setEnabled(idle and ready)
        self.finetune_button.setEnabled(idle and ready)
        self.source.load_button.setEnabled(idle and ready)
        self.evaluate_cancel.setEnabled(ours and not self._running.startswith(FINETUNE_PREFIX))
        self.finetune_cancel.setEnabled(ours and self._running.startswith(FINETUNE_PREFIX))
        why = "" if has_model else "Open a model first"
        if has_model and not ready:
            why = "Choose the data first"
        elif has_model and not idle:
            why = "Wait for the running job to finish"
        for button in (self.evaluate_button, self.finetune_button):
            button.setStatusTip(why)
