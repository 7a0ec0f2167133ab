"""Pruning methods against oracles: torch.nn.utils.prune for the shared methods,
numpy for the quantile rule, brute force for the pattern methods.

The shared methods use torch's own kernels, so masks must be *identical* to
torch's, ties included (tensors drawn from {-2..2} have many equal |w|).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from core.common.errors import InvalidAmountError, InvalidMaskError, UnsupportedParameterError
from core.pruning.methods import (
    BlockSparsity,
    CustomMask,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    PruningMethod,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
    make_method,
)
from core.pruning.methods.rules import linear_quantile

FAST = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
NORMS = (1, 2, math.inf, -math.inf, "fro")

shapes_any = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)
shapes_2d_up = st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple)
seeds = st.integers(0, 2**31 - 1)


def make_weight(shape: tuple[int, ...], dtype: torch.dtype, seed: int, ties: bool) -> torch.Tensor:
    """Random weights; ``ties`` draws from {-2, -1, 0, 1, 2} so many |w| are equal."""
    gen = torch.Generator().manual_seed(seed)
    if ties:
        return torch.randint(-2, 3, shape, generator=gen).to(dtype)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)


class Holder(nn.Module):
    """A module with one registered ``weight`` parameter, for torch's prune functions."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.clone(), requires_grad=False)


def torch_prune(module: nn.Module, method: PruningMethod) -> torch.Tensor:
    """Apply the torch counterpart of ``method`` to ``module.weight``; return its bool mask."""
    with torch.random.fork_rng():
        if isinstance(method, L1Unstructured):
            prune.l1_unstructured(module, "weight", amount=method.amount)
        elif isinstance(method, RandomUnstructured):
            torch.manual_seed(method.seed)
            prune.random_unstructured(module, "weight", amount=method.amount)
        elif isinstance(method, LnStructured):
            prune.ln_structured(module, "weight", amount=method.amount, n=method.n, dim=method.dim)
        elif isinstance(method, RandomStructured):
            torch.manual_seed(method.seed)
            prune.random_structured(module, "weight", amount=method.amount, dim=method.dim)
        else:  # pragma: no cover - test bug
            raise AssertionError(f"no torch counterpart for {method}")
    return module.weight_mask.bool()


def amounts(size: int) -> st.SearchStrategy[float | int]:
    """Float fractions in [0, 1] (with the round-half edges) or int counts 0..size."""
    halves = [(i + 0.5) / size for i in range(size)] if size else []
    floats = st.floats(0.0, 1.0, allow_nan=False)
    if halves:
        floats = st.one_of(floats, st.sampled_from(halves))
    return st.one_of(floats, st.integers(0, size))


def live_channels(mask: torch.Tensor | None, shape: tuple[int, ...], dim: int) -> int:
    if mask is None:
        return shape[dim]
    other = [d for d in range(len(shape)) if d != dim]
    return int((mask.sum(dim=other) != 0).sum()) if other else int(mask.sum())


# --------------------------------------------------------------------- single step vs torch
@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    data=st.data(),
)
def test_l1_unstructured_matches_torch(shape, dtype, seed, ties, data) -> None:
    w = make_weight(shape, dtype, seed, ties)
    amount = data.draw(amounts(w.numel()), label="amount")
    method = L1Unstructured(amount)
    ours = method.compute_mask(w)
    expected = torch_prune(Holder(w), method)
    assert ours.dtype == torch.bool
    assert ours.shape == w.shape
    assert torch.equal(ours, expected)
    k = amount if isinstance(amount, int) else round(amount * w.numel())
    assert int((~ours).sum()) == k


@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    method_seed=seeds,
    data=st.data(),
)
def test_random_unstructured_matches_torch(shape, dtype, seed, method_seed, data) -> None:
    w = make_weight(shape, dtype, seed, ties=False)
    amount = data.draw(amounts(w.numel()), label="amount")
    method = RandomUnstructured(amount, seed=method_seed)
    ours = method.compute_mask(w)
    assert torch.equal(ours, torch_prune(Holder(w), method))
    # Reproducible: the same seed gives the same mask, whatever the global RNG state.
    with torch.random.fork_rng():
        torch.manual_seed(method_seed + 1)
        assert torch.equal(method.compute_mask(w), ours)


@FAST
@given(
    shape=shapes_2d_up,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    n=st.sampled_from(NORMS),
    data=st.data(),
)
def test_ln_structured_matches_torch(shape, dtype, seed, ties, n, data) -> None:
    # 'fro' over three reduced dims is a torch error (see the dedicated test below).
    assume(not (n == "fro" and len(shape) == 4))
    w = make_weight(shape, dtype, seed, ties)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    amount = data.draw(amounts(shape[dim]), label="amount")
    method = LnStructured(amount, n=n, dim=dim)
    ours = method.compute_mask(w)
    assert torch.equal(ours, torch_prune(Holder(w), method))
    k = amount if isinstance(amount, int) else round(amount * shape[dim])
    assert live_channels(ours, shape, dim % len(shape)) == shape[dim] - k


@FAST
@given(
    shape=shapes_2d_up,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    method_seed=seeds,
    data=st.data(),
)
def test_random_structured_matches_torch(shape, dtype, seed, method_seed, data) -> None:
    w = make_weight(shape, dtype, seed, ties=True)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    amount = data.draw(amounts(shape[dim]), label="amount")
    method = RandomStructured(amount, dim=dim, seed=method_seed)
    ours = method.compute_mask(w)
    assert torch.equal(ours, torch_prune(Holder(w), method))


@pytest.mark.parametrize(
    "layer",
    [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(3, 6, 3), lambda: nn.Conv1d(2, 4, 2)],
    ids=["linear", "conv2d", "conv1d"],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_real_layers_match_torch(layer, dtype: torch.dtype) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        module = layer().to(dtype)
    w = module.weight.detach().clone()
    for method in (
        L1Unstructured(0.37),
        RandomUnstructured(0.5, seed=11),
        LnStructured(0.5, n=1, dim=0),
        # torch.norm(p='fro') cannot reduce three dims: 'fro' only below 4-D.
        LnStructured(2, n="fro" if w.dim() < 4 else 2, dim=1),
        LnStructured(0.4, n=-math.inf, dim=-1),
        RandomStructured(0.5, dim=1, seed=5),
    ):
        twin = copy.deepcopy(module)
        assert torch.equal(method.compute_mask(w), torch_prune(twin, method)), method


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_fro_norm_on_conv2d_weights_is_a_clear_error_or_the_2_norm(dim: int) -> None:
    """torch.norm(p='fro') refuses three reduced dims, so torch's own ln_structured
    crashes on every Conv2d weight with n='fro'. The engine must not leak that raw
    RuntimeError: either refuse clearly (a PruningError) or use the Frobenius norm
    of each slice, which is its 2-norm."""
    w = make_weight((4, 3, 2, 2), torch.float32, 0, ties=False)
    try:
        mask = LnStructured(0.5, n="fro", dim=dim).compute_mask(w)
    except UnsupportedParameterError:
        return
    assert torch.equal(mask, LnStructured(0.5, n=2, dim=dim).compute_mask(w))


def test_structured_methods_need_two_dims_like_torch() -> None:
    w = torch.randn(5)
    for method in (LnStructured(0.5), RandomStructured(0.5)):
        with pytest.raises(UnsupportedParameterError):
            method.compute_mask(w)
    with pytest.raises(UnsupportedParameterError):
        LnStructured(0.5, dim=2).compute_mask(torch.randn(3, 4))
    with pytest.raises(UnsupportedParameterError):
        RandomStructured(0.5, dim=-3).compute_mask(torch.randn(3, 4))


def test_int_amount_above_size_is_rejected() -> None:
    w = torch.randn(3, 4)
    with pytest.raises(InvalidAmountError):
        L1Unstructured(13).compute_mask(w)
    with pytest.raises(InvalidAmountError):
        RandomUnstructured(13).compute_mask(w)
    with pytest.raises(InvalidAmountError):
        LnStructured(4, dim=0).compute_mask(w)
    with pytest.raises(InvalidAmountError):
        RandomStructured(5, dim=1).compute_mask(w)
    # The limits themselves are fine.
    assert not L1Unstructured(12).compute_mask(w).any()
    assert not LnStructured(3, dim=0).compute_mask(w).any()


# --------------------------------------------------------------------- iterative vs torch
@st.composite
def method_kinds(draw, ndim: int):
    kinds = ["l1", "random"] + (["ln", "random_structured"] if ndim >= 2 else [])
    return draw(st.sampled_from(kinds))


@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    data=st.data(),
)
def test_iterative_pruning_matches_torch_after_every_step(shape, dtype, seed, ties, data) -> None:
    original = make_weight(shape, dtype, seed, ties)
    holder = Holder(original)
    current: torch.Tensor | None = None
    steps = data.draw(st.integers(2, 3), label="steps")
    for _ in range(steps):
        kind = data.draw(method_kinds(len(shape)), label="kind")
        if kind in ("l1", "random"):
            remaining = original.numel() if current is None else int(current.sum())
            amount = data.draw(amounts(remaining), label="amount")
            if kind == "l1":
                method: PruningMethod = L1Unstructured(amount)
            else:
                method = RandomUnstructured(amount, seed=data.draw(seeds, label="seed"))
        else:
            dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
            remaining = live_channels(current, shape, dim % len(shape))
            amount = data.draw(amounts(remaining), label="amount")
            if kind == "ln":
                norms = NORMS if len(shape) < 4 else NORMS[:-1]
                n = data.draw(st.sampled_from(norms), label="n")
                method = LnStructured(amount, n=n, dim=dim)
            else:
                method = RandomStructured(amount, dim=dim, seed=data.draw(seeds, label="seed"))
        # torch ranks the effective weights orig * mask (mask in the weight's dtype).
        effective = original if current is None else original * current.to(dtype)
        ours = method.compute_mask(effective, current)
        expected = torch_prune(holder, method)
        assert torch.equal(ours, expected), method
        if current is not None:
            assert not (ours & ~current).any(), "a pruned entry came back"
        current = ours
    # torch's module holds exactly our effective weights.
    assert torch.equal(holder.weight, original * current.to(dtype))


def test_iterative_fraction_is_relative_to_what_remains() -> None:
    w = torch.arange(1.0, 101.0)
    first = L1Unstructured(0.5).compute_mask(w)
    second = L1Unstructured(0.5).compute_mask(w * first, first)
    assert int((~first).sum()) == 50
    assert int((~second).sum()) == 75
    assert torch.equal(second, w > 75)


def test_compute_mask_never_modifies_inputs() -> None:
    w = make_weight((4, 8), torch.float32, 1, ties=True)
    current = torch.rand(4, 8, generator=torch.Generator().manual_seed(0)) > 0.3
    w0, c0 = w.clone(), current.clone()
    for method in (
        L1Unstructured(0.5),
        RandomUnstructured(0.5),
        LnStructured(1, dim=1),
        RandomStructured(1),
        QuantileRule(0.5),
        MagnitudeThreshold(1.0),
        NMSparsity(2, 4),
        BlockSparsity(0.5, 2, 2),
        CustomMask(torch.ones(4, 8, dtype=torch.bool)),
    ):
        method.compute_mask(w, current)
        method.compute_mask(w)
        assert torch.equal(w, w0) and torch.equal(current, c0), method


# --------------------------------------------------------------------- quantile rule vs numpy
def _np_magnitudes(w: torch.Tensor) -> np.ndarray:
    a = w.abs()
    return (a.float() if a.dtype == torch.bfloat16 else a).numpy()


@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    q=st.one_of(st.floats(0.0, 1.0, allow_nan=False), st.sampled_from([0.0, 0.25, 0.5, 1.0])),
)
def test_quantile_rule_matches_numpy(shape, dtype, seed, ties, q) -> None:
    w = make_weight(shape, dtype, seed, ties)
    mags = _np_magnitudes(w)
    expected = mags > np.quantile(mags, q)
    ours = QuantileRule(q).compute_mask(w)
    assert ours.dtype == torch.bool and ours.shape == w.shape
    assert np.array_equal(ours.numpy(), expected)


@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    q=st.floats(0.0, 1.0, allow_nan=False),
)
def test_quantile_rule_with_current_mask_uses_the_kept_pool(shape, dtype, seed, ties, q) -> None:
    w = make_weight(shape, dtype, seed, ties)
    gen = torch.Generator().manual_seed(seed + 7)
    current = torch.rand(shape, generator=gen) > 0.4
    mags = _np_magnitudes(w)
    ours = QuantileRule(q).compute_mask(w * current.to(dtype), current)
    if not current.any():
        assert not ours.any()
        return
    pool = _np_magnitudes(w * current.to(dtype))[current.numpy()]
    expected = (mags > np.quantile(pool, q)) & current.numpy()
    assert np.array_equal(ours.numpy(), expected)


def test_quantile_rule_edges() -> None:
    w = torch.tensor([3.0, -1.0, 2.0, 0.0, -2.0])
    assert not QuantileRule(1.0).compute_mask(w).any()  # everything <= max
    assert torch.equal(QuantileRule(0.0).compute_mask(w), w.abs() > 0)  # only the minimum
    assert torch.equal(QuantileRule(0).compute_mask(w), w.abs() > 0)  # int 0 and 1 are fine
    with pytest.raises(UnsupportedParameterError):
        QuantileRule(2)
    with pytest.raises(InvalidAmountError):
        QuantileRule(1.5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_linear_quantile_matches_numpy_bitwise(dtype, ties: bool) -> None:
    rng = np.random.default_rng(42)
    # numpy's own float16 quantile breaks above 65520 elements (q=1 gives nan), so the
    # float16 oracle stays below that; the others use ~1e5 elements.
    n = 60_001 if dtype is np.float16 else 100_003
    if ties:
        values = rng.integers(0, 7, n).astype(dtype)
    else:
        values = np.abs(rng.standard_normal(n)).astype(dtype)
    t = torch.from_numpy(values)
    qs = [0.0, 1.0, 0.5, 1e-9, 1 - 1e-9, 0.1, 0.9, 1 / 3, 2 / 3, *rng.random(40).tolist()]
    for q in qs:
        expected = float(np.quantile(values, q))
        got = linear_quantile(t, q)
        assert got == expected, (q, got, expected)
    # Small sizes, including one and two elements.
    for size in (1, 2, 3, 10):
        small = values[:size]
        for q in (0.0, 0.3, 0.5, 0.7, 1.0):
            assert linear_quantile(torch.from_numpy(small), q) == float(np.quantile(small, q))


def test_linear_quantile_of_nothing_is_an_error() -> None:
    with pytest.raises(UnsupportedParameterError):
        linear_quantile(torch.empty(0), 0.5)


# --------------------------------------------------------------------- threshold
@FAST
@given(
    shape=shapes_any,
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    data=st.data(),
)
def test_magnitude_threshold_prunes_at_or_below(shape, dtype, seed, ties, data) -> None:
    w = make_weight(shape, dtype, seed, ties)
    mags = w.abs().double().reshape(-1)
    # Thresholds representable in the weight's dtype: |w| values themselves, 0, and rounded floats.
    raw = data.draw(
        st.one_of(
            st.sampled_from(mags.tolist()),
            st.just(0.0),
            st.floats(0.0, 3.0, allow_nan=False).map(
                lambda x: float(torch.tensor(x, dtype=torch.float64).to(dtype).double())
            ),
        ),
        label="threshold",
    )
    ours = MagnitudeThreshold(raw).compute_mask(w)
    assert torch.equal(ours, w.abs().double() > raw)
    assert torch.equal(ours, w.abs() > raw)  # torch's own comparison agrees for these
    current = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.5
    assert torch.equal(MagnitudeThreshold(raw).compute_mask(w, current), ours & current)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
def test_magnitude_threshold_is_exact_for_unrepresentable_thresholds(dtype) -> None:
    """``|w| <= value`` is pruned, ``|w| > value`` kept, whatever the weight's dtype.

    0.3 is not representable in any of these dtypes; the weight nearest to it
    lies above 0.3 for fp16, bf16 and fp32 (and below for fp64), so it must be
    kept for the first three and pruned for fp64.
    """
    w = torch.tensor([0.3, -0.3, 0.2, 0.4], dtype=torch.float64).to(dtype)
    expected = w.abs().double() > 0.3
    assert torch.equal(MagnitudeThreshold(0.3).compute_mask(w), expected)


def test_magnitude_threshold_rejects_bad_values() -> None:
    for bad in (-0.1, math.nan, math.inf, "1"):
        with pytest.raises(UnsupportedParameterError):
            MagnitudeThreshold(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------- custom mask
def test_custom_mask_is_applied_as_given() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, generator=gen)
    keep = torch.rand(3, 5, generator=gen) > 0.5
    assert torch.equal(CustomMask(keep).compute_mask(w), keep)
    current = torch.rand(3, 5, generator=gen) > 0.5
    assert torch.equal(CustomMask(keep).compute_mask(w, current), keep & current)
    # numpy bool arrays are accepted too.
    assert torch.equal(CustomMask(keep.numpy()).compute_mask(w), keep)
    # The method keeps its own copy-free but detached mask; params round-trip.
    method = CustomMask(keep)
    assert make_method(method.name, **method.params()) == method


@pytest.mark.parametrize(
    "bad",
    [
        torch.ones(3, 5),
        torch.ones(3, 5, dtype=torch.int64),
        torch.ones(3, 5, dtype=torch.uint8),
        np.ones((3, 5)),
        np.ones((3, 5), dtype=np.uint8),
        [[True] * 5] * 3,
    ],
)
def test_custom_mask_of_wrong_dtype_raises(bad) -> None:
    with pytest.raises(InvalidMaskError):
        CustomMask(bad)


@pytest.mark.parametrize("shape", [(5, 3), (15,), (3, 5, 1), (3, 4)])
def test_custom_mask_of_wrong_shape_raises(shape) -> None:
    w = torch.randn(3, 5)
    with pytest.raises(InvalidMaskError, match=r"shape"):
        CustomMask(torch.ones(shape, dtype=torch.bool)).compute_mask(w)


# --------------------------------------------------------------------- N:M
def _check_nm(w: torch.Tensor, mask: torch.Tensor, n: int, m: int, current=None) -> None:
    rows = w.shape[0]
    mags = w.abs().double().reshape(rows, -1, m)
    keep = mask.reshape(rows, -1, m)
    live = torch.ones_like(keep) if current is None else current.reshape(rows, -1, m)
    assert not (keep & ~live).any()
    assert torch.equal(keep.sum(-1), torch.clamp(live.sum(-1), max=n))
    kept_min = torch.where(keep, mags, torch.full_like(mags, math.inf)).amin(-1)
    dropped_max = torch.where(live & ~keep, mags, torch.full_like(mags, -math.inf)).amax(-1)
    assert bool((kept_min >= dropped_max).all())


@FAST
@given(
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    nm=st.sampled_from([(2, 4), (1, 4), (0, 4), (4, 4), (2, 8), (1, 2)]),
    conv=st.booleans(),
    rows=st.integers(1, 5),
    groups=st.integers(1, 4),
)
def test_n_m_keeps_the_n_largest_of_every_m(dtype, seed, ties, nm, conv, rows, groups) -> None:
    n, m = nm
    if conv:
        # (out, in, kh, kw) with in*kh*kw a multiple of m: in = groups * m / (kh*kw) ...
        shape: tuple[int, ...] = (rows, groups * m, 1, 1) if m % 4 else (rows, groups, 2, m // 2)
    else:
        shape = (rows, groups * m)
    w = make_weight(shape, dtype, seed, ties)
    mask = NMSparsity(n, m).compute_mask(w)
    assert mask.shape == w.shape and mask.dtype == torch.bool
    _check_nm(w, mask, n, m)
    current = torch.rand(shape, generator=torch.Generator().manual_seed(seed)) > 0.3
    again = NMSparsity(n, m).compute_mask(w * current.to(dtype), current)
    _check_nm(w * current.to(dtype), again, n, m, current)


def test_n_m_on_real_layers() -> None:
    torch.manual_seed(0)
    for module in (nn.Linear(8, 3), nn.Conv2d(3, 4, 2), nn.Conv2d(4, 2, 3)):
        w = module.weight.detach()
        mask = NMSparsity(2, 4).compute_mask(w)
        _check_nm(w, mask, 2, 4)
        assert float((~mask).float().mean()) == 0.5


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 3, 3), (3, 5)])
def test_n_m_width_not_divisible_raises(shape) -> None:
    with pytest.raises(UnsupportedParameterError, match="divisible"):
        NMSparsity(2, 4).compute_mask(torch.randn(shape))


def test_n_m_needs_a_matrix_and_valid_n_m() -> None:
    with pytest.raises(UnsupportedParameterError):
        NMSparsity(2, 4).compute_mask(torch.randn(8))
    for n, m in ((5, 4), (-1, 4), (0, 0), (2.0, 4)):
        with pytest.raises(UnsupportedParameterError):
            NMSparsity(n, m)  # type: ignore[arg-type]


# --------------------------------------------------------------------- block sparsity
def _block_scores(w: torch.Tensor, br: int, bc: int, norm: int) -> torch.Tensor:
    matrix = w.reshape(w.shape[0], -1).abs().double()
    rows, cols = matrix.shape
    gr, gc = math.ceil(rows / br), math.ceil(cols / bc)
    scores = torch.empty(gr, gc, dtype=torch.float64)
    for i in range(gr):
        for j in range(gc):
            block = matrix[i * br : (i + 1) * br, j * bc : (j + 1) * bc]
            scores[i, j] = block.sum() if norm == 1 else block.pow(2).sum()
    return scores


def _block_states(mask: torch.Tensor, br: int, bc: int) -> torch.Tensor:
    """Per block: 1 all kept, 0 all pruned; asserts every block is uniform."""
    matrix = mask.reshape(mask.shape[0], -1)
    rows, cols = matrix.shape
    gr, gc = math.ceil(rows / br), math.ceil(cols / bc)
    states = torch.empty(gr, gc, dtype=torch.bool)
    for i in range(gr):
        for j in range(gc):
            block = matrix[i * br : (i + 1) * br, j * bc : (j + 1) * bc]
            assert bool(block.all()) or not bool(block.any()), "a block is partly pruned"
            states[i, j] = bool(block.all())
    return states


@FAST
@given(
    dtype=st.sampled_from(DTYPES),
    seed=seeds,
    ties=st.booleans(),
    shape=st.one_of(
        st.tuples(st.integers(1, 11), st.integers(1, 11)),
        st.tuples(st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    ),
    br=st.integers(1, 5),
    bc=st.integers(1, 5),
    norm=st.sampled_from([1, 2]),
    data=st.data(),
)
def test_block_sparsity_prunes_the_smallest_whole_blocks(
    dtype, seed, ties, shape, br, bc, norm, data
) -> None:
    w = make_weight(shape, dtype, seed, ties)
    cols = math.prod(shape[1:])
    nblocks = math.ceil(shape[0] / br) * math.ceil(cols / bc)
    amount = data.draw(amounts(nblocks), label="amount")
    mask = BlockSparsity(amount, block_rows=br, block_cols=bc, n=norm).compute_mask(w)
    assert mask.shape == w.shape and mask.dtype == torch.bool
    states = _block_states(mask, br, bc)
    k = amount if isinstance(amount, int) else round(amount * nblocks)
    assert int((~states).sum()) == k
    if 0 < k < nblocks:
        scores = _block_scores(w, br, bc, norm)
        worst_pruned = float(scores[~states].max())
        best_kept = float(scores[states].min())
        slack = 0.0 if ties else 1e-5 * max(1.0, worst_pruned)  # the engine sums in fp32
        assert worst_pruned <= best_kept + slack


def test_block_sparsity_with_current_mask_counts_live_blocks() -> None:
    w = make_weight((6, 6), torch.float32, 3, ties=False)
    first = BlockSparsity(0.25, 3, 2).compute_mask(w)  # 6 blocks -> round(1.5) = 2
    assert int((~_block_states(first, 3, 2)).sum()) == 2
    second = BlockSparsity(0.5, 3, 2).compute_mask(w * first, first)  # 4 live -> 2 more
    states = _block_states(second, 3, 2)
    assert int((~states).sum()) == 4
    assert not (second & ~first).any()
    scores = _block_scores(w * first, 3, 2, 2)
    newly = ~states & _block_states(first, 3, 2)
    assert float(scores[newly].max()) <= float(scores[states].min())


def test_block_sparsity_rejects_bad_parameters() -> None:
    with pytest.raises(UnsupportedParameterError):
        BlockSparsity(0.5, 0, 4)
    with pytest.raises(UnsupportedParameterError):
        BlockSparsity(0.5, 4, 4, n=3)
    with pytest.raises(InvalidAmountError):
        BlockSparsity(1.5)
    with pytest.raises(UnsupportedParameterError):
        BlockSparsity(0.5).compute_mask(torch.randn(16))
    with pytest.raises(InvalidAmountError):
        BlockSparsity(5, 2, 2).compute_mask(torch.randn(4, 4))  # 4 blocks


def test_pattern_methods_rank_float64_weights_exactly() -> None:
    """float64 magnitudes that differ only beyond fp32 precision still rank correctly."""
    big, small = 1.0 + 2.0**-40, 1.0
    w = torch.tensor([[small, big, 0.0, 0.0], [big, small, 0.0, 0.0]], dtype=torch.float64)
    nm = NMSparsity(1, 4).compute_mask(w)
    assert torch.equal(nm, w == big), nm
    block = BlockSparsity(1, 1, 1).compute_mask(torch.tensor([[big, small]], dtype=torch.float64))
    assert torch.equal(block, torch.tensor([[True, False]])), block


# --------------------------------------------------------------------- registry round trip
@pytest.mark.parametrize(
    "method",
    [
        L1Unstructured(0.3),
        L1Unstructured(7),
        RandomUnstructured(0.2, seed=9),
        LnStructured(0.5, n=math.inf, dim=-1),
        LnStructured(2, n="fro", dim=1),
        LnStructured(0.5, n=-math.inf, dim=0),
        RandomStructured(0.25, dim=1, seed=3),
        NMSparsity(2, 4),
        BlockSparsity(0.5, 2, 8, n=1),
        MagnitudeThreshold(0.125),
        QuantileRule(0.75),
    ],
)
def test_make_method_round_trips_params(method: PruningMethod) -> None:
    rebuilt = make_method(method.name, **method.params())
    assert rebuilt == method
    w = make_weight((4, 8), torch.float32, 0, ties=True)
    assert torch.equal(rebuilt.compute_mask(w), method.compute_mask(w))
