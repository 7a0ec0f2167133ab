"""Bad input gives a clear exception that names the layer, and changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import core.common.chunks as chunks
import core.pruning.global_prune as global_prune
from core.common.errors import (
    InvalidAmountError,
    InvalidMaskError,
    NonFiniteWeightsError,
    PruningError,
    UnknownParameterError,
    UnsupportedParameterError,
)
from core.pruning.methods import (
    BlockSparsity,
    CustomMask,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
    make_method,
)
from core.pruning.operations import GlobalPrune, LayerPrune, Reset, operation_from_dict
from core.pruning.session import PruningSession


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)  # (4, 2, 3, 3)
        self.fc = nn.Linear(18, 6)  # (6, 18)
        self.head = nn.Linear(6, 3)  # (3, 6)


def net(seed: int = 0) -> Net:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return Net()


def state(session: PruningSession):
    return (
        {k: v.clone() for k, v in session.model.state_dict().items()},
        {n: session.mask(n) for n in session.names},
        session.history.cursor,
        len(session.history.entries),
        session.vault.stored_bytes(),
    )


def assert_unchanged(session: PruningSession, before) -> None:
    now = state(session)
    assert now[0].keys() == before[0].keys()
    for key in before[0]:  # NaN-aware, bit-exact
        torch.testing.assert_close(now[0][key], before[0][key], rtol=0, atol=0, equal_nan=True)
    for name in before[1]:
        assert torch.equal(now[1][name], before[1][name]), name
    assert now[2:] == before[2:]


@pytest.fixture
def session() -> PruningSession:
    s = PruningSession(net(), include_bias=True)
    s.prune("fc.weight", L1Unstructured(0.25))  # some history and stashed values
    return s


# --------------------------------------------------------------------- unknown names
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.prune("nope.weight", L1Unstructured(0.5)),
        lambda s: s.prune(["fc.weight", "nope.weight"], L1Unstructured(0.5)),
        lambda s: s.global_prune(0.5, targets=["conv.weight", "nope.weight"]),
        lambda s: s.reset(["nope.weight"]),
        lambda s: s.make_permanent(["nope.weight"]),
        lambda s: s.mask("nope.weight"),
        lambda s: s.original("nope.weight"),
        lambda s: s.effective("nope.weight"),
        lambda s: s.sparsity("nope.weight"),
        lambda s: s.info("nope.weight"),
    ],
)
def test_unknown_layer_is_named(session: PruningSession, call) -> None:
    before = state(session)
    with pytest.raises(UnknownParameterError) as info:
        call(session)
    assert "nope.weight" in str(info.value)
    assert info.value.name == "nope.weight"
    assert isinstance(info.value, PruningError) and isinstance(info.value, KeyError)
    assert_unchanged(session, before)


def test_unknown_layer_message_lists_known_ones(session: PruningSession) -> None:
    with pytest.raises(UnknownParameterError, match=r"conv\.weight"):
        session.prune("conv.weights", L1Unstructured(0.5))


def test_non_target_parameters_are_unknown() -> None:
    session = PruningSession(net())  # biases are not targets by default
    with pytest.raises(UnknownParameterError, match=r"fc\.bias"):
        session.prune("fc.bias", L1Unstructured(0.5))
    with pytest.raises(UnknownParameterError, match="missing"):
        PruningSession(net(), targets=["fc.weight", "missing"])


# --------------------------------------------------------------------- amounts
@pytest.mark.parametrize(
    "amount", [-0.1, 1.5, math.nan, math.inf, -math.inf, -1, True, "0.5", None]
)
@pytest.mark.parametrize(
    "method", [L1Unstructured, RandomUnstructured, LnStructured, RandomStructured, BlockSparsity]
)
def test_bad_amounts_are_refused_up_front(method, amount) -> None:
    with pytest.raises(InvalidAmountError):
        method(amount)


@pytest.mark.parametrize("amount", [-0.1, 1.5, math.nan, math.inf, -1, True])
def test_bad_global_amounts_are_refused(session: PruningSession, amount) -> None:
    before = state(session)
    with pytest.raises(InvalidAmountError):
        session.global_prune(amount)
    with pytest.raises(InvalidAmountError):
        GlobalPrune(("fc.weight",), amount)
    assert_unchanged(session, before)


@pytest.mark.parametrize(
    ("target", "method", "limit"),
    [
        ("fc.weight", L1Unstructured(82), 81),  # 27 of 108 already pruned: counts are
        ("fc.weight", RandomUnstructured(82), 81),  # relative to what remains
        ("conv.weight", RandomUnstructured(73), 72),
        ("conv.weight", LnStructured(5, dim=0), 4),
        ("fc.weight", RandomStructured(19, dim=1), 18),
        ("head.weight", BlockSparsity(3, 4, 4), 2),  # a 3x6 matrix has two 4x4 blocks
    ],
)
def test_int_amount_above_the_count_names_the_layer(
    session: PruningSession, target, method, limit
) -> None:
    before = state(session)
    with pytest.raises(InvalidAmountError) as info:
        session.prune(target, method)
    assert target in str(info.value)
    assert str(limit) in str(info.value)
    assert_unchanged(session, before)
    session.prune(target, method.with_amount(limit))  # the limit itself is fine


def test_int_amount_above_the_count_in_set_mode_counts_everything(session) -> None:
    session.prune("fc.weight", L1Unstructured(108), mode="set")  # set: of the original 108
    assert session.sparsity("fc.weight") == 1.0
    before = state(session)
    with pytest.raises(InvalidAmountError, match=r"fc\.weight"):
        session.prune("fc.weight", L1Unstructured(109), mode="set")
    assert_unchanged(session, before)


def test_global_int_amount_above_the_remaining_count(session: PruningSession) -> None:
    remaining = sum(int(session.mask(n).sum()) for n in ("conv.weight", "fc.weight"))
    before = state(session)
    with pytest.raises(InvalidAmountError, match=str(remaining)):
        session.global_prune(remaining + 1, targets=["conv.weight", "fc.weight"])
    assert_unchanged(session, before)
    session.global_prune(remaining, targets=["conv.weight", "fc.weight"])
    assert session.sparsity("conv.weight") == session.sparsity("fc.weight") == 1.0


def test_bad_caps_are_refused(session: PruningSession) -> None:
    before = state(session)
    with pytest.raises(PruningError, match=r"head\.weight"):
        session.global_prune(0.5, targets=["conv.weight"], max_sparsity={"head.weight": 0.5})
    with pytest.raises(PruningError, match=r"conv\.weight"):
        session.global_prune(0.5, max_sparsity={"conv.weight": 1.5})
    with pytest.raises(PruningError):
        session.global_prune(0.5, max_sparsity={"conv.weight": math.nan})
    assert_unchanged(session, before)


# --------------------------------------------------------------------- masks
def test_custom_mask_of_wrong_shape_names_the_layer(session: PruningSession) -> None:
    before = state(session)
    with pytest.raises(InvalidMaskError) as info:
        session.prune("conv.weight", CustomMask(torch.ones(4, 18, dtype=torch.bool)))
    assert "conv.weight" in str(info.value)
    assert "(4, 2, 3, 3)" in str(info.value)
    # One good and one bad target: nothing at all is applied.
    with pytest.raises(InvalidMaskError, match=r"head\.weight"):
        session.prune(["fc.weight", "head.weight"], CustomMask(torch.ones(6, 18, dtype=torch.bool)))
    assert_unchanged(session, before)


@pytest.mark.parametrize(
    "mask", [torch.ones(6, 18), torch.ones(6, 18, dtype=torch.int32), np.ones((6, 18)), "mask"]
)
def test_custom_mask_of_wrong_dtype_is_refused(mask) -> None:
    with pytest.raises(InvalidMaskError):
        CustomMask(mask)


# --------------------------------------------------------------------- unsupported parameters
@pytest.mark.parametrize(
    "method",
    [
        LnStructured(0.5),
        LnStructured(0.5, n=1, dim=-1),
        RandomStructured(0.5),
        NMSparsity(2, 4),
        BlockSparsity(0.5),
    ],
)
@pytest.mark.parametrize("mode", ["further", "set"])
def test_structured_methods_on_a_bias_name_the_layer(session, method, mode) -> None:
    before = state(session)
    with pytest.raises(UnsupportedParameterError) as info:
        session.prune("fc.bias", method, mode=mode)
    assert "fc.bias" in str(info.value)
    if not isinstance(method, NMSparsity):  # no weight here has a width divisible by 4
        with pytest.raises(UnsupportedParameterError, match=r"conv\.bias"):
            session.prune(["fc.weight", "conv.bias"], method, mode=mode)
    assert_unchanged(session, before)


def test_unstructured_methods_work_on_a_bias(session: PruningSession) -> None:
    session.prune("fc.bias", L1Unstructured(0.5))
    assert session.sparsity("fc.bias") == 0.5


def test_out_of_range_dim_names_the_layer(session: PruningSession) -> None:
    before = state(session)
    with pytest.raises(UnsupportedParameterError, match=r"head\.weight"):
        session.prune("head.weight", LnStructured(0.5, dim=2))
    with pytest.raises(UnsupportedParameterError, match=r"conv\.weight"):
        session.prune("conv.weight", RandomStructured(0.5, dim=-5))
    with pytest.raises(UnsupportedParameterError, match=r"conv\.weight.*divisible"):
        session.prune("conv.weight", NMSparsity(4, 8))
    assert_unchanged(session, before)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: LnStructured(0.5, n=3),
        lambda: LnStructured(0.5, n="nuc"),
        lambda: NMSparsity(5, 4),
        lambda: BlockSparsity(0.5, 0, 2),
        lambda: MagnitudeThreshold(-1.0),
        lambda: QuantileRule(3),
    ],
)
def test_bad_method_parameters_are_refused(bad) -> None:
    with pytest.raises(PruningError):
        bad()


def test_bad_operation_specs_are_refused() -> None:
    with pytest.raises(PruningError, match="mode"):
        LayerPrune(("fc.weight",), L1Unstructured(0.5), "replace")  # type: ignore[arg-type]
    with pytest.raises(PruningError, match="unknown pruning method"):
        make_method("l3_unstructured", amount=0.5)
    with pytest.raises(PruningError):
        make_method("l1_unstructured", amout=0.5)
    with pytest.raises(PruningError):
        operation_from_dict({"op": "shrink", "targets": []})
    with pytest.raises(PruningError):
        operation_from_dict({"op": "layer_prune"})


def test_nothing_to_undo_or_redo() -> None:
    session = PruningSession(net())
    with pytest.raises(PruningError, match="undo"):
        session.undo()
    with pytest.raises(PruningError, match="redo"):
        session.redo()
    with pytest.raises(IndexError):
        session.goto(1)


# --------------------------------------------------------------------- non-finite weights
def _poison(session: PruningSession, name: str, value: float) -> None:
    with torch.no_grad():
        flat = session.model.get_parameter(name).view(-1)
        index = int(torch.nonzero(flat).reshape(-1)[-1])  # a kept entry
        flat[index] = value
    # Written behind the session's back: adopted before the next operation.
    assert session.check_outside_changes() == (name,)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "method",
    [
        L1Unstructured(0.5),
        RandomUnstructured(0.5),
        LnStructured(0.5),
        QuantileRule(0.5),
        MagnitudeThreshold(0.1),
        NMSparsity(2, 6),
        BlockSparsity(0.5, 2, 2),
    ],
)
def test_non_finite_weights_name_the_layer_in_layer_pruning(method, value) -> None:
    session = PruningSession(net())
    session.prune("conv.weight", L1Unstructured(0.25))
    _poison(session, "fc.weight", value)
    before = state(session)
    for mode in ("further", "set"):
        with pytest.raises(NonFiniteWeightsError) as info:
            session.prune(["conv.weight", "fc.weight"], method, mode=mode)
        assert "fc.weight" in str(info.value)
        assert_unchanged(session, before)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("big", [False, True], ids=["exact", "sampled"])
def test_non_finite_weights_name_the_layer_in_global_pruning(monkeypatch, value, big) -> None:
    if big:
        monkeypatch.setattr(global_prune, "EXACT_LIMIT", 16)
        monkeypatch.setattr(chunks, "CHUNK", 64)
    session = PruningSession(net())
    session.prune("conv.weight", L1Unstructured(0.25))
    _poison(session, "fc.weight", value)
    before = state(session)
    for amount in (0.5, 0.01, 1.0, 10):
        with pytest.raises(NonFiniteWeightsError) as info:
            session.global_prune(amount)
        assert "fc.weight" in str(info.value)
        with pytest.raises(NonFiniteWeightsError, match=r"fc\.weight"):
            session.global_prune(amount, max_sparsity={"fc.weight": 0.1})
        assert_unchanged(session, before)
    # Layers without the bad value can still be pruned together.
    session.global_prune(0.5, targets=["conv.weight", "head.weight"])
    assert session.sparsity("head.weight") > 0


def test_reset_ignores_non_finite_weights() -> None:
    """Reset computes nothing from the values, so a NaN elsewhere does not block it."""
    session = PruningSession(net())
    session.prune("fc.weight", L1Unstructured(0.5))
    _poison(session, "fc.weight", math.nan)
    session.apply(Reset(("fc.weight",)))
    assert session.packed_mask("fc.weight") is None
