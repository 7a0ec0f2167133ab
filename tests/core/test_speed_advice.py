"""Speed advice: which pattern can be faster where, from masks and a (given or measured)
break-even; the break-even measurement and its per-process cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

import core.speed.advice as advice_module
from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, run_job
from core.pruning.methods import CustomMask, L1Unstructured, LnStructured, NMSparsity
from core.pruning.session import PruningSession
from core.speed.advice import (
    LEVELS,
    Advice,
    Breakeven,
    cached_breakeven,
    clear_breakeven_cache,
    measure_breakeven_job,
    speed_advice,
)
from core.speed.semi_structured import is_two_four

HIGH = Breakeven(batch_size=1, ours_sparsity=0.9, torch_sparsity=0.95, threads=1)
LOW = Breakeven(batch_size=1, ours_sparsity=0.3, torch_sparsity=0.5, threads=1)


class Net(nn.Module):
    """A 3x3 conv, a 1x1 conv, two Linear layers (64 wide, multiples of 4 and 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.point = nn.Conv2d(16, 16, 1)
        self.fc = nn.Linear(64, 64)
        self.head = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.point(torch.relu(self.conv(x))).mean(dim=(2, 3))
        out: torch.Tensor = self.head(self.fc(torch.cat([x] * 4, dim=1)))
        return out


@pytest.fixture
def session() -> Iterator[PruningSession]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Net()
    with PruningSession(model) as opened:
        yield opened


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    clear_breakeven_cache()
    yield
    clear_breakeven_cache()


def titled(advice: list[Advice], words: str) -> Advice:
    found = [a for a in advice if words in a.title]
    assert len(found) == 1, [a.title for a in advice]
    return found[0]


def test_nothing_pruned_says_so(session: PruningSession) -> None:
    advice = speed_advice(session, breakeven=HIGH)
    assert [a.title for a in advice] == ["Nothing is pruned"]
    assert advice[0].level == "info"


def test_unstructured_below_the_break_even_is_a_warning(session: PruningSession) -> None:
    session.prune("fc.weight", L1Unstructured(0.5))
    session.prune("point.weight", L1Unstructured(0.95))
    advice = speed_advice(session, breakeven=HIGH)
    below = titled(advice, "below the break-even")
    assert below.level == "warning" and below.layers == ("fc.weight",)
    assert "90%" in below.text and "batch 1" in below.text
    above = titled(advice, "may pay")
    assert above.level == "info" and above.layers == ("point.weight",)


def test_a_lower_break_even_turns_the_warning_into_a_note(session: PruningSession) -> None:
    session.prune("fc.weight", L1Unstructured(0.5))
    advice = speed_advice(session, breakeven=LOW)
    assert not [a for a in advice if "below the break-even" in a.title]
    assert titled(advice, "may pay").layers == ("fc.weight",)


def test_no_break_even_at_all_warns_every_layer(session: PruningSession) -> None:
    session.prune("fc.weight", L1Unstructured(0.98))
    never = Breakeven(batch_size=1, ours_sparsity=None, torch_sparsity=None, threads=1)
    below = titled(speed_advice(session, breakeven=never), "below the break-even")
    assert below.layers == ("fc.weight",) and "no sparsity up to 99%" in below.text


def test_zeros_in_spatial_convolutions_are_flagged(session: PruningSession) -> None:
    session.prune("conv.weight", L1Unstructured(0.95))
    advice = speed_advice(session, breakeven=LOW)
    conv = titled(advice, "convolutions")
    assert conv.layers == ("conv.weight",) and conv.level == "warning"


def test_channel_counts_off_multiples_of_8(session: PruningSession) -> None:
    session.prune("conv.weight", LnStructured(0.25, n=2, dim=0))  # 16 -> 12 channels
    session.prune("fc.weight", LnStructured(0.5, n=2, dim=0))  # 64 -> 32: fine
    channel = titled(speed_advice(session, breakeven=HIGH), "multiple of 8")
    assert channel.layers == ("conv.weight",) and "keeps 12" in channel.text


def test_rows_emptied_by_chance_are_not_channel_pruning(session: PruningSession) -> None:
    mask = torch.ones(64, 64, dtype=torch.bool)
    mask[::2, ::2] = False  # a checkerboard: 50% unstructured, no whole row or column
    mask[1::2, 1::2] = False
    mask[5] = False  # one row (1.6% of rows) empty
    session.prune("fc.weight", CustomMask(mask))
    advice = speed_advice(session, breakeven=HIGH)
    assert not [a for a in advice if "multiple of 8" in a.title]


def test_two_four_without_a_gpu(session: PruningSession) -> None:
    session.prune("fc.weight", NMSparsity(2, 4))
    advice = speed_advice(session, device="cpu", breakeven=HIGH)
    two_four = titled(advice, "2:4")
    assert two_four.level == "warning" and two_four.layers == ("fc.weight",)
    assert "NVIDIA" in two_four.text
    assert not [a for a in advice if "break-even" in a.title]  # 2:4 is not judged as loose


def test_two_four_detection() -> None:
    mask = torch.tensor([[1, 1, 0, 0, 0, 1, 0, 1]], dtype=torch.bool)
    assert is_two_four(mask, strict=True)
    sparser = torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    assert is_two_four(sparser) and not is_two_four(sparser, strict=True)
    assert not is_two_four(torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]], dtype=torch.bool))
    assert not is_two_four(torch.ones(2, 8, dtype=torch.bool))
    assert not is_two_four(torch.zeros(2, 6, dtype=torch.bool))  # not groups of 4


def test_break_even_is_measured_and_cached() -> None:
    found = run_job(measure_breakeven_job(1, size=96, threads=1))
    assert found.batch_size == 1 and found.threads == 1 and found.size == 96
    for level in (found.ours_sparsity, found.torch_sparsity):
        assert level is None or level in LEVELS
    again = run_job(measure_breakeven_job(1, size=96, threads=1))
    assert again is found
    assert cached_breakeven(1, threads=1) is found
    assert cached_breakeven(4, threads=1) is None
    fresh = run_job(measure_breakeven_job(1, size=96, threads=1, refresh=True))
    assert fresh is not found


def test_advice_measures_a_missing_break_even(
    session: PruningSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = advice_module.measure_breakeven_job
    calls: list[int] = []

    def small(batch_size: int, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(batch_size)
        return original(batch_size, size=64, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(advice_module, "measure_breakeven_job", small)
    session.prune("fc.weight", L1Unstructured(0.5))
    advice = speed_advice(session, batch_size=2)
    assert calls == [2]
    assert any("fc.weight" in a.layers for a in advice)
    speed_advice(session, batch_size=2)
    assert calls == [2]  # the second time, from the cache


def test_break_even_measurement_can_be_cancelled() -> None:
    token = CancelToken()
    job = measure_breakeven_job(1, size=64, threads=1, token=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)
    assert cached_breakeven(1, threads=1) is None


def test_a_group_prune_is_structured_in_the_next_layers_inputs_too() -> None:
    """Group pruning empties the next layer's input columns: nothing there for sparse kernels."""
    from core.demos import load_demo
    from core.pruning.groups import GroupPrune

    demo = load_demo("cnn")
    grouped = PruningSession(demo.model, example_input=demo.example_input)
    grouped.apply(GroupPrune(0.5))
    advice = speed_advice(grouped, breakeven=HIGH)
    assert not [a for a in advice if a.level == "warning"], [a.title for a in advice]
