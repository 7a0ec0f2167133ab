"""Accuracy measurements kept in the undo history, and how they read.

An evaluation run in the Accuracy panel is stored at the history position it was
measured at (``History.measurements()``) under ``"evaluation:<split>"`` as
:meth:`core.training.evaluate.Evaluation.to_dict`; the automatic test accuracy of
the digits demos (measured after every operation) under :data:`AUTO_ACCURACY`
as a float. The history list, the status bar and the Statistics panel read them
back with :func:`measured_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVALUATION_PREFIX = "evaluation:"
"""Key prefix of an evaluation's dict; the split follows (``evaluation:test``)."""
AUTO_ACCURACY = "accuracy:test"
"""Key of the automatic top-1 test accuracy (digits demos), a float in [0, 1]."""
SPLIT_ORDER: tuple[str, ...] = ("test", "val", "train")
"""Which split's accuracy a step shows first when several were measured."""


def evaluation_key(split: str) -> str:
    """The measurement key of an evaluation on ``split``."""
    return EVALUATION_PREFIX + split


@dataclass(frozen=True)
class MeasuredAccuracy:
    """A top-1 accuracy measured at one history position, and where it came from."""

    top1: float
    split: str
    #: The evaluation's one-line summary (None for the automatic measurement).
    summary: str | None = None

    @property
    def text(self) -> str:
        """``97.2%`` (test) or ``val 96.1%`` (another split)."""
        value = f"{100.0 * self.top1:.1f}%"
        return value if self.split == "test" else f"{self.split} {value}"


def measured_accuracy(measurements: Mapping[str, Any]) -> MeasuredAccuracy | None:
    """The top-1 accuracy stored in a history position's measurements, if any.

    An evaluation from the panel wins over the automatic measurement; the test
    split wins over validation, validation over train.
    """
    for split in SPLIT_ORDER:
        found = measurements.get(evaluation_key(split))
        if isinstance(found, Mapping):
            top1 = found.get("top1")
            if isinstance(top1, int | float) and math.isfinite(top1):
                return MeasuredAccuracy(float(top1), split, _summary(found))
        if split == "test":
            auto = measurements.get(AUTO_ACCURACY)
            if isinstance(auto, int | float) and math.isfinite(auto):
                return MeasuredAccuracy(float(auto), "test")
    return None


def _summary(evaluation: Mapping[str, Any]) -> str | None:
    """The evaluation's own summary line (None if the dict does not rebuild)."""
    try:
        from core.training.evaluate import Evaluation

        return Evaluation.from_dict(dict(evaluation)).summary()
    except Exception:  # an older or foreign dict: the figure alone still reads
        return None


def test_accuracy(measurements: Mapping[str, Any]) -> float:
    """The top-1 accuracy on the test split stored in ``measurements`` (NaN: none)."""
    found = measured_accuracy(measurements)
    return found.top1 if found is not None and found.split == "test" else math.nan
