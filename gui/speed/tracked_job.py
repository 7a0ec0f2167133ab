"""One kind of job a panel runs, followed from the queue to its end.

The controller runs one job at a time and queues the rest; its runner's
signals speak for whatever job is running. :class:`TrackedJob` submits a
panel's job (through :meth:`SessionController.submit` when a model is loaded,
else through a runner of its own, for work that needs no session) and turns
the runner's signals into the panel's own: started, progress and ``detail``
only while *its* job runs, then ``ended`` with how it ended. Its
:meth:`cancel` cancels only its own job, also while it still waits in the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, Signal

from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, Job
from gui.session.jobs import JobRunner

if TYPE_CHECKING:
    from gui.session.controller import SessionController

MakeJob = Callable[[CancelToken], Job[Any]]


class TrackedJob(QObject):
    """Runs one labelled job at a time for a panel and reports only on it.

    Signals:
        started(): the job left the queue and runs now.
        progress(fraction, message): it reported progress.
        detail(object): it reported a result so far (``Progress.detail``).
        ended(outcome): it ended: ``"done"``, ``"failed"`` or ``"cancelled"``.
    """

    started = Signal()
    progress = Signal(float, str)
    detail = Signal(object)
    ended = Signal(str)

    def __init__(
        self, label: str, controller: SessionController | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.label = label
        self.controller = controller
        self._own: JobRunner | None = None
        self._runner: JobRunner | None = None  # the runner our job was given to
        self._active = False  # queued or running
        self._running = False
        self._cancel_requested = False
        self._outcome = ""
        if controller is not None:
            self._watch(controller.runner)
            controller.model_loaded.connect(self._drop_queued)

    # -- state --------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the job waits in the queue or runs."""
        return self._active

    @property
    def running(self) -> bool:
        """Whether the job runs now (it left the queue)."""
        return self._running

    # -- commands -----------------------------------------------------------------------
    def start(
        self,
        make_job: MakeJob,
        on_result: Callable[[Any], None] | None = None,
        *,
        mutating: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> bool:
        """Queue ``make_job`` (False when this job is already queued or running).

        ``on_result(result)`` runs on success; ``on_error(exc)`` on failure (the
        error is then the panel's to show: no dialog). ``mutating`` jobs change
        the session (see :meth:`SessionController.submit`); they need a model.
        """
        if self._active:
            return False
        self._active, self._running, self._cancel_requested, self._outcome = True, False, False, ""

        def make(token: CancelToken) -> Job[Any]:
            if self._cancel_requested:  # cancelled while queued: end at once
                raise JobCancelled("cancelled by the user")
            return (yield from make_job(token))

        def result(value: Any) -> None:
            if not shiboken6.isValid(self):  # the panel went away while the job ran
                return
            self._outcome = "done"
            if on_result is not None:
                on_result(value)

        def error(exc: BaseException) -> bool:
            if not shiboken6.isValid(self):
                return True
            self._outcome = "failed"
            if on_error is not None:
                on_error(exc)
            return True

        controller = self.controller
        if controller is not None and controller.session is not None:
            self._runner = controller.runner
            controller.submit(self.label, make, result, mutating=mutating, on_error=error)
        else:
            if mutating:
                self._active = False
                raise RuntimeError("no model is loaded")
            runner = self._own_runner()
            self._runner = runner
            if not runner.run(self.label, make, result, error):  # pragma: no cover - guarded
                self._active = False
                return False
        return True

    def cancel(self) -> None:
        """Stop the job: at its next check when running, before it starts when queued."""
        if not self._active:
            return
        self._cancel_requested = True
        runner = self._runner
        if self._running and runner is not None and runner.label == self.label:
            runner.cancel()

    # -- runner signals ----------------------------------------------------------------------
    def _own_runner(self) -> JobRunner:
        if self._own is None:
            self._own = JobRunner(self)
            self._watch(self._own)
        return self._own

    def _watch(self, runner: JobRunner) -> None:
        runner.started.connect(lambda label, r=runner: self._on_started(r, label))
        runner.progress.connect(lambda f, m, r=runner: self._mine(r) and self.progress.emit(f, m))
        runner.detail.connect(lambda d, r=runner: self._mine(r) and self.detail.emit(d))
        runner.finished.connect(lambda label, r=runner: self._on_finished(r, label))

    def _mine(self, runner: JobRunner) -> bool:
        return shiboken6.isValid(self) and self._running and runner is self._runner

    def _on_started(self, runner: JobRunner, label: str) -> None:
        if not shiboken6.isValid(self):
            return
        if self._active and not self._running and runner is self._runner and label == self.label:
            self._running = True
            self.started.emit()

    def _drop_queued(self) -> None:
        """A new model cleared the controller's queue: a job still waiting there is gone."""
        if not shiboken6.isValid(self):
            return
        if self._active and not self._running and self._runner is not self._own:
            self._active = False
            self._runner = None
            self.ended.emit("cancelled")

    def _on_finished(self, runner: JobRunner, label: str) -> None:
        if not shiboken6.isValid(self):
            return
        if not (self._running and runner is self._runner and label == self.label):
            return
        self._active = self._running = False
        self._runner = None
        self.ended.emit(self._outcome or "cancelled")
