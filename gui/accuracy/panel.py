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

The two pages are widgets of :mod:`gui.accuracy.pages`, and the fine-tune's
status lines come from :mod:`gui.accuracy.finetune_text`; this module runs the jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import QGroupBox, QProgressBar, QTabWidget, QVBoxLayout, QWidget

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.training.data import Dataset, check_data, load_data_job
from core.training.evaluate import Evaluation, evaluate_session_job
from core.training.finetune import EpochRecord, FinetuneConfig, FinetuneResult, finetune_job
from gui.accuracy.data_source import DataChoice, DataSourceBox
from gui.accuracy.pages import EvaluatePage, FinetunePage, scrolled
from gui.session.controller import SessionController
from gui.session.measurements import evaluation_key
from gui.session.requests import Request

LOAD_LABEL = "Load data"
EVALUATE_LABEL = "Evaluate"
#: Fine-tune jobs are labelled with the config's label, which starts with this.
FINETUNE_PREFIX = "Fine-tune"


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
        self.evaluate_page = EvaluatePage(self.settings, self)
        self.tabs.addTab(scrolled(self.evaluate_page, self), "Evaluate")
        self.finetune_page = FinetunePage(self.settings, self)
        self.tabs.addTab(scrolled(self.finetune_page, self), "Fine-tune")
        self._expose_pages()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(data_box)
        layout.addWidget(self.tabs, 1)

    def _expose_pages(self) -> None:
        """The pages' widgets as the panel's attributes (tests and scripts reach them so)."""
        e, f = self.evaluate_page, self.finetune_page
        self.split_combo, self.fidelity_check, self.view = e.split_combo, e.fidelity_check, e.view
        self.evaluate_button, self.evaluate_cancel = e.evaluate_button, e.evaluate_cancel
        self.evaluate_progress, self.evaluate_status = e.evaluate_progress, e.evaluate_status
        self.form, self.curves = f.form, f.curves
        self.finetune_button, self.finetune_cancel = f.finetune_button, f.finetune_cancel
        self.finetune_progress, self.finetune_status = f.finetune_progress, f.finetune_status
        self.finetune_notes = f.finetune_notes

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
        return self.evaluate_page.split()

    def set_split(self, split: str) -> None:
        """Choose the split to evaluate on (``test``, ``val`` or ``train``)."""
        self.evaluate_page.set_split(split)

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
            self.evaluate_page.offer_splits(data)
            self.data_loaded.emit(data)
            if then is not None and self.controller.session is session:
                then(data)

        def failed(exc: BaseException) -> None:
            self._data = None
            self.source.show_error(str(exc) or type(exc).__name__)

        name = "digits" if choice.kind == "digits" else Path(choice.spec).name or choice.spec
        self.source.show_pending(f"Loading {name}…")
        return self._submit(f"{LOAD_LABEL} {name}", job, loaded, failed)

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
            self.evaluate_page.set_status(f"{data.name} has no {split} split.", error=True)
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
            self.evaluate_page.show_evaluation(
                evaluation, self.controller.session, self._class_names()
            )
            self.evaluate_page.set_status("")
            self.evaluated.emit(evaluation)

        def failed(exc: BaseException) -> None:
            self.evaluate_page.set_status(str(exc) or type(exc).__name__, error=True)

        self.evaluate_page.set_status(f"Evaluating on {split}…")
        self._submit(f"{EVALUATE_LABEL} {split}", job, done, failed)

    def _class_names(self) -> Sequence[str] | None:
        data = self._data
        return getattr(data, "class_names", None) if data is not None else None

    def _sync_to_history(self) -> None:
        self.evaluate_page.sync_to_history(self.controller.session, self._class_names())

    def _on_split(self) -> None:
        self.evaluate_page.forget_shown()  # the page has remembered the split
        self._sync_to_history()

    # -- fine-tuning -----------------------------------------------------------------------
    def _start_finetune(self, data: Dataset, config: FinetuneConfig) -> None:
        session = self.controller.session
        if session is None:
            return
        if "train" not in data.splits():
            self.finetune_page.set_status(f"{data.name} has no train split to fine-tune on.", True)
            return

        def job(token: CancelToken) -> Job[FinetuneResult]:
            return (yield from finetune_job(session, data, config, token))

        def done(result: FinetuneResult) -> None:
            self.finetune_page.show_result(result)
            self.finetuned.emit(result)

        def failed(exc: BaseException) -> None:
            self.finetune_page.set_status(str(exc) or type(exc).__name__, error=True)

        self.finetune_page.show_start(config)
        self._submit(config.label, job, done, failed, mutating=True)

    def _on_detail(self, detail: object) -> None:
        if self._running.startswith(FINETUNE_PREFIX) and isinstance(detail, EpochRecord):
            self.finetune_page.show_epoch(detail)

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
            self.finetune_page.set_status(message)

    def _on_cancelled(self, label: str) -> None:
        if label != self._running:
            return
        if label.startswith(FINETUNE_PREFIX):
            self.finetune_page.set_status("Cancelled: the model is as it was before the run.")
        elif label.startswith(EVALUATE_LABEL):
            self.evaluate_page.set_status("Evaluation cancelled.")
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
        self.evaluate_page.clear("Evaluate to measure the model as pruned now.")
        self.curves.clear()
        for bar in (self.evaluate_progress, self.finetune_progress):
            bar.hide()
        self.evaluate_page.set_status("")
        self.finetune_page.set_status("")
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
