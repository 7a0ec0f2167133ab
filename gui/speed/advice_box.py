"""The Speed tab's "Before you measure" box: speed advice kept up to date.

:class:`SpeedAdviceBox` shows :func:`core.speed.advice.speed_advice` for the
device and first batch size chosen in the
:class:`~gui.speed.benchmark_settings.BenchmarkSettingsBox`, worked out in a job
(one at a time) through the controller. :meth:`SpeedAdviceBox.schedule` asks for
it again after :data:`ADVICE_DELAY_MS` of quiet; while the box is hidden (another
tab is shown) the request waits until it is shown again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QGroupBox, QVBoxLayout, QWidget

from core.common.jobs import CancelToken, Job, Progress
from core.speed.advice import speed_advice
from gui.speed.advice_view import AdviceView
from gui.speed.tracked_job import TrackedJob
from gui.widgets.forms import ERROR_STYLE, note_label

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.speed.advice import Advice
    from gui.session.controller import SessionController
    from gui.speed.benchmark_settings import BenchmarkSettingsBox

ADVICE_DELAY_MS = 300
"""Quiet time after a change before the advice is worked out again."""


class SpeedAdviceBox(QGroupBox):
    """Speed advice for the session's model at the chosen settings (see module docstring).

    Args:
        controller: the window's session controller (the advice job runs through it).
        settings_box: where the device and batch sizes are chosen.
        parent: the Qt parent.
    """

    def __init__(
        self,
        controller: SessionController,
        settings_box: BenchmarkSettingsBox,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Before you measure", parent)
        self.controller = controller
        self.settings_box = settings_box
        self.job = TrackedJob("Speed advice", controller, self)
        self._wanted = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(ADVICE_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.view = AdviceView(self)
        self.status = note_label("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(self.status)
        self.job.ended.connect(lambda _outcome: self._again_if_wanted())

    def refresh(self) -> bool:
        """Work out the speed advice for the current settings in a job (False if not possible)."""
        session = self.controller.session
        if session is None:
            return False
        if self.job.active:
            self._wanted = True  # once more when this one ends
            return False
        self._wanted = False
        device = self.settings_box.device()
        batch = self.settings_box.first_batch()

        def job(_token: CancelToken) -> Job[list[Advice]]:
            yield Progress(0.0, "working out speed advice")
            return speed_advice(session, device=device, batch_size=batch)

        self.status.setText("Working out advice…")
        return self.job.start(job, self._show, on_error=self._failed)

    def schedule(self) -> None:
        """Refresh the advice after a quiet moment; when hidden, once shown again."""
        if self.isVisible():
            self._timer.start()
        else:
            self._wanted = True

    def show_advice(self, advice: Sequence[Advice]) -> None:
        """Show ``advice`` as it is (e.g. the benchmark report's, or none)."""
        self.view.show_advice(advice)

    def _again_if_wanted(self) -> None:
        if self._wanted and self.isVisible():
            self.refresh()

    def _show(self, advice: list[Advice]) -> None:
        self.view.show_advice(
            advice, "Nothing to warn about: run the benchmark to see the real figures."
        )
        self.status.setText(
            f"For {self.settings_box.device()} at batch size "
            f"{self.settings_box.first_batch()}; refreshed as you prune."
        )

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"No advice: {exc}")
        self.status.setStyleSheet(ERROR_STYLE)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._wanted:
            self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if self._timer.isActive():
            self._timer.stop()
            self._wanted = True
