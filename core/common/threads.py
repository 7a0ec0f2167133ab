"""Torch's intra-op thread count, changed for a while and put back, from any thread.

``torch.set_num_threads(n)`` (torch's OpenMP build) changes two things:

* the **calling thread's count**: its OpenMP team size and MKL's thread-local
  count, what ``torch.get_num_threads()`` returns in that thread and what its
  parallel ops use. Other threads that already ran a torch op keep theirs (a
  GUI thread keeps its count while a worker thread changes its own).
* torch's **process-wide default**: the count a thread takes when it first
  runs a torch op (``torch.get_num_threads()`` included) without having set
  its own. Threads that start while a worker has changed its count inherit
  that count for good.

:func:`torch_threads` puts both back on exit (also on an exception or a
cancellation), so it can run in a worker thread whose count was set by someone
else (the GUI's job threads leave a core to the GUI thread) without undoing
that count or leaving its own as every new thread's default. Two threads
changing counts at the same time still race for the process-wide default:
torch keeps one value for the whole process.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


def new_thread_count() -> int:
    """The intra-op thread count a thread starts with: torch's process-wide default.

    Read in a short-lived thread (torch offers no other way to read it), so it
    costs a thread start; the calling thread's count is not touched.
    """
    return _in_new_thread(torch.get_num_threads)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the calling thread's torch ops at ``threads`` threads, then put back its
    count and torch's process-wide default (see module docstring).

    Nothing is set when the calling thread already runs at ``threads`` and code
    inside sets nothing either.

    Raises:
        ValueError: ``threads`` below 1.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    default = new_thread_count()
    if threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
        if new_thread_count() != default:
            # Set in a thread of its own: the calling thread keeps ``previous``.
            _in_new_thread(lambda: torch.set_num_threads(default))


def _in_new_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread and wait for it; its result (its exception raised here)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    worker = threading.Thread(target=run, name="torch-threads", daemon=True)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]
