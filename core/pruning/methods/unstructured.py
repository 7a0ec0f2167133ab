"""Unstructured methods: individual weights are zeroed wherever they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from core.pruning.amounts import Amount, count_to_prune, validate_amount
from core.pruning.methods.base import PruningMethod, restrict_unstructured


def seeded_generator(seed: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded like ``torch.manual_seed(seed)`` seeds it."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


class _ByEntries(PruningMethod):
    """Shared body of the unstructured methods: choose ``k`` entries to prune."""

    amount: Amount
    kind: ClassVar[str] = "unstructured"

    def __post_init__(self) -> None:
        validate_amount(self.amount)

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        return restrict_unstructured(self._fresh, t, current)

    def _fresh(self, t: torch.Tensor) -> torch.Tensor:
        k = count_to_prune(self.amount, t.numel())
        mask = torch.ones(t.shape, dtype=torch.bool, device=t.device)
        if k:
            mask.view(-1)[self._chosen(t, k)] = False
        return mask

    def _chosen(self, t: torch.Tensor, k: int) -> torch.Tensor:
        """Flat indices of the ``k`` entries of ``t`` to prune."""
        raise NotImplementedError


@dataclass(frozen=True)
class L1Unstructured(_ByEntries):
    """Prune the ``amount`` entries with the smallest absolute value (torch's kernel)."""

    amount: Amount = 0.5

    name: ClassVar[str] = "l1_unstructured"
    summary: ClassVar[str] = "Zero the individual weights with the smallest magnitude |w|."

    def _chosen(self, t: torch.Tensor, k: int) -> torch.Tensor:
        return torch.topk(torch.abs(t).reshape(-1), k=k, largest=False).indices


@dataclass(frozen=True)
class RandomUnstructured(_ByEntries):
    """Prune ``amount`` entries chosen at random (seeded, reproducible)."""

    amount: Amount = 0.5
    seed: int = 0

    name: ClassVar[str] = "random_unstructured"
    summary: ClassVar[str] = "Zero randomly chosen individual weights (a baseline to compare with)."

    def _chosen(self, t: torch.Tensor, k: int) -> torch.Tensor:
        generator = seeded_generator(self.seed, t.device)
        prob = torch.rand(t.shape, generator=generator, dtype=t.dtype, device=t.device)
        return torch.topk(prob.reshape(-1), k=k).indices
