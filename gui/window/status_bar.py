"""The main window's status bar: a running job's progress and Cancel, sparsity, accuracy.

A job's progress bar and Cancel button appear only when it runs longer than
:data:`PROGRESS_DELAY_MS` (no flicker for quick ones); its progress messages
are shown meanwhile and cleared when the controller goes idle. The window
wires the controller's broadcasts to :class:`StatusItems`' slots.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from core.analysis.stats import ModelStats
from gui.session.controller import SessionController
from gui.session.requests import Request

#: Only jobs that run longer than this (ms) show the progress bar and Cancel.
PROGRESS_DELAY_MS = 250


class StatusItems(QObject):
    """The status bar's permanent widgets and the messages of running jobs.

    Attributes:
        progress: the running job's progress bar (0 to 1000).
        cancel_button: cancels the running job (:meth:`SessionController.cancel`).
        sparsity_label: the model's sparsity and compression.
        accuracy_label: the test accuracy at the current history step.
    """

    def __init__(self, status: QStatusBar, controller: SessionController) -> None:
        super().__init__(status)
        self.status = status
        self.controller = controller
        self._progress_message = ""  # last progress text, cleared when the job ends
        self.accuracy_label = QLabel(status)
        self.sparsity_label = QLabel(status)
        self.progress = QProgressBar(status)
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", status)
        self.cancel_button.setToolTip("Stop the running job; the model is left as it was")
        self.cancel_button.clicked.connect(controller.cancel)
        self.cancel_button.hide()
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        status.addPermanentWidget(self.sparsity_label)
        status.addPermanentWidget(self.accuracy_label)
        self._progress_delay = QTimer(self)
        self._progress_delay.setSingleShot(True)
        self._progress_delay.setInterval(PROGRESS_DELAY_MS)
        self._progress_delay.timeout.connect(self._show_progress)

    # -- slots the window wires ------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        """A job started (progress shows after the delay), or the last one ended."""
        if busy:
            self._progress_delay.start()
        else:
            self._progress_delay.stop()
            self.progress.hide()
            self.cancel_button.hide()
            if self.status.currentMessage() == self._progress_message:
                self.status.clearMessage()

    def show_progress(self, fraction: float, message: str) -> None:
        """The running job's progress: the bar's value, its label and message."""
        self.progress.setValue(int(fraction * 1000))
        running = self.controller.running
        label = running.label if running is not None else ""
        self._progress_message = f"{label}: {message}" if label else message
        self.status.showMessage(self._progress_message)

    def show_cancelled(self, request: Request) -> None:
        """Say that the user cancelled ``request``."""
        self.status.showMessage(f"{request.label}: cancelled", 4000)

    def show_stats(self, stats: ModelStats) -> None:
        """The model's sparsity and how much smaller it is."""
        self.sparsity_label.setText(
            f"Sparsity {stats.sparsity:.1%}  ·  {stats.compression:.2f}x smaller"
        )

    def show_accuracy(self, accuracy: float) -> None:
        """The test accuracy at this history step (NaN: not measured)."""
        if accuracy != accuracy:  # NaN: no evaluation data for this model
            self.accuracy_label.setText("Accuracy: not measured at this step")
        else:
            self.accuracy_label.setText(f"Test accuracy {accuracy:.1%}")

    def _show_progress(self) -> None:
        if self.controller.busy:
            self.progress.show()
            self.cancel_button.show()
