"""Per-layer L1 pruning of big layers through global pruning's selection.

``L1Unstructured.compute_packed`` (what the session calls) skips torch's
``topk`` on layers above ``TOPK_LIMIT`` weights. Its masks must equal torch's
except among weights whose |w| equals the layer's threshold (ties go in flat
order), and it must prune exactly torch's count, fresh or on top of a mask.
The bool API ``compute_mask`` stays torch's kernel, ties included.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import core.common.chunks as chunks
import core.pruning.global_prune as global_prune
import core.pruning.methods.unstructured as unstructured
from core.common.errors import InvalidAmountError, JobCancelled
from core.common.jobs import CancelToken
from core.pruning.masks import PackedMask
from core.pruning.methods import L1Unstructured

SHAPE = (320, 330)  # 105,600 weights: above TOPK_LIMIT
DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


class Holder(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)


def weights(seed: int, dtype: torch.dtype, ties: bool) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if ties:  # seven magnitudes only: thousands of ties at any threshold
        return (torch.randint(-3, 4, SHAPE, generator=gen).double() / 4).to(dtype)
    return torch.randn(SHAPE, generator=gen, dtype=torch.float64).to(dtype)


def torch_mask(w: torch.Tensor, amount, current: torch.Tensor | None) -> torch.Tensor:
    """torch's mask: l1_unstructured, after a custom mask ``current`` when given."""
    holder = Holder(w)
    if current is not None:
        prune.custom_from_mask(holder, "weight", current)
    prune.l1_unstructured(holder, "weight", amount=amount)
    return holder.weight_mask.bool()


@pytest.fixture
def selection_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small chunks; records each time the global selection runs (the new path)."""
    monkeypatch.setattr(chunks, "CHUNK", 1024)
    calls: list[int] = []
    real = unstructured.prune_smallest

    def spy(layer, k, token):
        calls.append(k)
        return (yield from real(layer, k, token))

    monkeypatch.setattr(unstructured, "prune_smallest", spy)
    return calls


def assert_like_torch(
    ours: PackedMask, theirs: torch.Tensor, w: torch.Tensor, current: torch.Tensor | None
) -> None:
    """Equal off the threshold, equal counts, nothing pruned comes back."""
    mine = ours.to_bool()
    before = torch.ones_like(mine) if current is None else current
    assert not (mine & ~before).any(), "a pruned weight came back"
    assert int(mine.sum()) == int(theirs.sum()), "pruned counts differ"
    magnitudes = w.abs().double()
    newly = before & ~theirs
    if not newly.any():
        assert torch.equal(mine, theirs)
        return
    threshold = float(magnitudes[newly].max())
    away = magnitudes != threshold
    assert torch.equal(mine[away], theirs[away]), "masks differ off the threshold"
    # Below the threshold everything remaining goes, above it everything stays.
    assert not mine[before & (magnitudes < threshold)].any()
    assert mine[before & (magnitudes > threshold)].all()


@pytest.mark.parametrize("sampled", [False, True], ids=["exact-pool", "sampled-bracket"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("amount", [0.5, 0.137, 1.0, 0.0, 12_345])
def test_fresh_big_layer_matches_torch_off_ties(
    selection_calls, monkeypatch, sampled, ties, dtype, amount
) -> None:
    if sampled:
        monkeypatch.setattr(global_prune, "EXACT_LIMIT", 1000)
    w = weights(3, dtype, ties)
    ours = L1Unstructured(amount).compute_packed(w, None)
    assert selection_calls, "the big layer did not take the chunked path"
    k = amount if isinstance(amount, int) else round(amount * w.numel())
    assert ours.pruned == k
    assert_like_torch(ours, torch_mask(w, amount, None), w, None)


@pytest.mark.parametrize("sampled", [False, True], ids=["exact-pool", "sampled-bracket"])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("amount", [0.5, 0.9, 777])
def test_further_on_a_big_layer_matches_torch_off_ties(
    selection_calls, monkeypatch, sampled, ties, dtype, amount
) -> None:
    if sampled:
        monkeypatch.setattr(global_prune, "EXACT_LIMIT", 1000)
    original = weights(5, dtype, ties)
    current = torch.rand(SHAPE, generator=torch.Generator().manual_seed(9)) > 0.3
    effective = original * current.to(dtype)
    ours = L1Unstructured(amount).compute_packed(effective, PackedMask.from_bool(current))
    assert selection_calls
    remaining = int(current.sum())
    k = amount if isinstance(amount, int) else round(amount * remaining)
    assert ours.kept == remaining - k
    # torch ranks the effective weights of the still-kept entries.
    assert_like_torch(ours, torch_mask(effective, amount, current), effective, current)


def test_small_layers_keep_torchs_exact_kernel(selection_calls) -> None:
    w = (torch.randint(-2, 3, (200, 300), generator=torch.Generator().manual_seed(1))).float()
    assert w.numel() <= unstructured.TOPK_LIMIT
    ours = L1Unstructured(0.5).compute_packed(w, None)
    assert not selection_calls
    assert torch.equal(ours.to_bool(), torch_mask(w, 0.5, None))  # ties included


def test_compute_mask_stays_torchs_on_big_layers(selection_calls) -> None:
    w = weights(2, torch.float32, ties=True)
    assert torch.equal(L1Unstructured(0.4).compute_mask(w), torch_mask(w, 0.4, None))
    assert not selection_calls


def test_big_layer_count_above_what_remains_is_rejected(selection_calls) -> None:
    w = weights(4, torch.float32, ties=False)
    current = torch.ones(SHAPE, dtype=torch.bool)
    current[:300] = False  # 20 rows x 330 = 6,600 remain
    with pytest.raises(InvalidAmountError):
        L1Unstructured(6_601).compute_packed(w * current, PackedMask.from_bool(current))
    kept = L1Unstructured(6_600).compute_packed(w * current, PackedMask.from_bool(current))
    assert kept.kept == 0


def test_big_layer_checks_the_cancel_token_between_chunks(selection_calls, monkeypatch) -> None:
    w = weights(6, torch.float32, ties=False)
    checks = 0
    token = CancelToken()
    real_check = CancelToken.check

    def check(self: CancelToken) -> None:
        nonlocal checks
        checks += 1
        if checks == 3:
            self.cancel()
        real_check(self)

    monkeypatch.setattr(CancelToken, "check", check)
    with pytest.raises(JobCancelled):
        L1Unstructured(0.5).compute_packed(w, None, token)
    assert checks == 3
