"""Pattern methods beyond torch.nn.utils.prune: N:M semi-structured and block sparsity.

Both work on the weight viewed as a matrix ``(shape[0], rest)``: for Linear
that is ``(out, in)``, for Conv ``(out, in*kh*kw)``, so "the input dimension"
is the flattened ``in*kh*kw``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from core.common.errors import UnsupportedParameterError
from core.pruning.amounts import Amount, count_to_prune, validate_amount
from core.pruning.methods.base import PruningMethod, require_dims


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """View a weight of 2+ dimensions as ``(shape[0], prod(shape[1:]))``."""
    return t.reshape(t.shape[0], -1)


def ranking_magnitudes(t: torch.Tensor) -> torch.Tensor:
    """|t| in a precision that ranks exactly: half types widened, float64 kept."""
    magnitudes = t.abs()
    return magnitudes if magnitudes.dtype == torch.float64 else magnitudes.float()


@dataclass(frozen=True)
class NMSparsity(PruningMethod):
    """Keep the ``n`` largest-magnitude weights in every ``m`` consecutive inputs (2:4)."""

    n: int = 2
    m: int = 4

    name: ClassVar[str] = "n_m"
    kind: ClassVar[str] = "pattern"
    summary: ClassVar[str] = (
        "Keep N of every M consecutive weights along the input (2:4 suits sparse tensor cores)."
    )
    uses_amount: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not (isinstance(self.m, int) and isinstance(self.n, int) and 0 <= self.n <= self.m):
            raise UnsupportedParameterError(
                f"N:M needs integers 0 <= N <= M, got {self.n}:{self.m}"
            )
        if self.m < 1:
            raise UnsupportedParameterError("N:M needs M >= 1")

    def describe(self) -> str:
        return f"{self.n}:{self.m} sparsity"

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        require_dims(t, 2, self.name)
        matrix = as_matrix(t)
        rows, width = matrix.shape
        if width % self.m:
            raise UnsupportedParameterError(
                f"{self.n}:{self.m} sparsity needs an input width divisible by {self.m}; "
                f"this weight has {width} inputs per row"
            )
        scores = ranking_magnitudes(matrix).reshape(rows, width // self.m, self.m)
        if current is not None:
            # Already pruned weights never win a slot over kept ones.
            scores = scores.masked_fill(~current.reshape(rows, width // self.m, self.m), -1.0)
        keep = torch.zeros(scores.shape, dtype=torch.bool, device=t.device)
        if self.n:
            keep.scatter_(-1, scores.topk(self.n, dim=-1).indices, True)
        mask = keep.reshape(t.shape)
        return mask if current is None else mask & current

    def with_amount(self, amount: float | int) -> PruningMethod:
        return self


@dataclass(frozen=True)
class BlockSparsity(PruningMethod):
    """Prune the ``amount`` blocks (e.g. 4x4) of the weight matrix with the smallest norm."""

    amount: Amount = 0.5
    block_rows: int = 4
    block_cols: int = 4
    n: int = 2

    name: ClassVar[str] = "block"
    kind: ClassVar[str] = "pattern"
    summary: ClassVar[str] = (
        "Zero whole rectangular blocks of the weight matrix, those with the smallest norm."
    )

    def __post_init__(self) -> None:
        validate_amount(self.amount)
        if self.block_rows < 1 or self.block_cols < 1:
            raise UnsupportedParameterError("block sizes must be at least 1")
        if self.n not in (1, 2):
            raise UnsupportedParameterError(f"block norm must be 1 or 2, got {self.n!r}")

    def describe(self) -> str:
        return f"{super().describe()} in {self.block_rows}x{self.block_cols} blocks"

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        require_dims(t, 2, self.name)
        matrix = as_matrix(t)
        rows, cols = matrix.shape
        br, bc = self.block_rows, self.block_cols
        grid = (math.ceil(rows / br), math.ceil(cols / bc))
        padded = F.pad(ranking_magnitudes(matrix), (0, grid[1] * bc - cols, 0, grid[0] * br - rows))
        blocks = padded.reshape(grid[0], br, grid[1], bc)
        scores = (blocks.sum(dim=(1, 3)) if self.n == 1 else blocks.pow(2).sum(dim=(1, 3))).view(-1)
        live = torch.ones_like(scores, dtype=torch.bool)
        if current is not None:
            kept = F.pad(
                as_matrix(current).float(), (0, grid[1] * bc - cols, 0, grid[0] * br - rows)
            )
            live = kept.reshape(grid[0], br, grid[1], bc).sum(dim=(1, 3)).view(-1) > 0
        k = count_to_prune(self.amount, int(live.sum()))
        block_keep = live.clone()
        if k:
            ranked = scores.masked_fill(~live, float("inf"))
            block_keep[torch.topk(ranked, k=k, largest=False).indices] = False
        expanded = block_keep.view(grid).repeat_interleave(br, 0).repeat_interleave(bc, 1)
        mask = expanded[:rows, :cols].reshape(t.shape).to(t.device)
        return mask if current is None else mask & current
