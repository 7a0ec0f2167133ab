"""PruningSession properties: exact undo/redo, originals, set-sparsity, tied weights,
dtypes, picklable models, spilling to disk, cancellation and write failures."""

from __future__ import annotations

import collections
import copy
import gc
import math
import os
import pickle
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import core.common.chunks as chunks
import core.pruning.vault as vault
from core.common.errors import DiskSpaceError, JobCancelled, PruningError
from core.common.jobs import CancelToken, Progress, run_job
from core.pruning.methods import (
    BlockSparsity,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    PruningMethod,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
)
from core.pruning.operations import GlobalPrune, LayerPrune, Operation, Reset
from core.pruning.session import PruningSession

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------- a small model
class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)  # (4, 2, 3, 3): 72
        self.fc1 = nn.Linear(16, 8)  # (8, 16): 128
        self.fc2 = nn.Linear(8, 3)  # (3, 8): 24

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


NAMES = ["conv.weight", "fc1.weight", "fc2.weight"]
INPUT = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0))


def fill_(model: nn.Module, seed: int, ties: bool = False) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if ties:
                values = torch.randint(-2, 3, p.shape, generator=gen).double() / 2
            else:
                values = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_(values.to(p.dtype))
    return model


def net(seed: int = 0, ties: bool = False, dtype: torch.dtype = torch.float32) -> Net:
    with torch.random.fork_rng():
        model = Net()
    return fill_(model.to(dtype), seed, ties)


class Wide(nn.Module):
    """~13k weights: with CHUNK patched to 256, each layer spans many chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 96)
        self.b = nn.Linear(96, 64)
        self.c = nn.Linear(64, 10)


def wide(seed: int = 0) -> Wide:
    with torch.random.fork_rng():
        model = Wide()
    return fill_(model, seed)


WIDE = ["a.weight", "b.weight", "c.weight"]


# --------------------------------------------------------------------- snapshots
State = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int, int]


def snapshot(session: PruningSession) -> State:
    return (
        {k: v.detach().clone() for k, v in session.model.state_dict().items()},
        {n: session.mask(n).clone() for n in session.names},
        session.history.cursor,
        len(session.history.entries),
    )


def same_values(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


def assert_state(
    session: PruningSession, expected: State, history: bool = True, entries: bool = True
) -> None:
    """Same weights and masks; same history cursor (and number of entries)."""
    now = snapshot(session)
    assert same_values(now[0], expected[0]), "weights differ"
    assert same_values(now[1], expected[1]), "masks differ"
    if history:
        assert now[2] == expected[2], "history cursor differs"
        if entries:
            assert now[3] == expected[3], "history entries differ"


def assert_invariants(session: PruningSession, initial: dict[str, torch.Tensor]) -> None:
    for name in session.names:
        original = session.original(name)
        assert torch.equal(original, initial[name]), f"{name}: original changed"
        mask = session.mask(name)
        eff = session.effective(name)
        assert eff.dtype == initial[name].dtype
        assert torch.equal(eff, torch.where(mask, original, torch.zeros_like(original))), name
        packed = session.packed_mask(name)
        assert (packed is None) == bool(mask.all()), name
        assert session.sparsity(name) == pytest.approx(1 - mask.double().mean().item())
    state = session.model.state_dict()
    for key, value in initial.items():
        if key not in session.names:
            assert torch.equal(state[key], value), f"{key} is not a target but changed"


# --------------------------------------------------------------------- random operations
def method_strategy(draw) -> PruningMethod:
    amount = draw(st.one_of(st.floats(0, 1), st.integers(0, 5)), label="amount")
    kind = draw(
        st.sampled_from(
            ["l1", "random", "ln", "random_structured", "quantile", "threshold", "nm", "block"]
        ),
        label="method",
    )
    if kind == "l1":
        return L1Unstructured(amount)
    if kind == "random":
        return RandomUnstructured(amount, seed=draw(st.integers(0, 99)))
    if kind == "ln":
        n = draw(st.sampled_from([1, 2, math.inf, -math.inf]))
        return LnStructured(amount, n=n, dim=draw(st.integers(-2, 1)))
    if kind == "random_structured":
        return RandomStructured(amount, dim=draw(st.integers(-2, 1)), seed=draw(st.integers(0, 9)))
    if kind == "quantile":
        return QuantileRule(draw(st.floats(0, 1)))
    if kind == "threshold":
        return MagnitudeThreshold(draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5])))
    if kind == "nm":
        return NMSparsity(2, 4)  # conv's 18 inputs are not divisible: an error case
    return BlockSparsity(amount, 2, 3, n=draw(st.sampled_from([1, 2])))


@st.composite
def operations(draw) -> Operation:
    targets = tuple(
        draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True), label="on")
    )
    kind = draw(st.sampled_from(["layer", "layer", "layer", "global", "reset"]), label="op")
    if kind == "layer":
        mode = draw(st.sampled_from(["further", "set"]), label="mode")
        return LayerPrune(targets, method_strategy(draw), mode)
    if kind == "global":
        amount = draw(st.one_of(st.floats(0, 1), st.integers(0, 60)), label="amount")
        capped = draw(st.lists(st.sampled_from(targets), max_size=2, unique=True), label="caps")
        caps = tuple((n, draw(st.floats(0, 1))) for n in capped)
        return GlobalPrune(targets, amount, caps)
    return Reset(targets)


def expected_layer_masks(
    session: PruningSession, op: LayerPrune, initial: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """What a LayerPrune must give, computed directly from the method (may raise)."""
    out = {}
    for name in op.targets:
        if op.mode == "set":
            out[name] = op.method.compute_mask(initial[name].clone(), None)
        else:
            current = None if session.packed_mask(name) is None else session.mask(name)
            out[name] = op.method.compute_mask(session.effective(name).clone(), current)
    return out


def run_random_ops(session: PruningSession, ops: list[Operation]) -> None:
    initial = {k: v.clone() for k, v in session.model.state_dict().items()}
    states = [snapshot(session)]
    for op in ops:
        before = snapshot(session)
        expected: dict[str, torch.Tensor] | None = None
        expected_error = False
        if isinstance(op, LayerPrune):
            try:
                expected = expected_layer_masks(session, op, initial)
            except PruningError:
                expected_error = True
        elif isinstance(op, GlobalPrune):
            remaining = sum(int(session.mask(n).sum()) for n in op.targets)
            expected_error = isinstance(op.amount, int) and op.amount > remaining
        try:
            session.apply(op)
        except PruningError:
            assert expected_error, f"{op} raised unexpectedly"
            assert_state(session, before)
            continue
        assert not expected_error, f"{op} should have raised"
        after = snapshot(session)
        assert after[2] == before[2] + 1 and after[3] == after[2]
        if expected is not None:
            for name, mask in expected.items():
                assert torch.equal(session.mask(name), mask), name
        elif isinstance(op, GlobalPrune):
            if not op.max_sparsity:
                k = (
                    op.amount if isinstance(op.amount, int) else round(op.amount * remaining)  # type: ignore[possibly-undefined]
                )
                pruned = sum(int((~after[1][n]).sum()) - int((~before[1][n]).sum()) for n in NAMES)
                assert pruned == k
            for name in NAMES:
                if name not in op.targets:
                    assert torch.equal(after[1][name], before[1][name])
        else:
            for name in op.targets:
                assert bool(session.mask(name).all())
        assert_invariants(session, initial)
        # Undo gives back exactly the previous state; redo exactly this one.
        session.undo()
        assert_state(session, before, entries=False)
        assert session.history.can_redo()
        assert_invariants(session, initial)
        session.redo()
        assert_state(session, after)
        states.append(after)
    # All the way back, then all the way forward.
    final = snapshot(session)
    session.goto(0)
    assert same_values(session.model.state_dict(), initial)
    assert_state(session, states[0], history=False)
    session.goto(len(session.history.entries))
    assert_state(session, final)
    for cursor in range(len(states) - 1, -1, -1):
        session.goto(cursor)
        assert_state(session, states[cursor], history=False)
    if session.history.entries:
        session.goto(1)
        session.apply(Reset(tuple(NAMES)))
        assert not session.history.can_redo()
        assert len(session.history.entries) == 2
        assert_invariants(session, initial)


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    ties=st.booleans(),
    ops=st.lists(operations(), min_size=1, max_size=6),
)
def test_random_operations_undo_and_redo_exactly(seed, ties, ops) -> None:
    session = PruningSession(net(seed, ties), include_bias=False)
    assert session.names == NAMES
    run_random_ops(session, ops)


@settings(FAST, max_examples=15)
@given(seed=st.integers(0, 2**31 - 1), ops=st.lists(operations(), min_size=1, max_size=5))
def test_random_operations_with_spill(seed, ops) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        session = PruningSession(net(seed), spill=True, spill_dir=tmp)
        assert session.vault.spills
        run_random_ops(session, ops)
        folder = session.vault.folder
        assert folder is not None and folder.parent == Path(tmp) and folder.exists()
        session.close()
        assert not folder.exists()


# --------------------------------------------------------------------- set sparsity
@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    ties=st.booleans(),
    name=st.sampled_from(NAMES),
    steps=st.lists(
        st.tuples(st.one_of(st.floats(0, 1), st.integers(0, 24)), st.booleans()),
        min_size=1,
        max_size=4,
    ),
)
def test_set_sparsity_meets_the_exact_count_and_replaces(seed, ties, name, steps) -> None:
    model = net(seed, ties)
    initial = dict(model.state_dict())
    initial = {k: v.clone() for k, v in initial.items()}
    session = PruningSession(model)
    numel = session.info(name).numel
    for amount, further_first in steps:
        if further_first:  # something else in between must not compound
            session.prune(name, L1Unstructured(0.3))
        session.prune(name, L1Unstructured(amount), mode="set")
        expected = amount if isinstance(amount, int) else round(amount * numel)
        assert int((~session.mask(name)).sum()) == expected
        assert torch.equal(session.mask(name), L1Unstructured(amount).compute_mask(initial[name]))
        assert_invariants(session, initial)


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    name=st.sampled_from(NAMES),
    n=st.sampled_from([1, 2, math.inf, -math.inf, "fro"]),
    data=st.data(),
)
def test_set_structured_sparsity_counts_whole_channels(seed, name, n, data) -> None:
    model = net(seed)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model)
    shape = session.info(name).shape
    if n == "fro" and len(shape) == 4:
        n = 2  # torch.norm cannot do 'fro' over three dims (see test_methods_oracle)
    for _ in range(data.draw(st.integers(1, 3), label="steps")):
        dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
        size = shape[dim]
        amount = data.draw(st.one_of(st.floats(0, 1), st.integers(0, size)), label="amount")
        method = LnStructured(amount, n=n, dim=dim)
        session.prune(name, method, mode="set")
        mask = session.mask(name)
        other = [d for d in range(len(shape)) if d != dim % len(shape)]
        dead = int((mask.sum(dim=other) == 0).sum())
        assert dead == (amount if isinstance(amount, int) else round(amount * size))
        assert torch.equal(mask, method.compute_mask(initial[name]))
        assert_invariants(session, initial)


def test_further_compounds_where_set_replaces() -> None:
    session = PruningSession(net(1))
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.prune("fc1.weight", L1Unstructured(0.5))
    assert session.sparsity("fc1.weight") == 0.75
    session.prune("fc1.weight", L1Unstructured(0.5), mode="set")
    assert session.sparsity("fc1.weight") == 0.5
    session.prune("fc1.weight", L1Unstructured(0.25), mode="set")
    assert session.sparsity("fc1.weight") == 0.25
    session.prune("fc1.weight", L1Unstructured(0), mode="set")
    assert session.packed_mask("fc1.weight") is None


# --------------------------------------------------------------------- tied weights
class TiedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 6)
        self.dec = nn.Linear(6, 6)
        self.dec.weight = self.enc.weight
        self.out = nn.Linear(6, 2)


def tied(seed: int = 0) -> TiedNet:
    with torch.random.fork_rng():
        model = TiedNet()
    return fill_(model, seed)


def test_tied_weights_appear_once_and_prune_once() -> None:
    model = tied()
    shared = model.enc.weight
    session = PruningSession(model)
    assert session.names == ["enc.weight", "out.weight"]
    assert session.info("dec.weight").name == "enc.weight"
    session.prune("dec.weight", L1Unstructured(0.5))
    assert int((~session.mask("enc.weight")).sum()) == 18  # once: 50% of 36, not 75%
    assert model.dec.weight is model.enc.weight is shared
    assert torch.equal(session.mask("dec.weight"), session.mask("enc.weight"))
    session.prune(["enc.weight", "dec.weight"], L1Unstructured(0.5))  # same tensor twice
    assert int((~session.mask("enc.weight")).sum()) == 27
    session.undo()
    session.undo()
    assert session.packed_mask("enc.weight") is None
    assert torch.equal(model.dec.weight, tied().enc.weight)


def test_tied_weights_count_once_in_global_pruning() -> None:
    import torch.nn.utils.prune as prune

    model = tied(3)
    twin = copy.deepcopy(model)
    session = PruningSession(model)
    session.global_prune(0.5)
    assert sum(int((~session.mask(n)).sum()) for n in session.names) == 24  # of 36 + 12
    prune.global_unstructured(
        [(twin.enc, "weight"), (twin.out, "weight")], prune.L1Unstructured, amount=0.5
    )
    assert torch.equal(session.mask("enc.weight"), twin.enc.weight_mask.bool())
    assert torch.equal(session.mask("out.weight"), twin.out.weight_mask.bool())
    remaining = int(session.mask("enc.weight").sum())
    session.global_prune(0.5, targets=["enc.weight", "dec.weight"])  # one tensor, named twice
    assert int(session.mask("enc.weight").sum()) == remaining - round(0.5 * remaining)


def test_prunes_tells_targets_by_any_of_their_names() -> None:
    session = PruningSession(tied())
    assert session.prunes("enc.weight") and session.prunes("out.weight")
    assert session.prunes("dec.weight")  # an alias of the tied enc.weight, as canonical takes
    assert not session.prunes("enc.bias")  # a parameter, but not a target
    assert not session.prunes("no.such.weight")
    assert not session.prunes("enc")  # a module name is not a parameter name
    assert session.add_targets(["enc.bias"]) == ("enc.bias",)
    assert session.prunes("enc.bias")  # added (coupled) targets count...
    assert "enc.bias" not in session.weight_names  # ...though global pruning skips them
    assert session.add_targets(["out.bias"], coupled=False) == ("out.bias",)
    assert "out.bias" in session.weight_names  # chosen by the user: global pruning ranks it
    for name in ("enc.weight", "dec.weight", "enc.bias", "enc", "x"):
        try:
            session.canonical(name)
        except KeyError:
            assert not session.prunes(name)
        else:
            assert session.prunes(name)


class TiedHead(nn.Module):
    """A language-model-style head: the output Linear shares the embedding matrix."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight


def test_a_linear_weight_tied_to_an_embedding_is_still_a_default_target() -> None:
    """head.weight is a Linear weight (a default target) even though the tensor is
    first reachable as emb.weight; it must appear once, not vanish."""
    with torch.random.fork_rng():
        model = TiedHead()
    session = PruningSession(model)
    shared = [n for n in session.names if session.model.get_parameter(n) is model.head.weight]
    assert len(shared) == 1, session.names
    assert session.info("head.weight").name == shared[0]
    session.prune("head.weight", L1Unstructured(0.5))
    assert int((~session.mask("head.weight")).sum()) == 20
    only = PruningSession(copy.deepcopy(model), targets=["head.weight"])
    assert len(only.names) == 1


def test_strided_parameters_prune_and_undo_exactly() -> None:
    model = net(9)
    with torch.no_grad():
        model.fc1.weight = nn.Parameter(model.fc1.weight.detach().t().contiguous().t())
    assert not model.fc1.weight.is_contiguous()
    run_random_ops(
        PruningSession(model),
        [
            LayerPrune(("fc1.weight",), L1Unstructured(0.5)),
            LayerPrune(("fc1.weight",), LnStructured(0.5, dim=1)),
            GlobalPrune(tuple(NAMES), 0.4),
            LayerPrune(("fc1.weight",), L1Unstructured(0.2), "set"),
            Reset(("fc1.weight",)),
        ],
    )


# --------------------------------------------------------------------- dtypes, copies
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_precision_dtypes_are_preserved_exactly(dtype: torch.dtype) -> None:
    model = net(4, dtype=dtype)
    session = PruningSession(model)
    ops: list[Operation] = [
        LayerPrune(("conv.weight",), L1Unstructured(0.4)),
        LayerPrune(("fc1.weight",), LnStructured(0.5, n=1, dim=1)),
        GlobalPrune(tuple(NAMES), 0.3),
        LayerPrune(("fc1.weight", "fc2.weight"), QuantileRule(0.6), "set"),
        Reset(("conv.weight",)),
        LayerPrune(("fc1.weight",), NMSparsity(2, 4)),
    ]
    run_random_ops(session, ops)
    for name in NAMES:
        assert dict(model.named_parameters())[name].dtype == dtype
        assert session.effective(name).dtype == dtype
        assert session.original(name).dtype == dtype


def test_pruned_model_is_a_plain_module() -> None:
    model = net(5)
    params_before = {n: p for n, p in model.named_parameters()}
    keys_before = list(model.state_dict())
    session = PruningSession(model)
    session.prune("conv.weight", LnStructured(0.5, dim=0))
    session.global_prune(0.5)
    for module in model.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
    assert list(model.state_dict()) == keys_before  # no weight_orig / weight_mask
    for name, p in model.named_parameters():
        assert p is params_before[name] and isinstance(p, nn.Parameter) and p.requires_grad
    clone = copy.deepcopy(model)
    loaded = pickle.loads(pickle.dumps(model))
    for other in (clone, loaded):
        assert same_values(other.state_dict(), model.state_dict())
        with torch.no_grad():
            assert torch.equal(other(INPUT), model(INPUT))
    # The forward uses the effective weights.
    manual = net(5)
    with torch.no_grad():
        for name in NAMES:
            dict(manual.named_parameters())[name].mul_(session.mask(name))
        assert torch.equal(manual(INPUT), model(INPUT))
    # Copies are independent of the session: undo does not touch them.
    session.undo()
    assert not same_values(clone.state_dict(), model.state_dict())


def test_listeners_hear_about_every_change() -> None:
    session = PruningSession(net(0))
    heard: list[tuple[str, ...]] = []
    unsubscribe = session.subscribe(heard.append)
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.undo()
    session.redo()
    session.global_prune(0.2)
    assert heard == [("fc1.weight",)] * 3 + [tuple(NAMES)]
    unsubscribe()
    session.reset()
    assert len(heard) == 4


# --------------------------------------------------------------------- spill
@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(chunks, "CHUNK", 256)
    yield


SCRIPT: list[Operation] = [
    LayerPrune(("a.weight",), L1Unstructured(0.3)),
    GlobalPrune(tuple(WIDE), 0.4),
    LayerPrune(("b.weight", "c.weight"), RandomUnstructured(0.5, seed=3)),
    LayerPrune(("a.weight",), L1Unstructured(0.1), "set"),
    Reset(("b.weight",)),
    LayerPrune(("b.weight",), LnStructured(0.25, n=2, dim=1)),
    GlobalPrune(("a.weight", "b.weight"), 0.5, (("a.weight", 0.6),)),
]


def test_spilled_session_behaves_identically(small_chunks, tmp_path: Path) -> None:
    plain = PruningSession(wide(7), spill=False)
    spilled = PruningSession(wide(7), spill=True, spill_dir=str(tmp_path))
    assert not plain.vault.spills and spilled.vault.spills
    folder = spilled.vault.folder
    assert folder is not None and folder.parent == tmp_path
    initial = {k: v.clone() for k, v in wide(7).state_dict().items()}
    for op in SCRIPT:
        plain.apply(op)
        spilled.apply(op)
        assert_state(spilled, snapshot(plain))
        assert_invariants(spilled, initial)
    assert spilled.vault.stored_bytes() == plain.vault.stored_bytes() > 0
    assert any(p.stat().st_size > 0 for p in folder.iterdir())
    while plain.history.can_undo():
        plain.undo()
        spilled.undo()
        assert_state(spilled, snapshot(plain))
        assert_invariants(spilled, initial)
    while plain.history.can_redo():
        plain.redo()
        spilled.redo()
        assert_state(spilled, snapshot(plain))
    spilled.close()
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_session_as_context_manager_removes_the_spill_folder(tmp_path: Path) -> None:
    with PruningSession(net(0), spill=True, spill_dir=str(tmp_path)) as session:
        session.global_prune(0.5)
        folder = session.vault.folder
        assert folder is not None and folder.exists()
    assert not folder.exists()


def _no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))


@pytest.mark.parametrize(
    "op",
    [
        LayerPrune(("fc1.weight",), L1Unstructured(0.5)),
        LayerPrune(("conv.weight", "fc2.weight"), LnStructured(0.5)),
        GlobalPrune(tuple(NAMES), 0.5),
    ],
    ids=["layer", "layers", "global"],
)
def test_disk_full_refuses_the_operation_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, op: Operation
) -> None:
    session = PruningSession(net(2), spill=True, spill_dir=str(tmp_path))
    session.prune("fc2.weight", L1Unstructured(0.25))
    before = snapshot(session)
    stored = session.vault.stored_bytes()
    _no_space(monkeypatch)
    with pytest.raises(DiskSpaceError) as info:
        session.apply(op)
    assert isinstance(info.value, PruningError) and isinstance(info.value, OSError)
    assert_state(session, before)
    assert session.vault.stored_bytes() == stored
    monkeypatch.undo()
    session.apply(op)  # works once there is room
    session.undo()
    assert_state(session, before, entries=False)
    session.close()


def test_disk_full_still_allows_undo_redo_and_reset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Restoring values writes nothing to disk, so a full disk must not block it."""
    session = PruningSession(net(2), spill=True, spill_dir=str(tmp_path))
    session.prune("fc1.weight", L1Unstructured(0.5))
    pruned = snapshot(session)
    _no_space(monkeypatch)
    session.undo()
    assert session.packed_mask("fc1.weight") is None
    session.redo()
    assert_state(session, pruned)
    session.reset()
    assert session.packed_mask("fc1.weight") is None
    session.close()


def test_no_disk_check_without_spill(monkeypatch: pytest.MonkeyPatch) -> None:
    session = PruningSession(net(2), spill=False)
    _no_space(monkeypatch)
    session.global_prune(0.5)
    assert session.sparsity("fc1.weight") > 0


# --------------------------------------------------------------------- cancellation
class CountdownToken(CancelToken):
    """Cancels itself at its ``after``-th check (counting from 0); counts every check."""

    def __init__(self, after: int | None = None) -> None:
        super().__init__()
        self.after = after
        self.checks = 0

    def check(self) -> None:
        if self.after is not None and self.checks >= self.after:
            self.cancel()
        self.checks += 1
        super().check()


def _prepared(spill: bool, tmp: Path) -> PruningSession:
    session = PruningSession(wide(11), spill=spill, spill_dir=str(tmp))
    session.prune("a.weight", L1Unstructured(0.3))
    session.prune("b.weight", L1Unstructured(0.2))
    session.undo()  # something to redo, which a new operation must clear
    return session


CANCELLED_OPS: list[Operation] = [
    GlobalPrune(tuple(WIDE), 0.6),
    LayerPrune(tuple(WIDE), L1Unstructured(0.5), "set"),
    Reset(tuple(WIDE)),
]


def _same_as_reference(session: PruningSession, op: Operation, spill: bool, tmp: Path) -> None:
    """After cancellations, the op still gives what an untroubled session gives."""
    reference = _prepared(spill, tmp)
    reference.apply(op)
    session.apply(op)
    assert_state(session, snapshot(reference))
    initial = {k: v.clone() for k, v in wide(11).state_dict().items()}
    assert_invariants(session, initial)
    session.undo()
    reference.undo()
    assert_state(session, snapshot(reference))
    reference.close()


@pytest.mark.parametrize("spill", [False, True], ids=["memory", "spill"])
@pytest.mark.parametrize("op", CANCELLED_OPS, ids=["global", "set", "reset"])
def test_cancel_after_the_first_progress_changes_nothing(
    small_chunks, tmp_path: Path, spill: bool, op: Operation
) -> None:
    session = _prepared(spill, tmp_path)
    before = snapshot(session)
    token = CancelToken()
    job = session.apply_job(op, token)
    first = next(job)
    assert isinstance(first, Progress) and 0.0 <= first.fraction <= 1.0
    token.cancel()
    with pytest.raises(JobCancelled):
        for _ in job:
            pass
    assert_state(session, before)
    assert session.history.can_redo()
    _same_as_reference(session, op, spill, tmp_path)
    session.close()


@pytest.mark.parametrize("spill", [False, True], ids=["memory", "spill"])
@pytest.mark.parametrize("op", CANCELLED_OPS, ids=["global", "set", "reset"])
def test_cancel_at_any_check_changes_nothing(
    small_chunks, tmp_path: Path, spill: bool, op: Operation
) -> None:
    session = _prepared(spill, tmp_path)
    before = snapshot(session)
    stored = session.vault.stored_bytes()
    # How many checks and progress items does a full run make?
    probe = _prepared(spill, tmp_path)
    counter = CountdownToken()
    items: list[Progress] = []
    run_job(probe.apply_job(op, counter), items.append)
    probe.close()
    assert counter.checks >= (3 if isinstance(op, Reset) else 50) and len(items) >= 3
    fractions = [p.fraction for p in items]
    assert fractions == sorted(fractions) and fractions[0] >= 0.0 and fractions[-1] <= 1.0
    # Cancel at a spread of checks (every one near the end, where the commit happens).
    spread = set(range(0, counter.checks, max(1, counter.checks // 25)))
    spread |= set(range(max(0, counter.checks - 12), counter.checks))
    for after in sorted(spread):
        with pytest.raises(JobCancelled):
            run_job(session.apply_job(op, CountdownToken(after)))
        assert_state(session, before)
        assert session.vault.stored_bytes() == stored
    # And after each progress item but the last.
    for index in range(0, len(items) - 1, max(1, len(items) // 10)):
        token = CancelToken()
        job = session.apply_job(op, token)
        with pytest.raises(JobCancelled):
            for i, _ in enumerate(job):
                if i == index:
                    token.cancel()
        assert_state(session, before)
    _same_as_reference(session, op, spill, tmp_path)
    session.close()


@pytest.mark.parametrize("spill", [False, True], ids=["memory", "spill"])
def test_cancelled_undo_and_redo_change_nothing(small_chunks, tmp_path: Path, spill) -> None:
    session = _prepared(spill, tmp_path)
    session.redo()
    session.global_prune(0.5)
    after = snapshot(session)
    counter = CountdownToken()
    probe = _prepared(spill, tmp_path)
    probe.redo()
    probe.global_prune(0.5)
    run_job(probe.undo_job(counter))
    probe.close()
    assert counter.checks >= 3  # one per layer
    for after_checks in range(counter.checks):
        with pytest.raises(JobCancelled):
            run_job(session.undo_job(CountdownToken(after_checks)))
        assert_state(session, after)
    session.undo()
    undone = snapshot(session)
    for after_checks in range(counter.checks):
        with pytest.raises(JobCancelled):
            run_job(session.redo_job(CountdownToken(after_checks)))
        assert_state(session, undone)
    session.redo()
    assert_state(session, after)
    session.close()


# --------------------------------------------------------------------- write failures
@pytest.mark.parametrize("fail_after", [0, 1, 4, 15])
@pytest.mark.parametrize(
    "op",
    [GlobalPrune(tuple(WIDE), 0.6), LayerPrune(tuple(WIDE), L1Unstructured(0.5), "set")],
    ids=["global", "set"],
)
def test_spill_write_failure_changes_nothing(
    small_chunks, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_after: int, op
) -> None:
    session = _prepared(True, tmp_path)
    before = snapshot(session)
    stored = session.vault.stored_bytes()
    real_pwrite = os.pwrite
    calls = 0

    def failing_pwrite(fd, data, offset):
        nonlocal calls
        calls += 1
        if calls > fail_after:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(vault.os, "pwrite", failing_pwrite)
    with pytest.raises(OSError):
        session.apply(op)
    assert calls > fail_after, "the failing write was never reached"
    assert_state(session, before)
    assert session.vault.stored_bytes() == stored
    initial = {k: v.clone() for k, v in wide(11).state_dict().items()}
    assert_invariants(session, initial)
    monkeypatch.setattr(vault.os, "pwrite", real_pwrite)
    _same_as_reference(session, op, True, tmp_path)
    session.close()


# --------------------------------------------------------------------- make permanent
@pytest.mark.parametrize("spill", [False, True], ids=["memory", "spill"])
def test_make_permanent_bakes_in_and_stays_pruned(tmp_path: Path, spill: bool) -> None:
    model = net(6)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model, spill=spill, spill_dir=str(tmp_path))
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.prune("conv.weight", LnStructured(0.5, dim=0))
    session.prune("fc2.weight", L1Unstructured(0.25))
    floor = session.mask("fc1.weight")
    baked = session.effective("fc1.weight").clone()
    session.make_permanent(["fc1.weight", "conv.weight"])
    assert session.history.cursor == 0 and not session.history.entries
    assert not session.history.can_undo() and not session.history.can_redo()
    assert session.is_permanent("fc1.weight") and not session.is_permanent("fc2.weight")
    for name in ("fc1.weight", "conv.weight"):
        assert torch.equal(session.original(name), session.effective(name))
    # fc2 was not made permanent: its original is still there.
    assert torch.equal(session.original("fc2.weight"), initial["fc2.weight"])
    permanent = snapshot(session)

    # Later operations are undoable back to the permanent state.
    session.prune("fc1.weight", L1Unstructured(0.5))
    assert session.sparsity("fc1.weight") == 0.75
    session.global_prune(0.3)
    session.undo()
    session.undo()
    assert_state(session, permanent, entries=False)

    # Reset keeps what was made permanent and restores the rest.
    session.prune(["fc1.weight", "fc2.weight"], L1Unstructured(0.5))
    session.reset()
    assert torch.equal(session.mask("fc1.weight"), floor)
    assert torch.equal(session.effective("fc1.weight"), baked)
    assert session.packed_mask("fc2.weight") is None
    assert torch.equal(session.effective("fc2.weight"), initial["fc2.weight"])
    # Even "set" cannot bring permanently pruned weights back.
    session.prune("fc1.weight", L1Unstructured(0.1), mode="set")
    assert not (session.mask("fc1.weight") & ~floor).any()
    session.goto(0)  # undo the set, the reset and the prune
    assert_state(session, permanent, entries=False)
    assert session.operations[-1].kind == "make_permanent"
    session.close()


def test_unpruned_copy_brings_back_originals_and_leaves_the_session_alone() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model)
    session.prune("0.weight", L1Unstructured(0.6))
    session.prune("2.weight", L1Unstructured(0.3))
    pruned = {k: v.clone() for k, v in model.state_dict().items()}
    dense = session.unpruned_copy()
    assert dense is not model
    for key, value in dense.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, value in model.state_dict().items():
        assert torch.equal(value, pruned[key]), key
    assert (model.get_parameter("0.weight") == 0).sum() > 0


def test_unpruned_copy_after_a_weight_update_is_the_dense_model_before_it() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model)
    session.prune("0.weight", L1Unstructured(0.6))
    tuned = session.effective("0.weight") * 2.0 + 0.5  # e.g. fine-tuning moved the kept ones
    session.update_weights({"0.weight": tuned, "2.bias": torch.zeros(3)}, "fine-tune")
    dense = session.unpruned_copy()
    for key, value in dense.state_dict().items():
        assert torch.equal(value, before[key]), key
    session.undo()
    assert torch.equal(session.unpruned_copy().state_dict()["0.weight"], before["0.weight"])


def test_a_dropped_session_frees_its_model_without_the_cycle_collector():
    """A replaced model's memory comes back at once, not at Python's next full collection."""
    model = nn.Sequential(nn.Linear(8, 8))
    session = PruningSession(model)
    session.prune("0.weight", L1Unstructured(0.5))
    session.undo()
    alive = weakref.ref(model)
    gc.disable()
    try:
        session.close()
        del session, model
        assert alive() is None
    finally:
        gc.enable()
