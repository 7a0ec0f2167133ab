"""How every speed figure is measured: ``torch.utils.benchmark``, a fixed thread count.

:func:`time_call` runs a callable once (warm-up: JIT compiles, allocator,
caches), then hands it to ``torch.utils.benchmark.Timer.adaptive_autorange``,
which sizes blocks of calls so the timer's overhead is negligible and repeats
them until the interquartile range is under a tenth of the median (or a time
limit is reached). The median and IQR of the per-call times are reported.

Threads: the call runs at the ``threads`` asked for, in the calling thread only
(:func:`core.common.threads.torch_threads`): ``torch.set_num_threads`` sets that
thread's OpenMP and MKL count, which torch's ops and the sparse kernels (one band
per thread) read, and torch's process-wide default that threads take at their
first torch op. Afterwards, also on an exception or a cancellation, the calling
thread is back at its own count (a GUI job thread's, not the GUI thread's nor
all cores) and the process-wide default is what it was. Other threads keep their
counts throughout; only a thread that runs its first torch op while a call is
timed starts at ``threads``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils import benchmark

from core.common.threads import torch_threads

#: Stop repeating once IQR / median falls below this.
IQR_THRESHOLD = 0.1
#: The longest one measurement may run, as a multiple of ``min_run_time``.
MAX_RUN_FACTOR = 4.0

METHOD_TEXT = (
    "torch.utils.benchmark.Timer.adaptive_autorange: one warm-up call, then blocks of calls "
    f"repeated until the interquartile range is under {IQR_THRESHOLD:.0%} of the median (or "
    f"{MAX_RUN_FACTOR:g}x the minimum run time has passed); median and interquartile range "
    "of the per-call time. Every form runs at the same thread count (torch.set_num_threads; "
    "the sparse kernels split their rows into as many bands), in eval mode under "
    "torch.inference_mode()."
)


@dataclass(frozen=True)
class Timing:
    """One measured call: median and interquartile range of its time, and how many calls
    the measurement made."""

    median_ms: float
    iqr_ms: float
    runs: int


def default_threads() -> int:
    """All cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def time_call(fn: Callable[[], object], *, threads: int, min_run_time: float = 0.2) -> Timing:
    """Measure ``fn()`` at ``threads`` torch threads in the calling thread.

    The calling thread's count and torch's process-wide default are put back
    afterwards, however ``fn`` ends (see module docstring); safe in a worker thread.

    Raises:
        ValueError: ``threads`` below 1.
    """
    with torch_threads(threads):
        fn()  # warm-up outside the measurement
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
        measurement = timer.adaptive_autorange(
            IQR_THRESHOLD,
            min_run_time=min_run_time,
            max_run_time=MAX_RUN_FACTOR * min_run_time,
        )
    return Timing(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.times) * measurement.number_per_run,
    )
