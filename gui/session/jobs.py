"""Runs core jobs (generators) in worker threads and reports back on the GUI thread.

A core job yields :class:`core.common.jobs.Progress` and returns a result; it checks a
:class:`core.common.jobs.CancelToken`. :class:`JobRunner` wraps it in a superqt
``GeneratorWorker`` so the window never freezes: progress, result, errors and
cancellation arrive as Qt signals in the GUI thread.

While a job runs, its worker thread's torch ops (and the numba kernels, which
split their work into ``torch.get_num_threads()`` bands) use one core less than
the process may run on, so the GUI thread always finds a free core; the count
is per thread and put back when the job ends (:func:`job_threads`).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
from PySide6.QtCore import QObject, Signal
from superqt.utils import GeneratorWorker, create_worker

from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, Job, Progress


class _CarriedError(Exception):
    """Carries an exception that superqt would swallow: it drops RuntimeError (and its
    subclasses, which torch raises a lot) with only a warning, as a sign of a deleted
    Qt object."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def job_thread_count() -> int:
    """Threads a job's torch ops use: the cores this process may run on, less one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


@contextlib.contextmanager
def job_threads() -> Iterator[None]:
    """Run the calling thread's torch ops at :func:`job_thread_count` threads, then restore.

    ``torch.set_num_threads`` sets the calling thread's OpenMP team size (the GUI
    thread keeps its own); code that times itself sets its own count inside.
    """
    previous = torch.get_num_threads()
    threads = min(previous, job_thread_count())
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def _drive(job: Job[Any]) -> Any:
    """Re-yield a core job's progress so superqt can forward it (one core left to the GUI)."""
    with job_threads():
        try:
            return (yield from job)
        except RuntimeError as exc:
            raise _CarriedError(exc) from exc


class JobRunner(QObject):
    """Runs one job at a time off the GUI thread.

    Signals:
        started(label): a job began.
        progress(fraction, message): the running job reported progress.
        detail(object): the running job reported a result so far (``Progress.detail``).
        finished(label): the job ended (after its callback), however it ended.
        failed(label, message, details): the job raised; details is the traceback.
        cancelled(label): the job stopped because :meth:`cancel` was called.
    """

    started = Signal(str)
    progress = Signal(float, str)
    detail = Signal(object)
    finished = Signal(str)
    failed = Signal(str, str, str)
    cancelled = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker: GeneratorWorker | None = None
        self._token: CancelToken | None = None
        self._label = ""

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._worker is not None

    @property
    def label(self) -> str:
        """The running job's label ('' when idle)."""
        return self._label if self._worker is not None else ""

    def run(
        self,
        label: str,
        make_job: Callable[[CancelToken], Job[Any]],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], bool | None] | None = None,
    ) -> bool:
        """Start ``make_job(token)`` in a worker; False if another job is running.

        ``on_result(result)`` and ``on_error(exc)`` run on the GUI thread; when
        ``on_error`` returns True it handled the error and ``failed`` is not emitted.
        """
        if self._worker is not None:
            return False
        token = CancelToken()
        worker = create_worker(_drive, make_job(token), _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._report)
        worker.returned.connect(lambda result: self._done(on_result, result))
        worker.errored.connect(lambda exc: self._errored(exc, on_error))
        self._worker, self._token, self._label = worker, token, label
        self.started.emit(label)
        worker.start()
        return True

    def _report(self, progress: Progress) -> None:
        self.progress.emit(float(progress.fraction), str(progress.message))
        if progress.detail is not None:
            self.detail.emit(progress.detail)

    def cancel(self) -> None:
        """Ask the running job to stop at its next check (it rolls back)."""
        if self._token is not None:
            self._token.cancel()

    def _end(self) -> str:
        label = self._label
        self._worker, self._token, self._label = None, None, ""
        return label

    def _done(self, on_result: Callable[[Any], None] | None, result: Any) -> None:
        label = self._end()
        try:
            if on_result is not None:
                on_result(result)
        finally:
            self.finished.emit(label)

    def _errored(
        self, exc: BaseException, on_error: Callable[[BaseException], bool | None] | None
    ) -> None:
        label = self._end()
        if isinstance(exc, _CarriedError):
            exc = exc.error
        try:
            if isinstance(exc, JobCancelled):
                self.cancelled.emit(label)
            elif not (on_error is not None and on_error(exc)):
                details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                self.failed.emit(label, str(exc) or type(exc).__name__, details)
        finally:
            self.finished.emit(label)
