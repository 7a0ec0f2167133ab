"""Handles on work asked of the controller, and the queue that runs them.

Every call that starts work returns a :class:`Request` (napari's slicing
futures are the model): the caller listens to *its* ``finished``, ``failed``
and ``cancelled`` signals instead of filtering broadcasts by label or target
set, and :meth:`Request.cancel` stops only that piece of work.

:class:`RequestQueue` runs one request at a time in a
:class:`~gui.session.jobs.JobRunner` worker:

- **commands** (``kind == ""``: apply, undo, open, save, a panel's job) run in
  the order they were asked for, before anything else;
- otherwise the **latest request of each kind** runs, interactive kinds first
  (:data:`PRIORITY`: a layer read, then a preview, then a plan, then the
  statistics, then layer figures). A new request of a kind supersedes the one
  still waiting (and cancels a running one whose result would be thrown
  away, see :data:`CANCELS_RUNNING`): a superseded request ends ``cancelled``
  with :attr:`Request.superseded` set, so a result is delivered only when its
  request is the latest of its kind.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from enum import Enum
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from core.common.jobs import CancelToken, Job
from gui.session.jobs import JobRunner

MakeJob = Callable[[CancelToken], Job[Any]]

#: Kinds of superseding requests, most interactive first: the order they start in.
PRIORITY: tuple[str, ...] = ("layer", "preview", "plan", "refresh", "figures")
#: Kinds whose running request a newer one cancels (its result would be thrown away).
CANCELS_RUNNING = frozenset({"layer", "preview", "plan", "refresh"})


def _ended_job(_token: CancelToken) -> Job[Any]:
    raise RuntimeError("this request has ended; its job cannot run again")


class RequestState(Enum):
    """Where a :class:`Request` is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Request(QObject):
    """One piece of work asked of the controller, from the queue to its end.

    Exactly one of ``finished``, ``failed`` or ``cancelled`` is emitted, then
    ``ended``. The controller's own bookkeeping (history, masks, statistics
    after a change) is done before any of them.

    Signals:
        started(): the work left the queue and runs in a worker now.
        progress(fraction, message): it reported progress.
        detail(object): it reported a result so far (``Progress.detail``).
        finished(result): it completed (and is the latest of its kind).
        failed(error): it raised ``error``; unless the error is one of
            ``silent_errors``, the controller also shows it to the user.
        cancelled(): the user cancelled it, or a later request of its kind
            superseded it (:attr:`superseded`).
        ended(state): after any of the three, with the final :class:`RequestState`.
    """

    started = Signal()
    progress = Signal(float, str)
    detail = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    ended = Signal(object)

    def __init__(
        self,
        label: str,
        make_job: MakeJob,
        *,
        kind: str = "",
        silent_errors: tuple[type[BaseException], ...] = (),
        needed: Callable[[], bool] | None = None,
        on_start: Callable[[], None] | None = None,
        on_end: Callable[[RequestState, Any], None] | None = None,
    ) -> None:
        """``needed()`` is asked when its turn comes (False: it finishes with None, no
        job runs); ``on_start`` runs as the job starts; ``on_end(state, result)`` runs
        when it ends, before the request's own signals (the controller's bookkeeping).
        ``on_end`` hears how the job really ended, even when the request was
        superseded (a cache may still keep what it measured)."""
        super().__init__()
        if kind and kind not in PRIORITY:
            raise ValueError(f"unknown request kind {kind!r}; one of {PRIORITY}")
        self.label = label
        self.kind = kind
        self.silent_errors = silent_errors
        self.state = RequestState.QUEUED
        #: The job's return value once finished (None before).
        self.result: Any = None
        #: The exception once failed (None before).
        self.error: BaseException | None = None
        #: Whether a later request of the same kind replaced this one.
        self.superseded = False
        self._make_job = make_job
        self._needed = needed
        self._on_start = on_start
        self._on_end = on_end
        self._queue: RequestQueue | None = None

    @property
    def done(self) -> bool:
        """Whether it ended (finished, failed or cancelled)."""
        return self.state not in (RequestState.QUEUED, RequestState.RUNNING)

    @property
    def running(self) -> bool:
        """Whether its job runs now."""
        return self.state is RequestState.RUNNING

    def cancel(self) -> None:
        """Stop it: before it starts when queued, at its next check when running."""
        if self._queue is not None and not self.done:
            self._queue.cancel(self)

    def __repr__(self) -> str:
        kind = f" {self.kind}" if self.kind else ""
        return f"<Request{kind} {self.label!r} {self.state.value}>"

    # -- driven by the queue ------------------------------------------------------------------
    def _end(self, state: RequestState, value: Any = None) -> None:
        """Do the bookkeeping (if its job started), then say how it ended."""
        if self.done:
            return
        started = self.state is RequestState.RUNNING
        # Nobody wants a superseded request's result (or its error).
        self.state = RequestState.CANCELLED if self.superseded else state
        try:
            if started and self._on_end is not None:
                self._on_end(state, value)
        finally:
            if self.state is RequestState.FINISHED:
                self.result = value
                self.finished.emit(value)
            elif self.state is RequestState.FAILED:
                self.error = value
                self.failed.emit(value)
            else:
                self.cancelled.emit()
            self.ended.emit(self.state)
            self._release()

    def _release(self) -> None:
        """Let go of the job, the hooks and every slot once ended.

        A slot that captures its own request (``request.ended.connect(lambda _:
        done(request))``) is a cycle through Qt's connection list, which Python's
        collector cannot see: without this, the request, its closures and what they
        hold (a replaced model, a dataset) would live for good.
        """
        self._make_job = _ended_job
        self._needed = self._on_start = self._on_end = None
        signals = (self.started, self.progress, self.detail, self.finished, self.failed)
        with warnings.catch_warnings():  # "nothing to disconnect" is fine
            warnings.simplefilter("ignore", RuntimeWarning)
            for signal in (*signals, self.cancelled, self.ended):
                signal.disconnect()


class RequestQueue(QObject):
    """Runs :class:`Request` s one at a time (see module docstring).

    Signals:
        busy_changed(busy): a job started, or the queue ran dry.
        request_started(request): a request left the queue.
        progress(fraction, message): the running request reported progress.
        cancelled(request): the running request was cancelled through :meth:`cancel`
            without naming it (the window's Cancel button).
        error(message, details): a request failed with an error nobody handles.
    """

    busy_changed = Signal(bool)
    request_started = Signal(object)
    progress = Signal(float, str)
    cancelled = Signal(object)
    error = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runner = JobRunner(self)
        self._runner.progress.connect(self._on_progress)
        self._runner.detail.connect(self._on_detail)
        self._runner.cancelled.connect(self._on_cancelled)
        self._runner.finished.connect(self._next)
        self._commands: list[Request] = []
        self._latest: dict[str, Request] = {}
        self._running: Request | None = None
        self._announce: Request | None = None  # a cancel the window asked for
        # A deferred request starts on the next event-loop turn at the earliest.
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(0)
        self._soon.timeout.connect(self._next)

    # -- state ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a request's job runs now."""
        return self._runner.busy

    @property
    def running(self) -> Request | None:
        """The request whose job runs now."""
        return self._running if self._runner.busy else None

    @property
    def queued(self) -> int:
        """Commands waiting for the running job to finish."""
        return len(self._commands)

    def waiting(self) -> list[Request]:
        """Every request not started yet: commands in order, then by kind priority."""
        return [*self._commands, *(self._latest[k] for k in PRIORITY if k in self._latest)]

    # -- commands ---------------------------------------------------------------------------
    def submit(self, request: Request, *, defer: bool = False) -> Request:
        """Queue ``request``; it starts now if nothing runs (``defer``: next turn at the earliest).

        A request with a ``kind`` supersedes the waiting request of that kind,
        and a running one when the kind is in :data:`CANCELS_RUNNING`.
        """
        if request._queue is not None:
            raise RuntimeError(f"{request!r} was submitted already")
        request._queue = self
        if request.kind:
            older = self._latest.pop(request.kind, None)
            if older is not None:
                older.superseded = True
                older._end(RequestState.CANCELLED)
            running = self.running
            if running is not None and running.kind == request.kind:
                running.superseded = True
                if request.kind in CANCELS_RUNNING:
                    self._runner.cancel()
            self._latest[request.kind] = request
        else:
            self._commands.append(request)
        if defer:
            self._soon.start()
        else:
            self._next()
        return request

    def cancel(self, request: Request | None = None) -> None:
        """Cancel ``request``; by default the running one, announced on ``cancelled``."""
        if request is None or request is self.running:
            if request is None:
                self._announce = self.running
            self._runner.cancel()
            return
        if request in self._commands:
            self._commands.remove(request)
        elif self._latest.get(request.kind) is request:
            del self._latest[request.kind]
        else:
            return
        request._end(RequestState.CANCELLED)

    def clear(self) -> None:
        """Cancel every request still waiting (a new model makes them meaningless)."""
        for request in self.waiting():
            self.cancel(request)

    # -- running ----------------------------------------------------------------------------
    def _next(self, _label: str = "") -> None:
        """Start the next waiting request, if idle; else report idleness."""
        if self._runner.busy:
            return
        self._running = None
        while not self._runner.busy and (self._commands or self._latest):
            if self._commands:
                request = self._commands.pop(0)
            else:
                request = self._latest.pop(next(k for k in PRIORITY if k in self._latest))
            self._start(request)
        if not self._runner.busy:
            self.busy_changed.emit(False)

    def _start(self, request: Request) -> None:
        if request._needed is not None and not request._needed():
            request._end(RequestState.FINISHED)  # nothing left to do
            return
        request.state = RequestState.RUNNING
        self._running = request
        try:
            if request._on_start is not None:
                request._on_start()
            started = self._runner.run(
                request.label,
                request._make_job,
                on_result=lambda result: request._end(RequestState.FINISHED, result),
                on_error=lambda exc: self._failed(request, exc),
            )
        except Exception as exc:  # building the job failed on the GUI thread
            self._running = None
            self._failed(request, exc)
            return
        if started:
            self.busy_changed.emit(True)
            self.request_started.emit(request)
            request.started.emit()

    def _failed(self, request: Request, exc: BaseException) -> bool:
        report = not request.superseded and not isinstance(exc, request.silent_errors)
        request._end(RequestState.FAILED, exc)
        if report:
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.error.emit(str(exc) or type(exc).__name__, details)
        return True  # the runner emits nothing more

    def _on_progress(self, fraction: float, message: str) -> None:
        if self._running is not None:
            self._running.progress.emit(fraction, message)
        self.progress.emit(fraction, message)

    def _on_detail(self, detail: object) -> None:
        if self._running is not None:
            self._running.detail.emit(detail)

    def _on_cancelled(self, _label: str) -> None:
        request = self._running
        if request is None:
            return
        request._end(RequestState.CANCELLED)
        if self._announce is request and not request.superseded:
            self.cancelled.emit(request)
        self._announce = None
