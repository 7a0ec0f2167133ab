"""Learning-rate schedules as plain functions of training progress.

Each gives the learning rate at progress ``t`` in ``[0, 1]`` (steps done over
all steps), so a loop sets it before every optimiser step, whatever the data's
length. ``onecycle`` follows torch's ``OneCycleLR`` defaults: a cosine warm-up
from ``lr/25`` to ``lr`` over the first 30%, then a cosine descent to ``lr/25e4``.
"""

from __future__ import annotations

import math

SCHEDULES: tuple[str, ...] = ("constant", "cosine", "onecycle")
"""Every schedule name."""

#: One-cycle shape: share of warm-up, start and end divisors (torch's defaults).
ONECYCLE_WARMUP = 0.3
ONECYCLE_START_DIV = 25.0
ONECYCLE_END_DIV = 1e4


def _cosine(start: float, end: float, t: float) -> float:
    """From ``start`` at t=0 to ``end`` at t=1 along half a cosine."""
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))


def learning_rate(schedule: str, lr: float, t: float) -> float:
    """The learning rate of ``schedule`` (peak ``lr``) at progress ``t`` (clamped to [0, 1]).

    Raises:
        ValueError: unknown schedule.
    """
    t = min(1.0, max(0.0, t))
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return _cosine(lr, 0.0, t)
    if schedule == "onecycle":
        low = lr / ONECYCLE_START_DIV
        if t < ONECYCLE_WARMUP:
            return _cosine(low, lr, t / ONECYCLE_WARMUP)
        return _cosine(lr, low / ONECYCLE_END_DIV, (t - ONECYCLE_WARMUP) / (1 - ONECYCLE_WARMUP))
    raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
