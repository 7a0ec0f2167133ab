"""Scorers and patterns compose freely: any importance with any pattern gives a valid mask."""

from __future__ import annotations

import math

import pytest
import torch

from core.common.errors import UnsupportedParameterError
from core.pruning.importance import Magnitude, RandomScores
from core.pruning.methods import RandomUnstructured
from core.pruning.methods.patterns import Blocks, Channels, Entries, NOfM


def weights(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_random_entry_scores_are_torchs_draws_negated() -> None:
    w = weights((5, 7))
    with torch.random.fork_rng():
        torch.manual_seed(11)
        draws = torch.rand_like(w)
    assert torch.equal(RandomScores(11).entry_scores(w), -draws)
    with torch.random.fork_rng():
        torch.manual_seed(11)
        channel_draws = torch.rand(7)
    assert torch.equal(RandomScores(11).channel_scores(w, 1), channel_draws)


def test_magnitude_scores() -> None:
    w = weights((4, 3, 2, 2))
    assert torch.equal(Magnitude(1).entry_scores(w), w.abs())
    assert torch.equal(Magnitude(2).channel_scores(w, 0), torch.norm(w, p=2, dim=[1, 2, 3]))
    fro = Magnitude("fro").channel_scores(w, 1)
    assert torch.allclose(fro, torch.linalg.vector_norm(w, 2, dim=[0, 2, 3]))
    blocks = w.reshape(4, -1).reshape(2, 2, 3, 4)  # (grid_rows, 2, grid_cols, 4)
    assert torch.allclose(Magnitude(1).block_scores(blocks), blocks.abs().sum(dim=(1, 3)))
    assert torch.allclose(Magnitude(2).block_scores(blocks), blocks.pow(2).sum(dim=(1, 3)))
    with pytest.raises(UnsupportedParameterError):
        Magnitude(math.inf).block_scores(blocks)


def test_entries_with_random_scores_is_random_unstructured() -> None:
    w = weights((6, 9))
    mask = Entries().prune(w, None, RandomScores(4), 0.5)
    assert torch.equal(mask, RandomUnstructured(0.5, seed=4).compute_mask(w))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_channels_with_any_scorer_prune_whole_channels(dim: int) -> None:
    w = weights((6, 8, 3))
    size = w.shape[dim]
    other = [d for d in range(3) if d != dim % 3]
    for importance in (Magnitude(1), RandomScores(3), RandomScores(4)):
        mask = Channels(dim).prune(w, None, importance, 2)
        kept = mask.sum(dim=other)
        assert set(kept.tolist()) <= {0, w.numel() // size}, "a channel is partly pruned"
        assert int((kept == 0).sum()) == 2
    by_l1 = Channels(dim).prune(w, None, Magnitude(1), 2).sum(dim=other) != 0
    norms = w.abs().sum(dim=other)
    assert float(norms[~by_l1].max()) <= float(norms[by_l1].min())
    assert not torch.equal(
        Channels(dim).prune(w, None, RandomScores(3), size // 2),
        Channels(dim).prune(w, None, RandomScores(5), size // 2),
    )


def test_n_of_m_with_random_scores_keeps_n_per_group() -> None:
    w = weights((5, 16))
    first = NOfM(1, 4).prune(w, None, RandomScores(1), 0)
    assert torch.equal(first.reshape(5, 4, 4).sum(-1), torch.ones(5, 4, dtype=torch.long))
    assert torch.equal(first, NOfM(1, 4).prune(w, None, RandomScores(1), 0))
    assert not torch.equal(first, NOfM(1, 4).prune(w, None, RandomScores(2), 0))
    current = torch.rand(5, 16, generator=torch.Generator().manual_seed(0)) > 0.5
    again = NOfM(1, 4).prune(w, current, RandomScores(1), 0)
    assert not (again & ~current).any()
    live = current.reshape(5, 4, 4).sum(-1)
    assert torch.equal(again.reshape(5, 4, 4).sum(-1), live.clamp(max=1))


def test_blocks_with_random_scores_prune_whole_blocks() -> None:
    w = weights((6, 10))
    mask = Blocks(3, 4).prune(w, None, RandomScores(8), 2)  # a 2 x 3 grid
    states = [[bool(mask[r : r + 3, c : c + 4].any()) for c in (0, 4, 8)] for r in (0, 3)]
    for r in (0, 3):
        for c in (0, 4, 8):
            block = mask[r : r + 3, c : c + 4]
            assert bool(block.all()) or not bool(block.any())
    assert sum(not s for row in states for s in row) == 2
    assert torch.equal(mask, Blocks(3, 4).prune(w, None, RandomScores(8), 2))
