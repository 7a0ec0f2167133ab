"""One kind of job a panel runs, followed from the queue to its end.

:class:`TrackedJob` submits a panel's job (through
:meth:`SessionController.submit` when a model is loaded, else through a
:class:`~gui.session.requests.RequestQueue` of its own, for work that needs no
session) and turns its :class:`~gui.session.requests.Request` into the panel's
signals: started, progress and ``detail`` while it runs, then ``ended`` with
how it ended. Its :meth:`cancel` cancels only its own job, also while it still
waits in the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, Signal, SignalInstance

from gui.session.requests import MakeJob, Request, RequestQueue, RequestState

if TYPE_CHECKING:
    from gui.session.controller import SessionController

#: How a job ended, as ``ended`` says it.
OUTCOMES = {
    RequestState.FINISHED: "done",
    RequestState.FAILED: "failed",
    RequestState.CANCELLED: "cancelled",
}


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
        self._own: RequestQueue | None = None
        self._request: Request | None = None

    # -- state --------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the job waits in the queue or runs."""
        return self._request is not None

    @property
    def running(self) -> bool:
        """Whether the job runs now (it left the queue)."""
        return self._request is not None and self._request.running

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
        if self._request is not None:
            return False
        controller = self.controller
        if controller is not None and controller.session is not None:
            request = controller.submit(
                self.label, make_job, mutating=mutating, silent_errors=(Exception,)
            )
        elif mutating:
            raise RuntimeError("no model is loaded")
        else:
            if self._own is None:
                self._own = RequestQueue(self)
            request = self._own.submit(Request(self.label, make_job, silent_errors=(Exception,)))
        if request.done:  # it could not even start (the job failed to build)
            self._deliver(request, on_result, on_error)
            return True
        self._request = request
        request.started.connect(self._forward(self.started))
        request.progress.connect(self._forward(self.progress))
        request.detail.connect(self._forward(self.detail))
        request.ended.connect(lambda _state: self._deliver(request, on_result, on_error))
        return True

    def cancel(self) -> None:
        """Stop the job: at its next check when running, before it starts when queued."""
        if self._request is not None:
            self._request.cancel()

    # -- the request's end ------------------------------------------------------------------
    def _alive(self) -> bool:
        return shiboken6.isValid(self)

    def _forward(self, signal: SignalInstance) -> Callable[..., None]:
        """A slot re-emitting on ``signal`` while the panel lives (it may go away meanwhile)."""

        def forward(*args: object) -> None:
            if self._alive():
                signal.emit(*args)

        return forward

    def _deliver(
        self,
        request: Request,
        on_result: Callable[[Any], None] | None,
        on_error: Callable[[BaseException], None] | None,
    ) -> None:
        if not self._alive():  # the panel went away while the job ran
            return
        self._request = None
        if request.state is RequestState.FINISHED and on_result is not None:
            on_result(request.result)
        elif request.state is RequestState.FAILED and on_error is not None:
            assert request.error is not None
            on_error(request.error)
        self.ended.emit(OUTCOMES[request.state])
