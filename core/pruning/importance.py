"""Importance scores: how much each unit of a weight matters (as in Torch-Pruning).

A scorer rates the units of a weight; a pattern (``core.pruning.methods.patterns``)
turns the scores into a mask, pruning the *lowest* scores first. The two are
independent: the same magnitude scorer ranks single weights (unstructured,
N:M), channels (by their Ln norm) and blocks.

Scores reproduce torch.nn.utils.prune's own computations bit for bit (its
norms, its random draws), so the masks built from them equal torch's.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from core.common.errors import UnsupportedParameterError


def ranking_magnitudes(t: torch.Tensor) -> torch.Tensor:
    """|t| in a precision that ranks exactly: half types widened to fp32, fp64 kept."""
    magnitudes = t.abs()
    return magnitudes if magnitudes.dtype == torch.float64 else magnitudes.float()


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded like ``torch.manual_seed(seed)`` seeds it."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class Importance(ABC):
    """Scores of the units of a weight; low scores are pruned first."""

    #: Short name, e.g. ``"magnitude"``.
    name: ClassVar[str]

    @abstractmethod
    def entry_scores(self, t: torch.Tensor) -> torch.Tensor:
        """One score per entry of ``t`` (same shape)."""

    @abstractmethod
    def channel_scores(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """One score per slice of ``t`` along ``dim`` (a 1-D tensor of ``t.shape[dim]``)."""

    @abstractmethod
    def block_scores(self, blocks: torch.Tensor) -> torch.Tensor:
        """One score per block of ``blocks``, weights viewed as ``(grid_rows, br, grid_cols, bc)``.

        Blocks at the matrix edge are padded with zero weights.
        """


@dataclass(frozen=True)
class Magnitude(Importance):
    """The ``p``-norm of each unit's weights: |w| for one weight, torch's norm for channels.

    Blocks are ranked by the sum of ``|w|**p`` (the norm without its root, same
    order), for ``p`` in 1 and 2.
    """

    p: Any = 1

    name: ClassVar[str] = "magnitude"

    def entry_scores(self, t: torch.Tensor) -> torch.Tensor:
        # The magnitude in the weight's own dtype, exactly what torch ranks.
        return torch.abs(t)

    def channel_scores(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        dims = [d for d in range(t.dim()) if d != dim]
        scores: torch.Tensor
        if self.p == "fro" and len(dims) > 2:
            # torch.norm's 'fro' only takes 1 or 2 dims; over more it is the 2-norm.
            scores = torch.linalg.vector_norm(t, 2, dim=dims)
        else:
            scores = torch.norm(t, p=self.p, dim=dims)
        return scores

    def block_scores(self, blocks: torch.Tensor) -> torch.Tensor:
        magnitudes = ranking_magnitudes(blocks)
        if self.p == 1:
            return magnitudes.sum(dim=(1, 3))
        if self.p == 2:
            return magnitudes.pow(2).sum(dim=(1, 3))
        raise UnsupportedParameterError(f"blocks are ranked by the 1- or 2-norm, not {self.p!r}")


@dataclass(frozen=True)
class RandomScores(Importance):
    """Seeded random scores, drawn exactly as torch's random pruning draws them.

    torch's ``random_unstructured`` prunes the entries with the *highest* draws
    of ``rand_like(t)``; the entry score is the negated draw, so the lowest
    scores go first as everywhere else (the same entries, ties included).
    ``random_structured`` draws one fp32 number per channel on the CPU and
    prunes the lowest.
    """

    seed: int = 0

    name: ClassVar[str] = "random"

    def entry_scores(self, t: torch.Tensor) -> torch.Tensor:
        generator = seeded_generator(self.seed, t.device)
        draws = torch.rand(t.shape, generator=generator, dtype=t.dtype, device=t.device)
        return draws.neg_()

    def channel_scores(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        generator = seeded_generator(self.seed, torch.device("cpu"))
        return torch.rand(t.shape[dim], generator=generator)

    def block_scores(self, blocks: torch.Tensor) -> torch.Tensor:
        generator = seeded_generator(self.seed, torch.device("cpu"))
        grid = (blocks.shape[0], blocks.shape[2])
        return torch.rand(math.prod(grid), generator=generator).view(grid)
