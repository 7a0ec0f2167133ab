"""Pattern methods beyond torch.nn.utils.prune: N:M semi-structured and block sparsity.

Both work on the weight viewed as a matrix ``(shape[0], rest)``: for Linear
that is ``(out, in)``, for Conv ``(out, in*kh*kw)``, so "the input dimension"
is the flattened ``in*kh*kw``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from core.pruning.amounts import Amount
from core.pruning.importance import Importance, Magnitude
from core.pruning.methods.base import PruningMethod, ScoredMethod
from core.pruning.methods.patterns import Blocks, NOfM, Pattern
from core.pruning.methods.spec import AMOUNT, ParamSpec

#: The largest N:M group and block side the schema accepts.
MAX_SIDE = 1 << 16


@dataclass(frozen=True)
class NMSparsity(ScoredMethod):
    """Keep the ``n`` largest-magnitude weights in every ``m`` consecutive inputs (2:4)."""

    n: int = 2
    m: int = 4

    name: ClassVar[str] = "n_m"
    label: ClassVar[str] = "N:M semi-structured"
    summary: ClassVar[str] = (
        "Keep N of every M consecutive weights along the input (2:4 suits sparse tensor cores)."
    )
    kind: ClassVar[str] = "pattern"
    uses_amount: ClassVar[bool] = False
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec(
            "n",
            "int",
            2,
            "Keep N",
            "N: how many weights to keep in each group of M.",
            "--keep",
            low=0,
            high=MAX_SIDE,
            unit="weights",
            high_from="m",
        ),
        ParamSpec(
            "m",
            "int",
            4,
            "Of M",
            "M: the size of each group of consecutive input weights.",
            "--group",
            low=1,
            high=MAX_SIDE,
            unit="weights",
        ),
    )

    def importance(self) -> Importance:
        return Magnitude(1)

    def pattern(self) -> Pattern:
        return NOfM(self.n, self.m)

    def describe(self) -> str:
        return f"{self.n}:{self.m} sparsity"

    def with_amount(self, amount: Amount) -> PruningMethod:
        return self


@dataclass(frozen=True)
class BlockSparsity(ScoredMethod):
    """Prune the ``amount`` blocks (e.g. 4x4) of the weight matrix with the smallest norm."""

    amount: Amount = 0.5
    block_rows: int = 4
    block_cols: int = 4
    n: int = 2

    name: ClassVar[str] = "block"
    label: ClassVar[str] = "Block"
    summary: ClassVar[str] = (
        "Zero whole rectangular blocks of the weight matrix, those with the smallest norm."
    )
    kind: ClassVar[str] = "pattern"
    unit: ClassVar[str] = "blocks"
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (
        AMOUNT,
        ParamSpec(
            "block_rows",
            "int",
            4,
            "Block rows",
            "Block height, in rows of the weight matrix.",
            "--block-rows",
            low=1,
            high=MAX_SIDE,
            unit="rows",
        ),
        ParamSpec(
            "block_cols",
            "int",
            4,
            "Block cols",
            "Block width, in (flattened) input columns.",
            "--block-cols",
            low=1,
            high=MAX_SIDE,
            unit="columns",
        ),
        ParamSpec(
            "n",
            "choice",
            2,
            "Norm",
            "Norm ranking the blocks: the smallest go first.",
            "--norm",
            choices=(("L1  (sum |w|)", 1), ("L2  (sum w²)", 2)),
        ),
    )

    def importance(self) -> Importance:
        return Magnitude(self.n)

    def pattern(self) -> Pattern:
        return Blocks(self.block_rows, self.block_cols)

    def describe(self) -> str:
        return f"{super().describe()} in {self.block_rows}x{self.block_cols} blocks"
