"""Structured methods: whole channels (slices along ``dim``) are zeroed.

``dim=0`` prunes rows / output channels of Linear and Conv weights, ``dim=1``
columns / input channels (ConvTranspose stores ``(in, out, ...)``). The amount
is a fraction or count of channels, not of weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from core.pruning.amounts import Amount
from core.pruning.importance import Importance, Magnitude, RandomScores
from core.pruning.methods.base import ScoredMethod
from core.pruning.methods.patterns import Channels, Pattern
from core.pruning.methods.spec import AMOUNT, DIM, ParamSpec, seed_spec

#: The norms ranking channels: (label, value for the method).
LN_NORMS: tuple[tuple[str, Any], ...] = (
    ("L1  (sum |w|)", 1),
    ("L2  (Euclidean)", 2),
    ("L∞  (max |w|)", float("inf")),
    ("L−∞  (min |w|)", float("-inf")),
    ("Frobenius", "fro"),
)
NORMS: tuple[Any, ...] = tuple(value for _label, value in LN_NORMS)


@dataclass(frozen=True)
class LnStructured(ScoredMethod):
    """Prune the ``amount`` channels along ``dim`` with the smallest ``n``-norm."""

    amount: Amount = 0.5
    n: Any = 2
    dim: int = 0

    name: ClassVar[str] = "ln_structured"
    label: ClassVar[str] = "Ln structured"
    summary: ClassVar[str] = "Zero whole rows/channels along dim, those with the smallest Ln norm."
    kind: ClassVar[str] = "structured"
    unit: ClassVar[str] = "channels"
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (
        AMOUNT,
        ParamSpec(
            "n",
            "choice",
            2,
            "Norm",
            "Norm ranking the channels: the smallest go first.",
            "--norm",
            choices=LN_NORMS,
        ),
        DIM,
    )

    def importance(self) -> Importance:
        return Magnitude(self.n)

    def pattern(self) -> Pattern:
        return Channels(self.dim)


@dataclass(frozen=True)
class RandomStructured(ScoredMethod):
    """Prune ``amount`` channels along ``dim`` chosen at random (seeded)."""

    amount: Amount = 0.5
    dim: int = 0
    seed: int = 0

    name: ClassVar[str] = "random_structured"
    label: ClassVar[str] = "Random structured"
    summary: ClassVar[str] = "Zero randomly chosen whole rows/channels along dim (a baseline)."
    kind: ClassVar[str] = "structured"
    unit: ClassVar[str] = "channels"
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (AMOUNT, DIM, seed_spec("channels"))

    def importance(self) -> Importance:
        return RandomScores(self.seed)

    def pattern(self) -> Pattern:
        # torch's random_structured keeps the channels drawn above the k-th lowest draw.
        return Channels(self.dim, by_kth_value=True)
