"""Model statistics: counts, sparsity, structure, FLOPs and bytes on hand-made masks.

Expected values are worked out by hand from the masks (or, for FLOPs, taken
from ``torch.utils.flop_counter.FlopCounterMode``), not from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import core.common.chunks as chunks
from core.analysis.stats import LayerStats, ModelStats, layer_flops, stats_job
from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, run_job
from core.pruning.methods import CustomMask, L1Unstructured
from core.pruning.session import PruningSession


def stats_of(session: PruningSession) -> ModelStats:
    return run_job(stats_job(session))


def layer(stats: ModelStats, name: str) -> LayerStats:
    return next(entry for entry in stats.layers if entry.name == name)


def torch_flops(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """FLOPs per module from torch's own counter, keyed like ``named_modules`` ("" = total)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    root = type(model).__name__
    counts = {
        key.removeprefix(root).removeprefix("."): sum(per_op.values())
        for key, per_op in counter.get_flop_counts().items()
        if key != "Global"
    }
    counts[""] = counter.get_total_flops()
    return counts


def fc1_mask() -> torch.Tensor:
    """(8, 16): rows 0 and 3 and column 5 fully pruned, plus two single entries."""
    mask = torch.ones(8, 16, dtype=torch.bool)
    mask[[0, 3]] = False
    mask[:, 5] = False
    mask[1, 1] = mask[6, 9] = False
    return mask  # pruned: 2 * 16 + 6 (column 5 outside rows 0, 3) + 2 = 40


def conv_mask() -> torch.Tensor:
    """(4, 2, 3, 3): output channel 2, kernel (0, 1) and one entry of kernel (1, 0) pruned."""
    mask = torch.ones(4, 2, 3, 3, dtype=torch.bool)
    mask[2] = False  # 18 entries, 2 kernels
    mask[0, 1] = False  # 9 entries, 1 kernel
    mask[1, 0, 1, 1] = False  # 1 entry, no whole kernel
    return mask  # pruned: 28


@pytest.fixture
def masked(net_session: PruningSession) -> PruningSession:
    """The small net with the hand-made masks above on conv and fc1; fc2 unpruned."""
    net_session.prune(["fc1.weight"], CustomMask(fc1_mask()))
    net_session.prune(["conv.weight"], CustomMask(conv_mask()))
    return net_session


# --------------------------------------------------------------------- counts
def test_counts_and_sparsity_from_the_masks(masked: PruningSession) -> None:
    stats = stats_of(masked)
    assert [entry.name for entry in stats.layers] == ["conv.weight", "fc1.weight", "fc2.weight"]
    fc1, conv, fc2 = (layer(stats, n) for n in ("fc1.weight", "conv.weight", "fc2.weight"))
    assert (fc1.params, fc1.kept, fc1.pruned) == (128, 88, 40)
    assert fc1.sparsity == 40 / 128
    assert (conv.params, conv.kept, conv.pruned) == (72, 44, 28)
    assert (fc2.params, fc2.kept, fc2.pruned, fc2.sparsity) == (32, 32, 0, 0.0)
    assert stats.prunable_params == 232
    assert stats.pruned == 68
    assert stats.sparsity == 68 / 232
    all_params = 72 + 4 + 128 + 8 + 32 + 4  # weights and biases
    assert stats.total_params == all_params
    assert stats.model_sparsity == 68 / all_params


def test_zeros_are_counted_from_the_values_pruned_or_not(masked: PruningSession) -> None:
    with torch.no_grad():
        weight = masked.model.fc2.weight
        weight[0, 0] = 0.0  # kept, but exactly zero
        weight[1, 2] = -0.0  # negative zero counts too
    stats = stats_of(masked)
    assert layer(stats, "fc2.weight").zeros == 2
    assert layer(stats, "fc2.weight").nonzeros == 30
    assert layer(stats, "fc1.weight").zeros == 40
    assert layer(stats, "fc2.weight").sparsity == 0.0  # zeros are not pruning
    assert stats.nonzeros == stats.total_params - 2 - 40 - 28


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_zeros_in_chunks_of_every_dtype(
    monkeypatch: pytest.MonkeyPatch, make_net: Callable[[int], nn.Module], dtype: torch.dtype
) -> None:
    monkeypatch.setattr(chunks, "CHUNK", 16)  # fc1's 128 entries in 8 chunks
    model = make_net(0).to(dtype)
    with torch.no_grad():
        flat = model.fc1.weight.view(-1)
        flat[[0, 15, 16, 17, 127]] = 0.0
        flat[[40, 90]] = -0.0
        flat[41] = torch.finfo(dtype).tiny  # the smallest normal number is not zero
    stats = stats_of(PruningSession(model))
    assert layer(stats, "fc1.weight").zeros == 7


def test_zero_rows_columns_and_kernels(masked: PruningSession) -> None:
    stats = stats_of(masked)
    fc1 = layer(stats, "fc1.weight")
    assert (fc1.rows, fc1.zero_rows, fc1.cols, fc1.zero_cols) == (8, 2, 16, 1)
    assert (fc1.kernels, fc1.zero_kernels) == (0, 0)  # a Linear has no kernels
    assert fc1.row_sparsity == 2 / 8
    assert fc1.col_sparsity == 1 / 16
    conv = layer(stats, "conv.weight")
    assert (conv.rows, conv.zero_rows, conv.cols, conv.zero_cols) == (4, 1, 2, 0)
    assert (conv.kernels, conv.zero_kernels) == (8, 3)
    fc2 = layer(stats, "fc2.weight")
    assert (fc2.zero_rows, fc2.zero_cols, fc2.row_sparsity) == (0, 0, 0.0)


def test_a_fully_pruned_input_channel_is_a_zero_column(net_session: PruningSession) -> None:
    mask = torch.ones(4, 2, 3, 3, dtype=torch.bool)
    mask[:, 0] = False
    net_session.prune(["conv.weight"], CustomMask(mask))
    conv = layer(stats_of(net_session), "conv.weight")
    assert (conv.zero_rows, conv.zero_cols, conv.zero_kernels) == (0, 1, 4)
    assert conv.col_sparsity == 0.5


# --------------------------------------------------------------------- FLOPs
def test_dense_flops_match_torch_flop_counter(
    masked: PruningSession, net_input: torch.Tensor
) -> None:
    expected = torch_flops(masked.model, net_input)
    assert layer_flops(masked) == {key: expected[key] for key in ("conv", "fc1", "fc2", "")}
    stats = stats_of(masked)
    assert stats.flops_dense == expected[""] == 4480
    for name, module in (("conv.weight", "conv"), ("fc1.weight", "fc1"), ("fc2.weight", "fc2")):
        assert layer(stats, name).flops_dense == expected[module], name


def test_effective_flops_scale_with_the_kept_fraction(
    masked: PruningSession, net_input: torch.Tensor
) -> None:
    expected = torch_flops(masked.model, net_input)
    stats = stats_of(masked)
    conv, fc1, fc2 = (layer(stats, n) for n in ("conv.weight", "fc1.weight", "fc2.weight"))
    assert conv.flops_effective == round(expected["conv"] * 44 / 72)
    assert fc1.flops_effective == round(expected["fc1"] * 88 / 128)
    assert fc2.flops_effective == expected["fc2"]
    saved = (expected["conv"] - conv.flops_effective) + (expected["fc1"] - fc1.flops_effective)
    assert stats.flops_effective == expected[""] - saved


def test_tied_weights_count_the_flops_of_every_module_using_them(
    lm_session: PruningSession, lm_tokens: torch.Tensor
) -> None:
    lm_session.example_input = lm_tokens
    lm_session.prune(["emb.weight"], L1Unstructured(0.25))
    expected = torch_flops(lm_session.model, lm_tokens)
    stats = stats_of(lm_session)
    emb = layer(stats, "emb.weight")  # an embedding lookup costs nothing; the head does
    assert emb.flops_dense == expected["head"] == 2 * 24 * 8 * 12
    assert emb.flops_effective == round(expected["head"] * 0.75)
    assert stats.flops_dense == expected[""]


def test_without_an_example_input_there_are_no_flops(make_net: Callable[[int], nn.Module]) -> None:
    session = PruningSession(make_net(0))
    session.prune(["fc1.weight"], L1Unstructured(0.5))
    stats = stats_of(session)
    assert layer_flops(session) is None
    assert stats.flops_dense is None and stats.flops_effective is None
    assert all(e.flops_dense is None and e.flops_effective is None for e in stats.layers)


# --------------------------------------------------------------------- bytes
def test_bytes_dense_and_sparse(masked: PruningSession) -> None:
    stats = stats_of(masked)
    fc1, conv, fc2 = (layer(stats, n) for n in ("fc1.weight", "conv.weight", "fc2.weight"))
    assert (fc1.bytes_dense, fc1.bytes_sparse) == (128 * 4, 88 * 4 + 16)  # + 1 bit per weight
    assert (conv.bytes_dense, conv.bytes_sparse) == (72 * 4, 44 * 4 + 9)
    assert fc2.bytes_dense == fc2.bytes_sparse == 32 * 4  # no mask, nothing saved
    assert stats.bytes_dense == 248 * 4
    assert stats.bytes_sparse == 248 * 4 - (128 * 4 - 88 * 4 - 16) - (72 * 4 - 44 * 4 - 9)
    assert stats.compression == stats.bytes_dense / stats.bytes_sparse


def test_bytes_count_buffers_at_their_dtype() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).to(torch.float16)
    session = PruningSession(model)
    session.prune(["0.weight"], L1Unstructured(0.5))
    stats = stats_of(session)
    state = model.state_dict()
    assert stats.bytes_dense == sum(t.numel() * t.element_size() for t in state.values())
    assert "1.num_batches_tracked" in state  # an int64 buffer, counted too
    assert layer(stats, "0.weight").bytes_sparse == 108 * 2 + math.ceil(216 / 8)


def test_an_unpruned_model_is_not_smaller(net_session: PruningSession) -> None:
    stats = stats_of(net_session)
    assert stats.bytes_sparse == stats.bytes_dense
    assert stats.compression == 1.0
    assert stats.sparsity == stats.model_sparsity == 0.0
    assert stats.flops_effective == stats.flops_dense


# --------------------------------------------------------------------- edge cases
class WithEmptyLayer(nn.Module):
    """A zero-size Linear(0, 5) beside a big layer, both used in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Linear(64, 64)
        self.empty = nn.Linear(0, 5)  # no weights; its output is its bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.big(x)[:, :5] + self.empty(x[:, :0])
        return out


# torch warns when initialising a zero-element weight; that is the point here.
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op:UserWarning")
def test_a_zero_size_parameter_beside_a_large_layer() -> None:
    torch.manual_seed(0)
    model = WithEmptyLayer()
    example = torch.randn(3, 64)
    session = PruningSession(model, example_input=example)
    session.prune(["big.weight"], L1Unstructured(0.5))
    stats = stats_of(session)
    expected = torch_flops(model, example)
    empty = layer(stats, "empty.weight")
    assert (empty.params, empty.kept, empty.zeros, empty.sparsity) == (0, 0, 0, 0.0)
    assert (empty.rows, empty.zero_rows, empty.cols, empty.zero_cols) == (5, 0, 0, 0)
    assert empty.row_sparsity == empty.col_sparsity == 0.0
    assert empty.flops_dense == empty.flops_effective == expected.get("empty", 0) == 0
    assert empty.bytes_dense == empty.bytes_sparse == 0
    big = layer(stats, "big.weight")
    assert big.flops_dense == expected["big"]
    assert stats.flops_dense == expected[""]
    assert stats.sparsity == 0.5
    assert stats.pruned == 64 * 32


def test_stats_can_be_cancelled(masked: PruningSession) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(stats_job(masked, token))


def test_progress_reaches_one(masked: PruningSession) -> None:
    fractions: list[float] = []
    run_job(stats_job(masked), lambda p: fractions.append(p.fraction))
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


# ----------------------------------------------------------- not counted
class Recurrent(nn.Module):
    """Embedding -> LSTM -> attention -> Linear head: two layers without a FLOP formula."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(self.emb(tokens))
        x, _ = self.attn(x, x, x)
        return self.head(x)


def test_layers_without_a_formula_are_listed_as_not_counted() -> None:
    session = PruningSession(Recurrent(), example_input=torch.randint(0, 20, (2, 6)))
    stats = stats_of(session)
    assert [(u.name, u.module_type) for u in stats.not_counted] == [
        ("lstm", "LSTM"),
        ("attn", "MultiheadAttention"),
    ]
    # The head is counted; attention's out_proj (bypassed by its fused forward) has no figure.
    assert layer(stats, "head.weight").flops_dense == 2 * 2 * 6 * 8 * 5
    assert layer(stats, "attn.out_proj.weight").flops_dense is None
    assert stats.flops_dense == 2 * 2 * 6 * 8 * 5


def test_counted_models_list_nothing_and_no_input_lists_nothing(
    masked: PruningSession, make_net: Callable[[int], nn.Module]
) -> None:
    assert stats_of(masked).not_counted == ()
    assert stats_of(PruningSession(Recurrent())).not_counted == ()
