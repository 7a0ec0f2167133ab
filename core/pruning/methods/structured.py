"""Structured methods: whole channels (slices along ``dim``) are zeroed.

``dim=0`` prunes rows / output channels of Linear and Conv weights, ``dim=1``
columns / input channels (ConvTranspose stores ``(in, out, ...)``). The amount
is a fraction or count of channels, not of weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from core.common.errors import UnsupportedParameterError
from core.pruning.amounts import Amount, count_to_prune, validate_amount
from core.pruning.methods.base import (
    PruningMethod,
    normalise_dim,
    require_dims,
    restrict_structured,
)
from core.pruning.methods.unstructured import seeded_generator

NORMS: tuple[Any, ...] = (1, 2, float("inf"), float("-inf"), "fro")


def channel_norms(t: torch.Tensor, n: Any, dim: int) -> torch.Tensor:
    """The ``n``-norm of every slice of ``t`` along ``dim`` (torch's definition)."""
    dims = [d for d in range(t.dim()) if d != dim]
    if n == "fro" and len(dims) > 2:
        # torch.norm's 'fro' only takes 1 or 2 dims; over more it is the 2-norm of the slice.
        return torch.linalg.vector_norm(t, 2, dim=dims)
    return torch.norm(t, p=n, dim=dims)


def channel_mask(t: torch.Tensor, dim: int, keep: torch.Tensor) -> torch.Tensor:
    """A bool mask of ``t``'s shape keeping the channels selected by ``keep`` along ``dim``."""
    mask = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    index: list[Any] = [slice(None)] * t.dim()
    index[dim] = keep
    mask[tuple(index)] = True
    return mask


def _check_norm(n: Any) -> None:
    if n not in NORMS:
        raise UnsupportedParameterError(f"norm n={n!r} is not one of 1, 2, inf, -inf, 'fro'")


class _ByChannels(PruningMethod):
    """Shared body of the structured methods: choose channels along ``dim`` to keep."""

    amount: Amount
    dim: int
    kind: ClassVar[str] = "structured"

    def __post_init__(self) -> None:
        validate_amount(self.amount)

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        require_dims(t, 2, self.name)
        dim = normalise_dim(self.dim, t.dim(), self.name)
        return restrict_structured(lambda x: self._fresh(x, dim), t, current, dim)

    def _fresh(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        size = t.shape[dim]
        k = count_to_prune(self.amount, size)
        if k == 0:
            return torch.ones(t.shape, dtype=torch.bool, device=t.device)
        return channel_mask(t, dim, self._kept(t, dim, size, k))

    def _kept(self, t: torch.Tensor, dim: int, size: int, k: int) -> torch.Tensor:
        """Indices or a bool selector of the channels to keep when pruning ``k`` of ``size``."""
        raise NotImplementedError


@dataclass(frozen=True)
class LnStructured(_ByChannels):
    """Prune the ``amount`` channels along ``dim`` with the smallest ``n``-norm."""

    amount: Amount = 0.5
    n: Any = 2
    dim: int = 0

    name: ClassVar[str] = "ln_structured"
    summary: ClassVar[str] = "Zero whole rows/channels along dim, those with the smallest Ln norm."

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_norm(self.n)

    def _kept(self, t: torch.Tensor, dim: int, size: int, k: int) -> torch.Tensor:
        return torch.topk(channel_norms(t, self.n, dim), k=size - k, largest=True).indices


@dataclass(frozen=True)
class RandomStructured(_ByChannels):
    """Prune ``amount`` channels along ``dim`` chosen at random (seeded)."""

    amount: Amount = 0.5
    dim: int = 0
    seed: int = 0

    name: ClassVar[str] = "random_structured"
    summary: ClassVar[str] = "Zero randomly chosen whole rows/channels along dim (a baseline)."

    def _kept(self, t: torch.Tensor, dim: int, size: int, k: int) -> torch.Tensor:
        # torch draws the channel scores on the CPU in the default dtype.
        prob = torch.rand(size, generator=seeded_generator(self.seed, torch.device("cpu")))
        threshold = torch.kthvalue(prob, k=k).values
        return (prob > threshold).to(t.device)
