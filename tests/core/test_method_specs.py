"""Methods describe themselves: schema, labels, units, checks, numpy inputs, option strings."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.common.chunks as chunks
from core.common.errors import (
    InvalidAmountError,
    InvalidMaskError,
    PruningError,
    UnsupportedParameterError,
)
from core.pruning.masks import PackedMask
from core.pruning.methods import (
    METHODS,
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
    method_from_options,
)

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SCHEMA_METHODS = [cls for cls in METHODS.values() if cls.from_schema]


# --------------------------------------------------------------------- the class-level description
def test_labels_and_units_are_the_ones_the_gui_showed() -> None:
    assert {name: cls.label for name, cls in METHODS.items()} == {
        "l1_unstructured": "L1 unstructured",
        "random_unstructured": "Random unstructured",
        "ln_structured": "Ln structured",
        "random_structured": "Random structured",
        "n_m": "N:M semi-structured",
        "block": "Block",
        "threshold": "Threshold |w| ≤",
        "quantile": "Quantile rule",
        "custom_mask": "Custom mask",
    }
    assert {name: cls.unit for name, cls in METHODS.items()} == {
        "l1_unstructured": "weights",
        "random_unstructured": "weights",
        "ln_structured": "channels",
        "random_structured": "channels",
        "n_m": "weights",
        "block": "blocks",
        "threshold": "weights",
        "quantile": "weights",
        "custom_mask": "weights",
    }


@pytest.mark.parametrize("cls", SCHEMA_METHODS, ids=lambda c: c.name)
def test_schema_matches_the_constructor(cls: type[PruningMethod]) -> None:
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    assert [spec.name for spec in cls.param_specs] == [f.name for f in fields]
    default = cls()
    for spec in cls.param_specs:
        assert getattr(default, spec.name) == spec.default, spec.name
        assert spec.cli.startswith("--") and spec.label and spec.help
    assert cls.uses_amount == any(spec.name == "amount" for spec in cls.param_specs)
    assert cls.summary and "\n" not in cls.summary
    assert default.pattern().unit == cls.unit
    # Distinct command-line spellings within a method.
    assert len({spec.cli for spec in cls.param_specs}) == len(cls.param_specs)


def test_n_means_a_norm_or_a_keep_count_and_m_a_group() -> None:
    assert LnStructured.spec("n").cli == "--norm"
    assert BlockSparsity.spec("n").cli == "--norm"
    assert NMSparsity.spec("n").cli == "--keep"
    assert NMSparsity.spec("m").cli == "--group"
    assert LnStructured.spec("n").choice_label(float("inf")) == "L∞  (max |w|)"
    with pytest.raises(PruningError):
        NMSparsity.spec("amount")


# --------------------------------------------------------------------- numpy-typed parameters
NUMPY_CASES = [
    (L1Unstructured(np.float32(0.5)), {"amount": 0.5}, "l1_unstructured 50.0%"),
    (L1Unstructured(np.int64(3)), {"amount": 3}, "l1_unstructured 3 weights"),
    (
        RandomUnstructured(np.float64(0.25), seed=np.int32(7)),
        {"amount": 0.25, "seed": 7},
        "random_unstructured 25.0%",
    ),
    (
        LnStructured(np.int16(2), n=np.float64(np.inf), dim=np.int64(-1)),
        {"amount": 2, "n": math.inf, "dim": -1},
        "ln_structured 2 channels",
    ),
    (
        RandomStructured(np.float16(0.5), dim=np.uint8(1), seed=np.int64(3)),
        {"amount": 0.5, "dim": 1, "seed": 3},
        "random_structured 50.0%",
    ),
    (NMSparsity(np.int64(2), np.int32(4)), {"n": 2, "m": 4}, "2:4 sparsity"),
    (
        BlockSparsity(np.int64(5), np.int64(2), np.int8(8), n=np.int64(1)),
        {"amount": 5, "block_rows": 2, "block_cols": 8, "n": 1},
        "block 5 blocks in 2x8 blocks",
    ),
    (MagnitudeThreshold(np.float32(0.125)), {"value": 0.125}, "threshold |w| <= 0.125"),
    (MagnitudeThreshold(np.int64(1)), {"value": 1.0}, "threshold |w| <= 1"),
    (QuantileRule(np.float64(0.75)), {"amount": 0.75}, "quantile 75.0%"),
]


@pytest.mark.parametrize(("method", "params", "text"), NUMPY_CASES, ids=lambda x: str(x)[:30])
def test_numpy_parameters_become_plain_python(method, params, text) -> None:
    assert method.params() == params
    for key, value in method.params().items():
        assert type(value) is type(params[key]), key  # int stays int, float stays float
    json.dumps(method.params())
    assert method.describe() == text
    assert make_method(method.name, **json.loads(json.dumps(method.params()))) == method


def test_a_numpy_float_amount_is_a_fraction_when_applied() -> None:
    w = torch.randn(4, 25, generator=torch.Generator().manual_seed(0))
    mask = L1Unstructured(np.float32(0.5)).compute_mask(w)
    assert int((~mask).sum()) == 50
    assert int((~L1Unstructured(np.int64(3)).compute_mask(w)).sum()) == 3


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: L1Unstructured(True), InvalidAmountError),
        (lambda: L1Unstructured(np.bool_(True)), InvalidAmountError),
        (lambda: L1Unstructured("0.5"), InvalidAmountError),
        (lambda: RandomUnstructured(0.5, seed=True), UnsupportedParameterError),
        (lambda: RandomUnstructured(0.5, seed=1.0), UnsupportedParameterError),
        (lambda: RandomUnstructured(0.5, seed=-1), UnsupportedParameterError),
        (lambda: LnStructured(0.5, dim=0.0), UnsupportedParameterError),
        (lambda: LnStructured(0.5, n=3), UnsupportedParameterError),
        (lambda: LnStructured(0.5, n=True), UnsupportedParameterError),
        (lambda: NMSparsity(True, 4), UnsupportedParameterError),
        (lambda: NMSparsity(np.int64(5), np.int64(4)), UnsupportedParameterError),
        (lambda: BlockSparsity(0.5, np.int64(0), 4), UnsupportedParameterError),
        (lambda: MagnitudeThreshold(np.float64(np.nan)), UnsupportedParameterError),
        (lambda: QuantileRule(np.int64(2)), UnsupportedParameterError),
        (lambda: QuantileRule(np.float32(1.5)), InvalidAmountError),
    ],
)
def test_bad_parameters_are_refused(build, error) -> None:
    with pytest.raises(error):
        build()


def test_with_amount_coerces_too() -> None:
    method = LnStructured(0.5, n=1, dim=1).with_amount(np.int64(4))
    assert method == LnStructured(4, n=1, dim=1) and type(method.amount) is int


# --------------------------------------------------------------------- option strings
@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("ln_structured", {"norm": "2", "dim": "0"}, LnStructured(0.5, n=2, dim=0)),
        (
            "ln_structured",
            {"--norm": "inf", "amount": "25%", "dim": "-1"},
            LnStructured(0.25, n=math.inf, dim=-1),
        ),
        ("ln_structured", {"norm": "-inf", "amount": "3"}, LnStructured(3, n=-math.inf)),
        ("ln_structured", {"norm": "FRO"}, LnStructured(0.5, n="fro")),
        ("l1_unstructured", {"amount": "0.3"}, L1Unstructured(0.3)),
        ("l1_unstructured", {"amount": "12"}, L1Unstructured(12)),
        ("l1_unstructured", {"amount": "1"}, L1Unstructured(1)),
        ("l1_unstructured", {"amount": "1.0"}, L1Unstructured(1.0)),
        ("random_unstructured", {"seed": "9"}, RandomUnstructured(0.5, seed=9)),
        ("random_structured", {"dim": "1", "seed": "7"}, RandomStructured(0.5, dim=1, seed=7)),
        ("n_m", {"keep": "1", "group": "8"}, NMSparsity(1, 8)),
        ("n_m", {"--keep": "2", "m": "4"}, NMSparsity(2, 4)),
        (
            "block",
            {"block-rows": "2", "block_cols": "8", "norm": "1", "amount": "0.3"},
            BlockSparsity(0.3, 2, 8, n=1),
        ),
        ("threshold", {"threshold": "1e-2"}, MagnitudeThreshold(0.01)),
        ("quantile", {"quantile": "75%"}, QuantileRule(0.75)),
        ("quantile", {}, QuantileRule(0.5)),
    ],
)
def test_method_from_options_parses_through_the_schema(name, options, expected) -> None:
    method = method_from_options(name, options)
    assert method == expected
    assert method.params() == expected.params()
    assert {k: type(v) for k, v in method.params().items()} == {
        k: type(v) for k, v in expected.params().items()
    }


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("n_m", {"norm": "2"}, r"unknown option 'norm' \(options: --keep, --group\)"),
        ("ln_structured", {"dim": "x"}, "--dim expects an integer"),
        ("ln_structured", {"dim": "1.5"}, "--dim expects an integer"),
        ("ln_structured", {"norm": "3"}, "one of 1, 2, inf, -inf, fro"),
        ("ln_structured", {"n": "2", "norm": "1"}, "given twice"),
        ("l1_unstructured", {"amount": "half"}, "--amount expects a number"),
        ("l1_unstructured", {"amount": "150%"}, "outside"),
        ("n_m", {"keep": "5", "group": "4"}, "at most m"),
        ("quantile", {"quantile": "2"}, r"amount 2.0 is outside \[0, 1\]"),
        ("custom_mask", {}, "cannot be built from options"),
        ("nope", {}, "unknown pruning method 'nope'"),
    ],
)
def test_bad_options_are_clear_errors(name, options, match) -> None:
    with pytest.raises(PruningError, match=match):
        method_from_options(name, options)


def test_make_method_rejects_unknown_names_and_parameters() -> None:
    with pytest.raises(PruningError, match="unknown pruning method"):
        make_method("l2_unstructured", amount=0.5)
    with pytest.raises(PruningError, match="bad parameters"):
        make_method("l1_unstructured", amount=0.5, dim=0)
    # Recipes written before the schema spelled norms as strings.
    assert make_method("ln_structured", amount=0.5, n="inf", dim=0).n == math.inf


# --------------------------------------------------------------------- checks and units
@pytest.mark.parametrize(
    ("method", "shape", "error", "match"),
    [
        (LnStructured(0.5), (5,), UnsupportedParameterError, "at least 2 dimensions"),
        (RandomStructured(0.5, dim=2), (3, 4), UnsupportedParameterError, "out of range"),
        (LnStructured(0.5, dim=-3), (3, 4), UnsupportedParameterError, "out of range"),
        (NMSparsity(2, 4), (3, 6), UnsupportedParameterError, "divisible by 4"),
        (NMSparsity(2, 4), (8,), UnsupportedParameterError, "at least 2 dimensions"),
        (BlockSparsity(0.5), (16,), UnsupportedParameterError, "at least 2 dimensions"),
        (L1Unstructured(13), (3, 4), InvalidAmountError, "cannot prune 13 weights, it has 12"),
        (LnStructured(5, dim=1), (3, 4), InvalidAmountError, "cannot prune 5 channels"),
        (BlockSparsity(5, 2, 2), (4, 4), InvalidAmountError, "cannot prune 5 blocks, it has 4"),
        (CustomMask(torch.ones(2, 2, dtype=torch.bool)), (2, 3), InvalidMaskError, "shape"),
    ],
)
def test_check_raises_clear_errors(method, shape, error, match) -> None:
    with pytest.raises(error, match=match):
        method.check(shape)


def test_check_passes_where_compute_works() -> None:
    for method, shape in [
        (L1Unstructured(12), (3, 4)),
        (LnStructured(3, dim=0), (3, 4)),
        (NMSparsity(2, 4), (3, 2, 2, 2)),
        (BlockSparsity(4, 2, 2), (4, 4)),
        (QuantileRule(1), (0,)),  # a fraction, not a count
        (MagnitudeThreshold(1.0), (7,)),
    ]:
        method.check(shape)
        method.compute_mask(torch.randn(shape))


def test_check_counts_what_remains_under_a_mask() -> None:
    kept = torch.zeros(4, 6, dtype=torch.bool)
    kept[1, 2] = kept[3, 0] = True  # two live rows, two live columns, 2 of 6 blocks of 2x2
    mask = PackedMask.from_bool(kept)
    LnStructured(2, dim=0).check((4, 6), mask)
    with pytest.raises(InvalidAmountError, match="cannot prune 3 more channels, only 2 remain"):
        LnStructured(3, dim=0).check((4, 6), mask)
    with pytest.raises(InvalidAmountError, match="only 2 remain"):
        BlockSparsity(3, 2, 2).check((4, 6), mask)
    with pytest.raises(InvalidAmountError, match="only 2 remain"):
        L1Unstructured(3).check((4, 6), mask)
    assert BlockSparsity(3, 2, 2).remaining_units((4, 6), mask) == 2


def test_units_follow_the_parameters() -> None:
    assert L1Unstructured().units((16, 16, 3, 3)) == 2304
    assert LnStructured(dim=1).units((16, 8, 3, 3)) == 8
    assert RandomStructured(dim=-1).units((16, 8, 3, 5)) == 5
    assert BlockSparsity(0.5, 4, 4).units((16, 16, 3, 3)) == 4 * 36
    assert BlockSparsity(0.5, 5, 7).units((11, 15)) == 3 * 3
    assert NMSparsity().units((4, 8)) == 32
    with pytest.raises(UnsupportedParameterError):
        LnStructured(dim=4).units((3, 4))


def _live_slices(kept: np.ndarray, dim: int) -> int:
    other = tuple(d for d in range(kept.ndim) if d != dim)
    return int((kept.sum(axis=other) != 0).sum())


def _live_blocks(kept: np.ndarray, br: int, bc: int) -> int:
    matrix = kept.reshape(kept.shape[0], -1)
    live = 0
    for top in range(0, matrix.shape[0], br):
        for left in range(0, matrix.shape[1], bc):
            live += bool(matrix[top : top + br, left : left + bc].any())
    return live


@FAST
@given(
    shape=st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple),
    chunk=st.sampled_from([8, 16, 24, 64, 1 << 22]),
    density=st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_remaining_units_match_brute_force(monkeypatch, shape, chunk, density, seed, data) -> None:
    """Chunked counts of live channels and blocks, chunk boundaries anywhere in a run."""
    monkeypatch.setattr(chunks, "CHUNK", chunk)
    kept = np.random.default_rng(seed).random(shape) < density
    mask = PackedMask.from_bool(kept)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    assert LnStructured(dim=dim).remaining_units(shape, mask) == _live_slices(
        kept, dim % len(shape)
    )
    br, bc = data.draw(st.integers(1, 5), label="br"), data.draw(st.integers(1, 5), label="bc")
    assert BlockSparsity(0.5, br, bc).remaining_units(shape, mask) == _live_blocks(kept, br, bc)
    assert L1Unstructured().remaining_units(shape, mask) == int(kept.sum())
    assert NMSparsity(1, 1).remaining_units(shape, mask) == int(kept.sum())


def test_remaining_units_read_the_mask_chunk_by_chunk(monkeypatch) -> None:
    """No whole-mask unpacking: every read is at most one chunk (plus byte alignment)."""
    monkeypatch.setattr(chunks, "CHUNK", 64)
    kept = np.random.default_rng(0).random((40, 50)) < 0.01
    mask = PackedMask.from_bool(kept)
    reads: list[int] = []
    real = PackedMask.chunk

    def chunk(self, start, stop):
        reads.append(min(stop, self.numel) - start)
        return real(self, start, stop)

    monkeypatch.setattr(PackedMask, "chunk", chunk)
    assert LnStructured(dim=1).remaining_units((40, 50), mask) == _live_slices(kept, 1)
    assert BlockSparsity(0.5, 2, 3).remaining_units((40, 50), mask) == _live_blocks(kept, 2, 3)
    assert reads and max(reads) <= 64 + 7 + 50 * 2  # a band of whole block rows
    assert max(reads) < kept.size


def test_remaining_units_refuse_a_mask_of_another_shape() -> None:
    mask = PackedMask.full((3, 4))
    with pytest.raises(UnsupportedParameterError):
        LnStructured().remaining_units((4, 3), mask)
