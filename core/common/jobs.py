"""Long-running work as generators: progress, cooperative cancel, result.

A *job* is a generator that yields :class:`Progress` items and returns its
result (``StopIteration.value``). It never touches Qt, so it can run in any
thread: the GUI wraps it in a worker, scripts and tests call :func:`run_job`.
Jobs check a :class:`CancelToken` between chunks and raise
:class:`~core.common.errors.JobCancelled`, leaving the session as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from core.common.errors import JobCancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One progress report: ``fraction`` in [0, 1], a human-readable message, and
    optionally ``detail``: a result-so-far a watcher may draw (e.g. one finished
    epoch of a fine-tune, one measured row of a benchmark)."""

    fraction: float
    message: str
    detail: object | None = None


Job = Generator[Progress, None, T]


class CancelToken:
    """A thread-safe flag a job polls between chunks of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`JobCancelled` if cancellation was requested."""
        if self._event.is_set():
            raise JobCancelled("cancelled by the user")


NEVER_CANCELLED = CancelToken()


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Run a job to completion in the calling thread and return its result."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            result: T = stop.value  # StopIteration.value is typed Any
            return result
        if on_progress is not None:
            on_progress(progress)


def scaled(job: Job[T], start: float, stop: float) -> Job[T]:
    """Re-map a sub-job's progress fractions into ``[start, stop]``."""
    span = stop - start
    while True:
        try:
            progress = next(job)
        except StopIteration as done:
            result: T = done.value
            return result
        yield Progress(start + span * progress.fraction, progress.message, progress.detail)
