"""The terminal a command writes to, progress bars driving jobs, and Ctrl+C as a cancel.

Results (tables, JSON, where files went) go to stdout; progress bars and
errors go to stderr, so ``prunescope stats m --json > stats.json`` keeps the
file clean. Bars show only when stderr is a terminal and ``--quiet`` is off.

A job polls its :class:`~core.common.jobs.CancelToken` between chunks of work.
While a command runs, the first Ctrl+C sets the token (the job stops at its
next check and leaves nothing half-written); a second one interrupts at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from core.common.jobs import CancelToken, Job, run_job
from core.common.jobs import Progress as JobProgress

T = TypeVar("T")

#: Width of tables written to a file or a pipe (a terminal uses its own width).
PIPE_WIDTH = 160


class Terminal:
    """Where a command writes: ``out`` (stdout) for results, ``err`` (stderr) for the rest.

    Args:
        quiet: never show progress bars.
        out, err: the consoles (tests pass consoles writing to buffers).
    """

    def __init__(
        self, *, quiet: bool = False, out: Console | None = None, err: Console | None = None
    ) -> None:
        self.out = out if out is not None else _stdout_console()
        self.err = err if err is not None else Console(stderr=True, highlight=False)
        self.quiet = quiet
        #: Whether jobs show a progress bar.
        self.show_progress = not quiet and self.err.is_terminal

    def result(self, line: str) -> None:
        """Write one line of results to stdout, as is (no markup, no wrapping)."""
        self.out.file.write(line + "\n")
        self.out.file.flush()

    def note(self, line: str) -> None:
        """Write one line the user should know to stderr (not with ``--quiet``)."""
        if not self.quiet:
            self.err.file.write(line + "\n")
            self.err.file.flush()


def _stdout_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def run_with_progress(job: Job[T], label: str, terminal: Terminal) -> T:
    """Run ``job`` to its result, with a bar labelled ``label`` when the terminal shows one."""
    if not terminal.show_progress:
        return run_job(job)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=terminal.err, transient=True) as bar:
        task = bar.add_task(label, total=1.0)

        def update(progress: JobProgress) -> None:
            bar.update(
                task,
                completed=progress.fraction,
                description=f"{label}: {progress.message}" if progress.message else label,
            )

        return run_job(job, update)


@contextmanager
def interrupt_cancels(token: CancelToken) -> Iterator[None]:
    """While inside, Ctrl+C (SIGINT) cancels ``token``; a second Ctrl+C interrupts.

    Only the main thread can handle signals; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        sys.stderr.write("prunescope: cancelling (press Ctrl+C again to stop at once)\n")
        sys.stderr.flush()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
