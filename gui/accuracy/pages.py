"""The Accuracy tab's two pages, "Evaluate" and "Fine-tune", as widgets.

:class:`EvaluatePage` holds the split and fidelity choices, Evaluate / Cancel,
a progress bar, a status line and the :class:`~gui.accuracy.evaluation_view.EvaluationView`;
:class:`FinetunePage` holds the :class:`~gui.accuracy.finetune_form.FinetuneForm`,
Fine-tune / Cancel, a progress bar, the status line with its notes and the live
:class:`~gui.accuracy.curves.FinetuneCurves`. Both remember their choices in
:class:`QSettings`; running the jobs is the panel's. :func:`scrolled` puts a page
in the scroll area the tab shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.training.evaluate import Evaluation
from gui.accuracy.curves import FinetuneCurves
from gui.accuracy.evaluation_view import EvaluationView
from gui.accuracy.finetune_form import FinetuneForm
from gui.accuracy.finetune_text import epoch_text, finetune_summary
from gui.session.measurements import evaluation_key
from gui.widgets.colormaps import ALARM_RGB, INK, MUTED, hex_color

if TYPE_CHECKING:
    from core.pruning.session import PruningSession
    from core.training.data import Dataset
    from core.training.finetune import EpochRecord, FinetuneConfig, FinetuneResult

SPLITS: tuple[tuple[str, str], ...] = (
    ("test", "Test"),
    ("val", "Validation"),
    ("train", "Train"),
)
SETTINGS_SPLIT = "accuracy/evaluate_split"
SETTINGS_FIDELITY = "accuracy/fidelity"


class ScrollPage(QWidget):
    """A page in a scroll area that scrolls only below its minimum height.

    A resizable :class:`QScrollArea` makes a widget with word-wrapped labels as tall
    as its *preferred* height for the width (``heightForWidth``), which would push
    the curves and tables off screen on a laptop; this page asks for its minimum.
    """

    def heightForWidth(self, width: int) -> int:
        return self.minimumSizeHint().height()


def scrolled(widget: QWidget, parent: QWidget) -> QScrollArea:
    """``widget`` in a frameless, resizable scroll area (a child of ``parent``)."""
    area = QScrollArea(parent)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def _hidden_progress_bar(parent: QWidget) -> QProgressBar:
    """A slim progress bar without text, hidden until a job runs."""
    bar = QProgressBar(parent)
    bar.setRange(0, 1000)
    bar.setTextVisible(False)
    bar.setMaximumWidth(200)
    bar.hide()
    return bar


class EvaluatePage(ScrollPage):
    """Split, fidelity, Evaluate / Cancel, progress, status and the evaluation view.

    An evaluation is shown with the history step it was measured at; when the
    history moves, :meth:`sync_to_history` shows what was measured at the new step
    (stored in the history's measurements), or marks the result shown as stale.

    Args:
        settings: where the split and the fidelity choice are remembered.
        parent: the Qt parent.
    """

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._shown_at: dict[str, Any] | None = None  # measurements the view's result is from
        self.split_combo = QComboBox(self)
        for split, text in SPLITS:
            self.split_combo.addItem(text, split)
        self.split_combo.setToolTip(
            "Which split to evaluate on: report accuracy on test; validation is what "
            "fine-tuning chooses on"
        )
        split = self.settings.value(SETTINGS_SPLIT)
        if isinstance(split, str) and self.split_combo.findData(split) >= 0:
            self.split_combo.setCurrentIndex(self.split_combo.findData(split))
        self.fidelity_check = QCheckBox("Fidelity", self)
        self.fidelity_check.setToolTip(
            "Also run the unpruned model (a copy) and count how often both predict the same "
            "class; needs no labels, costs a second forward pass"
        )
        self.fidelity_check.setChecked(
            str(self.settings.value(SETTINGS_FIDELITY, "true")) != "false"
        )
        self.evaluate_button = QPushButton("Evaluate", self)
        self.evaluate_button.setToolTip(
            "Measure loss, top-1/top-5, per-class accuracy and the confusion matrix of the "
            "model as pruned now; the result is kept with this history step"
        )
        self.evaluate_cancel = QPushButton("Cancel", self)
        self.evaluate_cancel.setToolTip("Stop the evaluation (nothing is changed)")
        self.evaluate_progress = _hidden_progress_bar(self)
        self.evaluate_status = QLabel(self)
        self.evaluate_status.setWordWrap(True)
        self.evaluate_status.setObjectName("evaluateStatus")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Split", self))
        row.addWidget(self.split_combo)
        row.addWidget(self.fidelity_check)
        row.addWidget(self.evaluate_button)
        row.addWidget(self.evaluate_cancel)
        row.addWidget(self.evaluate_progress)
        row.addStretch(1)
        self.view = EvaluationView(self)
        self.view.setMinimumHeight(360)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.evaluate_status)
        layout.addWidget(self.view, 1)
        self.split_combo.currentIndexChanged.connect(
            lambda _index: self.settings.setValue(SETTINGS_SPLIT, self.split())
        )
        self.fidelity_check.toggled.connect(
            lambda on: self.settings.setValue(SETTINGS_FIDELITY, "true" if on else "false")
        )

    def split(self) -> str:
        """The split chosen for evaluation."""
        return str(self.split_combo.currentData())

    def set_split(self, split: str) -> None:
        """Choose the split to evaluate on (``test``, ``val`` or ``train``)."""
        index = self.split_combo.findData(split)
        if index < 0:
            raise ValueError(f"no split {split!r}")
        self.split_combo.setCurrentIndex(index)

    def offer_splits(self, data: Dataset) -> None:
        """Enable only the splits ``data`` has, and choose one of them."""
        model = self.split_combo.model()
        have = data.splits()
        for row in range(self.split_combo.count()):
            split = str(self.split_combo.itemData(row))
            item = model.item(row)  # type: ignore[attr-defined]
            item.setEnabled(split in have)
            item.setToolTip("" if split in have else f"{data.name} has no {split} split")
        if self.split() not in have and have:
            self.set_split("test" if "test" in have else have[-1])

    def set_status(self, text: str, error: bool = False) -> None:
        """Show ``text`` under the Evaluate button (red for an error; hidden when empty)."""
        color = hex_color(ALARM_RGB) if error else MUTED
        self.evaluate_status.setStyleSheet(f"color: {color};")
        self.evaluate_status.setText(text)
        self.evaluate_status.setVisible(bool(text))

    def show_evaluation(
        self,
        evaluation: Evaluation,
        session: PruningSession | None,
        names: Sequence[str] | None,
    ) -> None:
        """Show ``evaluation`` as measured at ``session``'s current history step.

        ``names`` are the data's class names (None: class indices).
        """
        self._shown_at = session.history.measurements() if session is not None else None
        self.view.show_evaluation(evaluation, f"Measured at {step_text(session)}", names)

    def sync_to_history(self, session: PruningSession | None, names: Sequence[str] | None) -> None:
        """Show what was measured at the current history step, or mark the result stale."""
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
                self.show_evaluation(evaluation, session, names)
                return
        if self.view.evaluation is not None:
            self.view.set_note(
                f"{self.view.where.text()} — the model has changed since: Evaluate again "
                "to measure this step",
                stale=True,
            )
            self._shown_at = measurements

    def forget_shown(self) -> None:
        """Forget which step the result shown is from (the next sync looks again)."""
        self._shown_at = None

    def clear(self, message: str) -> None:
        """No result: ``message`` in the view instead."""
        self._shown_at = None
        self.view.clear(message)


def step_text(session: PruningSession | None) -> str:
    """Where ``session``'s history stands: ``the start (…)`` or ``step 3: <label>``."""
    if session is None:
        return ""
    history = session.history
    at = history.cursor
    if at == 0:
        return f"the start ({history.start_label})"
    return f"step {at}: {history.entries[at - 1].label}"


class FinetunePage(ScrollPage):
    """The fine-tune form, Fine-tune / Cancel, progress, status and the live curves.

    Args:
        settings: where the form remembers its settings.
        parent: the Qt parent.
    """

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = FinetuneForm(self, settings)
        self.finetune_button = QPushButton("Fine-tune", self)
        self.finetune_button.setToolTip(
            "Train the kept weights on the training split with the masks held (pruned weights "
            "stay exactly zero); the whole run is one step in the history (undo restores the "
            "weights exactly)"
        )
        self.finetune_cancel = QPushButton("Cancel", self)
        self.finetune_cancel.setToolTip(
            "Stop the run; what happens is chosen under 'When cancelled'"
        )
        self.finetune_progress = _hidden_progress_bar(self)
        self.finetune_status = QLabel(self)
        self.finetune_status.setWordWrap(True)
        self.finetune_status.setObjectName("finetuneStatus")
        self.finetune_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.finetune_notes = QLabel(self)
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
        self.curves = FinetuneCurves(self)
        self.curves.setMinimumHeight(170)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(self.form)
        layout.addLayout(row)
        layout.addWidget(self.finetune_status)
        layout.addWidget(self.finetune_notes)
        layout.addWidget(self.curves, 1)

    def set_status(self, text: str, error: bool = False, notes: tuple[str, ...] = ()) -> None:
        """Show ``text`` under the Fine-tune button (red for an error) and ``notes`` below it."""
        color = hex_color(ALARM_RGB) if error else INK
        self.finetune_status.setStyleSheet(f"color: {color};")
        self.finetune_status.setText(text)
        self.finetune_notes.setText(" · ".join(notes))
        self.finetune_notes.setVisible(bool(notes))

    def show_start(self, config: FinetuneConfig) -> None:
        """Empty the curves for a run of ``config`` and say it is starting."""
        self.curves.clear(config.epochs, distilled=config.distill)
        self.set_status(f"{config.label}: starting…")

    def show_epoch(self, record: EpochRecord) -> None:
        """Add an epoch to the curves; after a training epoch, sum it up in the status."""
        self.curves.add(record)
        if record.epoch >= 1:
            self.set_status(epoch_text(record))

    def show_result(self, result: FinetuneResult) -> None:
        """Mark the epoch kept on the curves and say how the run ended."""
        self.curves.mark_chosen(result.chosen_epoch if result.entry is not None else 0)
        self.set_status(finetune_summary(result), notes=result.notes)
