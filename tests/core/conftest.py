"""Fixtures shared by the engine tests: small seeded models, their inputs, sessions.

Models are built under a forked RNG from a fixed seed, so ``make_net()`` twice
gives two identical, independent models (what a recipe replays on) and no test
disturbs torch's global random state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from core.pruning.session import PruningSession


class SmallNet(nn.Module):
    """conv → fc1 → fc2 on ``(N, 2, 4, 4)`` inputs: every default target kind, 3 layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)  # weight (4, 2, 3, 3): 72, output (N, 4, 2, 2)
        self.fc1 = nn.Linear(16, 8)  # (8, 16): 128
        self.fc2 = nn.Linear(8, 4)  # (4, 8): 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 4)``."""
        x = torch.relu(self.conv(x)).flatten(1)
        out: torch.Tensor = self.fc2(torch.relu(self.fc1(x)))
        return out


class TiedLM(nn.Module):
    """A tiny language model whose output head shares the embedding's weight."""

    def __init__(self, vocab: int = 12, width: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.fc = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.emb.weight  # tied: one tensor, two names

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., vocab)`` for integer ``tokens``."""
        out: torch.Tensor = self.head(torch.relu(self.fc(self.emb(tokens))))
        return out


def seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` under torch's RNG seeded with ``seed``, leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@pytest.fixture
def make_net() -> Callable[[int], SmallNet]:
    """A builder of :class:`SmallNet` from a seed (same seed, same weights)."""

    def make(seed: int = 0) -> SmallNet:
        model = seeded(SmallNet, seed)
        assert isinstance(model, SmallNet)
        return model

    return make


@pytest.fixture
def make_lm() -> Callable[[int], TiedLM]:
    """A builder of :class:`TiedLM` from a seed (same seed, same weights)."""

    def make(seed: int = 0) -> TiedLM:
        model = seeded(TiedLM, seed)
        assert isinstance(model, TiedLM)
        return model

    return make


@pytest.fixture
def net_input() -> torch.Tensor:
    """A batch of 5 inputs for :class:`SmallNet`."""
    return torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def lm_tokens() -> torch.Tensor:
    """Every token of :class:`TiedLM`'s vocabulary, twice, as a ``(2, 12)`` batch."""
    return torch.arange(12).repeat(2, 1)


@pytest.fixture
def net_session(
    make_net: Callable[[int], SmallNet], net_input: torch.Tensor
) -> Iterator[PruningSession]:
    """A fresh session on ``make_net(0)`` with an example input (for FLOPs)."""
    with PruningSession(make_net(0), example_input=net_input) as session:
        yield session


@pytest.fixture
def lm_session(make_lm: Callable[[int], TiedLM]) -> Iterator[PruningSession]:
    """A fresh session on ``make_lm(0)`` that prunes the tied embedding/head tensor too."""
    with PruningSession(make_lm(0), include_embeddings=True) as session:
        yield session
