"""How every speed figure is measured: ``torch.utils.benchmark``, a fixed thread count.

:func:`time_call` runs a callable once (warm-up: JIT compiles, allocator,
caches), then hands it to ``torch.utils.benchmark.Timer.adaptive_autorange``,
which sizes blocks of calls so the timer's overhead is negligible and repeats
them until the interquartile range is under a tenth of the median (or a time
limit is reached). The median and IQR of the per-call times are reported. The
thread count is set for torch (``torch.set_num_threads``) and read by the sparse
kernels (one band per thread), and restored afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils import benchmark

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
    """Measure ``fn()`` at ``threads`` threads (see module docstring); torch's thread count
    is restored afterwards."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        fn()  # warm-up outside the measurement
        timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
        measurement = timer.adaptive_autorange(
            IQR_THRESHOLD,
            min_run_time=min_run_time,
            max_run_time=MAX_RUN_FACTOR * min_run_time,
        )
    finally:
        torch.set_num_threads(previous)
    return Timing(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.times) * measurement.number_per_run,
    )
