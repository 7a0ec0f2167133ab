"""Global magnitude pruning against torch.nn.utils.prune.global_unstructured.

torch ranks all remaining |w| of the targets together and prunes the k
smallest, k = round(amount * remaining). Our masks must be identical except
among weights whose |w| equals the threshold exactly (torch's topk breaks
those ties arbitrarily; we break them in flat order), and the pruned count
must equal torch's exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.utils.prune as prune
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import core.common.chunks as chunks
import core.pruning.global_prune as global_prune
from core.pruning.methods import L1Unstructured, LnStructured, RandomUnstructured
from core.pruning.session import PruningSession

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


# --------------------------------------------------------------------- models and twins
def fill_(model: nn.Module, seed: int, ties: bool) -> nn.Module:
    """Overwrite every parameter from a private generator (the global RNG is untouched)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if ties:
                values = torch.randint(-3, 4, p.shape, generator=gen).double() / 4
            else:
                values = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_(values.to(p.dtype))
    return model


def build(kind: str, seed: int, dtype: torch.dtype = torch.float32, ties: bool = False):
    with torch.random.fork_rng():
        if kind == "mlp":
            model: nn.Module = nn.Sequential(
                nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)
            )
        elif kind == "cnn":
            model = nn.Sequential(
                nn.Conv2d(3, 6, 3),
                nn.ReLU(),
                nn.Conv2d(6, 8, 3),
                nn.Flatten(),
                nn.Linear(32, 5),
            )
        elif kind == "big":  # ~190k prunable weights
            model = nn.Sequential(
                nn.Conv2d(16, 32, 3),
                nn.Flatten(),
                nn.Linear(256, 400),
                nn.ReLU(),
                nn.Linear(400, 200),
                nn.ReLU(),
                nn.Linear(200, 10),
            )
        else:  # pragma: no cover
            raise AssertionError(kind)
    return fill_(model.to(dtype), seed, ties)


def weight_names(model: nn.Module) -> list[str]:
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, PRUNABLE)]


def module_of(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name.rpartition(".")[0])


def torch_masks(twin: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    out = {}
    for name in names:
        module = module_of(twin, name)
        mask = getattr(module, "weight_mask", None)
        out[name] = (
            torch.ones(module.weight.shape, dtype=torch.bool) if mask is None else mask.bool()
        )
    return out


def torch_global(twin: nn.Module, names: list[str], amount) -> dict[str, torch.Tensor]:
    params = [(module_of(twin, n), "weight") for n in names]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    return torch_masks(twin, names)


def sync_twin(twin: nn.Module, session: PruningSession, names: list[str]) -> None:
    """Give the torch twin our masks (after a step whose ties torch may break otherwise)."""
    for name in names:
        module = module_of(twin, name)
        if not hasattr(module, "weight_mask"):
            prune.identity(module, "weight")
        with torch.no_grad():
            module.weight_mask.copy_(session.mask(name).to(module.weight_mask.dtype))
        module.weight = module.weight_orig * module.weight_mask


def effective(session: PruningSession, names: list[str]) -> dict[str, torch.Tensor]:
    return {n: session.effective(n).clone() for n in names}


def masks(session: PruningSession, names: list[str]) -> dict[str, torch.Tensor]:
    return {n: session.mask(n) for n in names}


def assert_matches_torch(
    ours: dict[str, torch.Tensor],
    theirs: dict[str, torch.Tensor],
    before_values: dict[str, torch.Tensor],
    before_masks: dict[str, torch.Tensor],
) -> None:
    """Equal masks except where |w| equals the threshold; equal pruned counts."""
    names = list(theirs)
    for n in names:
        assert not (ours[n] & ~before_masks[n]).any(), f"{n}: a pruned weight came back"
    assert sum(int((~ours[n]).sum()) for n in names) == sum(int((~theirs[n]).sum()) for n in names)
    newly = [before_values[n].abs().double()[before_masks[n] & ~theirs[n]] for n in names]
    cut = torch.cat(newly)
    if cut.numel() == 0:
        for n in names:
            assert torch.equal(ours[n], theirs[n]), n
        return
    threshold = float(cut.max())
    for n in names:
        away = before_values[n].abs().double() != threshold
        assert torch.equal(ours[n][away], theirs[n][away]), f"{n}: masks differ off the threshold"


def total_pruned(session: PruningSession, names: list[str] | None = None) -> int:
    return sum(int((~session.mask(n)).sum()) for n in names or session.names)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Force the big-model code paths: sampled bracket, many chunks per layer.

    Yields the bracket widths tried (when the engine's ``_bracket`` helper exists),
    so tests can check the sampled path really ran.
    """
    monkeypatch.setattr(global_prune, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(chunks, "CHUNK", 1024)
    widths: list[float] = []
    real = getattr(global_prune, "_bracket", None)
    if real is not None:

        def spy(layers, q, width):
            widths.append(width)
            return real(layers, q, width)

        monkeypatch.setattr(global_prune, "_bracket", spy)
    yield widths


# --------------------------------------------------------------------- small models vs torch
@FAST
@given(
    kind=st.sampled_from(["mlp", "cnn"]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31 - 1),
    ties=st.booleans(),
    data=st.data(),
)
def test_global_prune_matches_torch(kind, dtype, seed, ties, data) -> None:
    model = build(kind, seed, dtype, ties)
    twin = copy.deepcopy(model)
    session = PruningSession(model)
    names = weight_names(model)
    assert session.names == names
    total = sum(session.info(n).numel for n in names)
    amount = data.draw(st.one_of(st.floats(0, 1), st.integers(0, total)), label="amount")

    before_values, before_masks = effective(session, names), masks(session, names)
    session.global_prune(amount)
    theirs = torch_global(twin, names, amount)
    assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
    expected = amount if isinstance(amount, int) else round(amount * total)
    assert total_pruned(session) == expected
    for n in names:
        ours = session.effective(n)
        assert ours.dtype == dtype
        assert torch.equal(ours, torch.where(session.mask(n), session.original(n), 0))


@FAST
@given(
    kind=st.sampled_from(["mlp", "cnn"]),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31 - 1),
    ties=st.booleans(),
    prior=st.sampled_from(["l1", "random", "ln", "global"]),
    data=st.data(),
)
def test_iterative_global_prune_matches_torch(kind, dtype, seed, ties, prior, data) -> None:
    """A global pruning after a prior pruning ranks only what remains, like torch."""
    model = build(kind, seed, dtype, ties)
    twin = copy.deepcopy(model)
    session = PruningSession(model)
    names = weight_names(model)
    layer = data.draw(st.sampled_from(names), label="layer")
    first = data.draw(st.floats(0, 1), label="first")
    before_values, before_masks = effective(session, names), masks(session, names)
    if prior == "global":
        session.global_prune(first)
        theirs = torch_global(twin, names, first)
        assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
        sync_twin(twin, session, names)  # ties may be broken differently
    else:
        method = {
            "l1": L1Unstructured(first),
            "random": RandomUnstructured(first, seed=seed),
            "ln": LnStructured(first, n=1, dim=0),
        }[prior]
        session.prune(layer, method)
        module = module_of(twin, layer)
        with torch.random.fork_rng():
            if prior == "l1":
                prune.l1_unstructured(module, "weight", first)
            elif prior == "random":
                torch.manual_seed(seed)
                prune.random_unstructured(module, "weight", first)
            else:
                prune.ln_structured(module, "weight", first, n=1, dim=0)
        assert torch.equal(session.mask(layer), module.weight_mask.bool())
    for n in names:
        assert torch.equal(session.effective(n), module_of(twin, n).weight.detach()), n

    remaining = sum(int(session.mask(n).sum()) for n in names)
    second = data.draw(st.one_of(st.floats(0, 1), st.integers(0, remaining)), label="second")
    pruned_before = total_pruned(session)
    before_values, before_masks = effective(session, names), masks(session, names)
    session.global_prune(second)
    theirs = torch_global(twin, names, second)
    assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
    expected = second if isinstance(second, int) else round(second * remaining)
    assert total_pruned(session) - pruned_before == expected


@FAST
@given(seed=st.integers(0, 2**31 - 1), amount=st.floats(0, 1), data=st.data())
def test_global_over_a_subset_leaves_the_others_alone(seed, amount, data) -> None:
    model = build("cnn", seed)
    twin = copy.deepcopy(model)
    names = weight_names(model)
    subset = data.draw(
        st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True),
        label="subset",
    )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model)
    before_values, before_masks = effective(session, subset), masks(session, subset)
    session.global_prune(amount, targets=subset)
    theirs = torch_global(twin, subset, amount)
    assert_matches_torch(masks(session, subset), theirs, before_values, before_masks)
    for key, value in model.state_dict().items():
        if key not in subset:
            assert torch.equal(value, state[key]), key
    for n in names:
        if n not in subset:
            assert session.packed_mask(n) is None


def test_layers_outside_the_session_targets_are_untouched() -> None:
    model = build("mlp", 5)
    twin = copy.deepcopy(model)
    names = weight_names(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    session = PruningSession(model, targets=names[:2])
    assert session.names == names[:2]
    session.global_prune(0.6)
    theirs = torch_global(twin, names[:2], 0.6)
    assert all(torch.equal(session.mask(n), theirs[n]) for n in names[:2])
    assert torch.equal(model.state_dict()[names[2]], state[names[2]])
    for key in state:
        if key.endswith("bias"):
            assert torch.equal(model.state_dict()[key], state[key])


def test_target_order_does_not_change_the_result_off_ties() -> None:
    model = build("cnn", 8)
    names = weight_names(model)
    a = PruningSession(copy.deepcopy(model))
    b = PruningSession(copy.deepcopy(model))
    a.global_prune(0.55, targets=names)
    b.global_prune(0.55, targets=list(reversed(names)))
    for n in names:
        assert torch.equal(a.mask(n), b.mask(n))


def test_ties_at_the_threshold_are_cut_to_the_exact_count() -> None:
    # Every |w| is 1: any k entries are a valid answer, but exactly k of them.
    model = nn.Sequential(nn.Linear(5, 4, bias=False), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(-1.0)
    session = PruningSession(model)
    # 32 weights: half of them, then a quarter of the 16 left, then 3 more.
    for amount, pruned in ((0.5, 16), (0.25, 20), (3, 23)):
        session.global_prune(amount)
        assert total_pruned(session) == pruned, amount


# --------------------------------------------------------------------- the big-model path
@pytest.mark.parametrize(
    ("amount", "ties", "dtype"),
    [
        (0.5, False, torch.float32),
        (0.07, False, torch.float32),
        (0.93, False, torch.float16),
        (12345, False, torch.float32),
        (0.5, True, torch.float32),
        (0.31, True, torch.bfloat16),
        (1.0, False, torch.float32),
        (0.0, False, torch.float32),
    ],
    ids=lambda v: str(v).removeprefix("torch.") if isinstance(v, torch.dtype) else None,
)
def test_big_model_path_matches_torch(small_chunks, amount, ties, dtype) -> None:
    model = build("big", 17, dtype, ties)
    twin = copy.deepcopy(model)
    names = weight_names(model)
    total = sum(p.numel() for n, p in model.named_parameters() if n in names)
    assert total > 100 * global_prune.EXACT_LIMIT
    session = PruningSession(model)
    before_values, before_masks = effective(session, names), masks(session, names)
    session.global_prune(amount)
    if small_chunks and 0 < amount < 1:
        assert math.isfinite(small_chunks[0]), "the sampled bracket was not used"
    theirs = torch_global(twin, names, amount)
    ours = masks(session, names)
    assert_matches_torch(ours, theirs, before_values, before_masks)
    expected = amount if isinstance(amount, int) else round(amount * total)
    assert total_pruned(session) == expected
    for n in names:
        assert torch.equal(session.effective(n), torch.where(ours[n], session.original(n), 0))

    # Deterministic: a fresh session on the same weights, and a redo, give the same masks.
    again = PruningSession(build("big", 17, dtype, ties))
    again.global_prune(amount)
    for n in names:
        assert torch.equal(again.mask(n), ours[n]), n
    session.undo()
    assert all(session.packed_mask(n) is None for n in names)
    for n in names:
        assert torch.equal(session.effective(n), before_values[n])
    session.global_prune(amount)
    for n in names:
        assert torch.equal(session.mask(n), ours[n]), n


@pytest.mark.parametrize("ties", [False, True])
def test_big_model_path_iterative_matches_torch(small_chunks, ties) -> None:
    model = build("big", 23, torch.float32, ties)
    twin = copy.deepcopy(model)
    names = weight_names(model)
    session = PruningSession(model)
    first = [names[2]]
    start_values, start_masks = effective(session, first), masks(session, first)
    session.prune(names[2], L1Unstructured(0.4))
    prune.l1_unstructured(module_of(twin, names[2]), "weight", 0.4)
    # A big layer: torch's mask, except which weights at the layer's threshold go.
    assert_matches_torch(masks(session, first), torch_masks(twin, first), start_values, start_masks)
    sync_twin(twin, session, first)
    for amount in (0.3, 0.5):
        before_values, before_masks = effective(session, names), masks(session, names)
        remaining = sum(int(m.sum()) for m in before_masks.values())
        pruned = total_pruned(session)
        session.global_prune(amount)
        theirs = torch_global(twin, names, amount)
        assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
        assert total_pruned(session) - pruned == round(amount * remaining)
        sync_twin(twin, session, names)


@pytest.mark.parametrize("sample", [64, 512])
def test_unlucky_samples_still_give_the_exact_answer(small_chunks, monkeypatch, sample) -> None:
    """A tiny sample makes the first bracket miss now and then; wider ones must follow."""
    monkeypatch.setattr(global_prune, "_SAMPLE", sample)
    model = build("big", 29)
    twin = copy.deepcopy(model)
    names = weight_names(model)
    session = PruningSession(model)
    before_values, before_masks = effective(session, names), masks(session, names)
    session.global_prune(0.5)
    theirs = torch_global(twin, names, 0.5)
    assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
    for amount in (0.001, 0.999):
        session.undo()
        session.global_prune(amount)
        theirs = torch_global(build("big", 29), names, amount)
        assert_matches_torch(masks(session, names), theirs, before_values, before_masks)
        assert total_pruned(session) == round(amount * sum(m.numel() for m in theirs.values()))


# --------------------------------------------------------------------- caps
@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    amount=st.floats(0, 1),
    cap=st.floats(0, 1),
    data=st.data(),
)
def test_capped_layer_is_water_filled_like_torch(seed, amount, cap, data) -> None:
    """A binding cap prunes the capped layer's own smallest up to the cap and the
    rest of the budget globally among the others."""
    model = build("cnn", seed, torch.float64)  # no ties
    twin = copy.deepcopy(model)
    names = weight_names(model)
    capped = data.draw(st.sampled_from(names), label="capped")
    others = [n for n in names if n != capped]
    total = sum(p.numel() for n, p in model.named_parameters() if n in names)
    numel = dict(model.named_parameters())[capped].numel()
    k = round(amount * total)
    limit = math.floor(cap * numel)

    session = PruningSession(model)
    session.global_prune(amount, max_sparsity={capped: cap})
    ours = masks(session, names)

    plain = torch_global(copy.deepcopy(twin), names, amount)
    if int((~plain[capped]).sum()) <= limit:
        expected = plain
    else:
        prune.l1_unstructured(module_of(twin, capped), "weight", limit)
        other_total = total - numel
        expected = torch_global(twin, others, min(k - limit, other_total))
        expected[capped] = module_of(twin, capped).weight_mask.bool()
    for n in names:
        assert torch.equal(ours[n], expected[n]), n
    assert int((~ours[capped]).sum()) <= limit
    assert total_pruned(session) == min(k, total - numel + limit)


def test_caps_with_a_prior_pruning_count_what_is_already_pruned() -> None:
    model = build("mlp", 3)
    names = weight_names(model)
    session = PruningSession(model)
    session.prune(names[0], L1Unstructured(0.1))
    first_pruned = total_pruned(session, [names[0]])
    numel = session.info(names[0]).numel
    session.global_prune(0.4, max_sparsity={names[0]: 0.2})
    assert total_pruned(session, [names[0]]) <= math.floor(0.2 * numel)
    assert total_pruned(session, [names[0]]) >= first_pruned
    remaining = sum(session.info(n).numel for n in names) - first_pruned
    assert total_pruned(session) - first_pruned == round(0.4 * remaining)


@pytest.mark.parametrize("big", [False, True])
def test_several_caps_hold_and_the_others_absorb_the_budget(monkeypatch, big) -> None:
    if big:
        monkeypatch.setattr(global_prune, "EXACT_LIMIT", 1000)
        monkeypatch.setattr(chunks, "CHUNK", 1024)
    model = build("big" if big else "cnn", 31)
    names = weight_names(model)
    numel = {n: p.numel() for n, p in model.named_parameters() if n in names}
    total = sum(numel.values())
    session = PruningSession(model)
    caps = {names[0]: 0.2, names[-1]: 0.05}
    uncapped = sum(v for n, v in numel.items() if n not in caps)
    amount = 0.45
    assert uncapped >= round(amount * total)  # the others can absorb it all
    session.global_prune(amount, max_sparsity=caps)
    for n, cap in caps.items():
        assert total_pruned(session, [n]) <= math.floor(cap * numel[n]), n
    assert total_pruned(session) == round(amount * total)
    # Among the uncapped layers, the pruned ones are the smallest remaining |w|.
    free = [n for n in names if n not in caps]
    kept = torch.cat(
        [model.state_dict()[n].abs().reshape(-1)[session.mask(n).reshape(-1)] for n in free]
    )
    dropped = torch.cat(
        [session.original(n).abs().reshape(-1)[~session.mask(n).reshape(-1)] for n in free]
    )
    assert float(dropped.max()) <= float(kept.min())


def test_caps_that_forbid_the_budget_prune_less() -> None:
    model = build("mlp", 4)
    names = weight_names(model)
    numel = {n: p.numel() for n, p in model.named_parameters() if n in names}
    session = PruningSession(model)
    session.global_prune(0.9, max_sparsity={n: 0.5 for n in names})
    for n in names:
        assert total_pruned(session, [n]) == math.floor(0.5 * numel[n])


def test_a_cap_given_under_a_tied_alias_is_honoured() -> None:
    """Targets may be named by any alias of a tied weight; so may caps."""

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(10, 10, bias=False)
            self.dec = nn.Linear(10, 10, bias=False)
            self.dec.weight = self.enc.weight
            self.head = nn.Linear(10, 10, bias=False)

    model = fill_(Tied(), 0, ties=False)
    with torch.no_grad():
        model.enc.weight.mul_(0.01)  # the tied weight holds all the smallest |w|
    session = PruningSession(model)
    assert session.names == ["enc.weight", "head.weight"]
    session.global_prune(0.5, max_sparsity={"dec.weight": 0.1})
    assert session.sparsity("enc.weight") <= 0.1


def test_mixed_float32_and_float64_layers_prune_exactly_k() -> None:
    """torch concatenates mixed dtypes in float64; the threshold from a float64
    layer must not be rounded to float32 when the float32 layers are cut."""
    model = nn.Sequential(nn.Linear(4, 1, bias=False), nn.Linear(4, 1, bias=False))
    model[1].double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, 1.0, 2.0, 3.0]]))
        model[1].weight.copy_(torch.tensor([[0.5 + 2.0**-26, 5.0, 6.0, 7.0]], dtype=torch.float64))
    twin = copy.deepcopy(model)
    session = PruningSession(model)
    names = weight_names(model)
    session.global_prune(2)
    theirs = torch_global(twin, names, 2)
    assert total_pruned(session) == 2
    for n in names:
        assert torch.equal(session.mask(n), theirs[n]), n


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
@pytest.mark.parametrize("sampled", [False, True], ids=["exact", "sampled"])
def test_an_empty_layer_beside_a_big_one_is_skipped(monkeypatch, sampled) -> None:
    """A zero-size weight (Linear(0, 5)) has nothing to sample or prune."""
    if sampled:
        monkeypatch.setattr(global_prune, "EXACT_LIMIT", 1000)
        monkeypatch.setattr(chunks, "CHUNK", 1024)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(0, 5), nn.Linear(64, 64))
    session = PruningSession(model)
    assert session.names == ["0.weight", "1.weight"]
    twin = copy.deepcopy(model)
    session.global_prune(0.5)
    theirs = torch_global(twin, ["1.weight"], 0.5)["1.weight"]
    assert session.packed_mask("0.weight") is None
    assert session.sparsity("1.weight") == 0.5
    assert torch.equal(session.mask("1.weight"), theirs)
