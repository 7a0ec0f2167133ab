"""Sparse execution: CSR layers against dense masked layers, bands, and the per-layer choice.

Every expectation is the dense layer computed by torch on the same (masked)
weights. No timing is asserted: the choice is forced with ``min_gain`` 0
(everything measured is taken) or infinity (nothing is).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

import core.speed.sparse_kernels as kernels
from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, run_job
from core.speed.sparse_kernels import Csr
from core.speed.sparse_linear import SparseChoice, sparsify_job
from core.speed.sparse_modules import SparseConv1x1, SparseKernelError, SparseLinear

TOL = 1e-4


def masked_linear(
    in_f: int, out_f: int, sparsity: float, *, seed: int = 0, bias: bool = True
) -> nn.Linear:
    """A seeded Linear with ``sparsity`` of its weights zeroed at random."""
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(in_f, out_f, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_f, in_f, generator=gen))
        layer.weight.mul_(torch.rand(out_f, in_f, generator=gen) >= sparsity)
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(out_f, generator=gen))
    return layer


def inputs(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= TOL


# ------------------------------------------------------------------ CSR storage


def test_csr_keeps_exactly_the_nonzeros_in_row_order() -> None:
    weight = np.array([[0, 2, 0, 3], [0, 0, 0, 0], [5, 0, 0, 0]], dtype=np.float32)
    csr = Csr.from_dense(weight)
    assert csr.values.tolist() == [2, 3, 5]
    assert csr.indices.tolist() == [1, 3, 0]
    assert csr.indptr.tolist() == [0, 2, 2, 3]
    assert csr.indices.dtype == np.int16
    np.testing.assert_array_equal(csr.to_dense(), weight)


def test_csr_index_width_follows_the_input_count() -> None:
    assert Csr.from_dense(np.ones((1, 32767), np.float32)).indices.dtype == np.int16
    assert Csr.from_dense(np.ones((1, 32768), np.float32)).indices.dtype == np.int32


def test_bands_cover_every_row_once_with_balanced_values() -> None:
    layer = masked_linear(64, 1000, 0.7)
    csr = Csr.from_dense(layer.weight.detach().numpy())
    bands = csr.bands(4)
    assert bands[0][0] == 0 and bands[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bands))
    per_band = [int(csr.indptr[b] - csr.indptr[a]) for a, b in bands]
    assert len(bands) == 4
    assert max(per_band) - min(per_band) <= 2 * 64  # off by at most a row or two
    many = csr.bands(10_000)  # more bands than rows: at most one per row, still covering all
    assert len(many) <= 1000 and many[0][0] == 0 and many[-1][1] == 1000
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(many))


# ------------------------------------------------------------------ SparseLinear


@pytest.mark.parametrize("batch", [1, 2, 5, 7, 8, 16])
def test_sparse_linear_matches_the_masked_dense_layer(batch: int) -> None:
    layer = masked_linear(96, 40, 0.8)
    sparse = SparseLinear.from_linear(layer)
    x = inputs(batch, 96)
    with torch.no_grad():
        assert_close(sparse(x), layer(x))


def test_sparse_linear_takes_any_leading_dimensions() -> None:
    layer = masked_linear(24, 12, 0.5)
    sparse = SparseLinear.from_linear(layer)
    with torch.inference_mode():
        for shape in [(3, 5, 24), (2, 24), (24,), (2, 3, 4, 24), (9, 1, 24)]:
            x = inputs(*shape)
            assert_close(sparse(x), layer(x))


def test_sparse_linear_drops_the_zeros_of_the_weight() -> None:
    layer = masked_linear(50, 30, 0.9)
    sparse = SparseLinear.from_linear(layer)
    assert sparse.nnz == int(torch.count_nonzero(layer.weight))
    assert sparse.indices.dtype == torch.int16
    torch.testing.assert_close(sparse.dense_weight(), layer.weight.detach())


def test_sparse_linear_int32_indices_for_wide_inputs() -> None:
    layer = masked_linear(40_000, 3, 0.99)
    sparse = SparseLinear.from_linear(layer)
    assert sparse.indices.dtype == torch.int32
    assert int(sparse.indices.max()) >= 32768  # the wide columns are really used
    with torch.no_grad():
        for batch in (1, 4, 9):
            x = inputs(batch, 40_000)
            assert_close(sparse(x), layer(x))


def test_empty_rows_and_an_all_zero_weight_give_the_bias() -> None:
    layer = masked_linear(16, 8, 0.5)
    with torch.no_grad():
        layer.weight[[0, 3, 7]] = 0.0
    sparse = SparseLinear.from_linear(layer)
    with torch.no_grad():
        for batch in (1, 12):
            x = inputs(batch, 16)
            out = sparse(x)
            assert_close(out, layer(x))
            assert torch.equal(out[:, 3], layer.bias.expand(batch, 8)[:, 3])
        layer.weight.zero_()
        empty = SparseLinear.from_linear(layer)
        assert empty.nnz == 0
        for batch in (1, 12):
            assert_close(empty(inputs(batch, 16)), layer.bias.expand(batch, 8))


def test_sparse_linear_without_bias() -> None:
    layer = masked_linear(32, 16, 0.6, bias=False)
    sparse = SparseLinear.from_linear(layer)
    x = inputs(10, 32)
    with torch.no_grad():
        assert_close(sparse(x), layer(x))


def test_bands_in_threads_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernels, "WORK_PER_BAND", 64)  # many bands even for a small layer
    layer = masked_linear(64, 300, 0.7)
    sparse = SparseLinear.from_linear(layer)
    with torch.no_grad():
        for batch in (1, 3, 20):
            x = inputs(batch, 64)
            single = kernels.rows_times_vectors(
                sparse.csr(), x.numpy(), sparse.bias_values.numpy(), 1
            )
            banded = kernels.rows_times_vectors(
                sparse.csr(), x.numpy(), sparse.bias_values.numpy(), 4
            )
            np.testing.assert_allclose(banded, single, atol=TOL)
            previous = torch.get_num_threads()
            torch.set_num_threads(3)
            try:
                assert_close(sparse(x), layer(x))
            finally:
                torch.set_num_threads(previous)


def test_chained_sparse_layers_pass_transposed_outputs_along() -> None:
    first, second = masked_linear(20, 30, 0.5), masked_linear(30, 10, 0.5, seed=2)
    chain = nn.Sequential(
        SparseLinear.from_linear(first), nn.ReLU(), SparseLinear.from_linear(second)
    )
    x = inputs(16, 20)
    with torch.no_grad():
        assert_close(chain(x), second(torch.relu(first(x))))


def test_sparse_linear_copies_and_saves_its_weights() -> None:
    layer = masked_linear(12, 6, 0.5)
    sparse = SparseLinear.from_linear(layer)
    x = inputs(2, 12)
    with torch.no_grad():
        first = sparse(x)  # numpy views of the buffers are cached now
        twin = copy.deepcopy(sparse)
        assert twin.values.data_ptr() != sparse.values.data_ptr()
        torch.testing.assert_close(twin(x), first)
        twin.values.mul_(2.0)  # the copy's own buffers, seen through its own views
        twin.bias_values.zero_()
        torch.testing.assert_close(twin(x), 2.0 * (first - layer.bias))
        torch.testing.assert_close(sparse(x), first)
        sparse.load_state_dict(twin.state_dict())  # in place: the cached views follow
        torch.testing.assert_close(sparse(x), twin(x))
        moved = sparse.to(torch.float32)  # no-op move keeps working
        torch.testing.assert_close(moved(x), twin(x))
    assert set(sparse.state_dict()) == {"values", "indices", "indptr", "bias_values"}


def test_sparse_linear_refuses_what_its_kernel_cannot_run() -> None:
    sparse = SparseLinear.from_linear(masked_linear(8, 4, 0.5))
    with pytest.raises(SparseKernelError, match="inference only"):
        sparse(inputs(2, 8).requires_grad_())
    with pytest.raises(SparseKernelError, match="float32"):
        sparse(inputs(2, 8).double())
    with pytest.raises(SparseKernelError, match="8 input features"):
        sparse(inputs(2, 9))
    assert issubclass(SparseKernelError, PruningError)


# ------------------------------------------------------------------ 1x1 convolutions


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_sparse_conv1x1_matches_the_masked_convolution(stride: int, bias: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(12, 20, 1, stride=stride, bias=bias)
    with torch.no_grad():
        conv.weight.mul_(torch.rand(conv.weight.shape, generator=gen) > 0.7)
    sparse = SparseConv1x1.from_conv(conv)
    with torch.no_grad():
        for shape in [(2, 12, 5, 7), (1, 12, 1, 1), (12, 4, 4)]:
            x = inputs(*shape)
            assert_close(sparse(x), conv(x))
            assert sparse.flops_for(x) == 2 * sparse.nnz * conv(x).numel() // 20


def test_only_plain_1x1_convolutions_go_sparse() -> None:
    assert SparseConv1x1.supports(nn.Conv2d(4, 4, 1))
    assert not SparseConv1x1.supports(nn.Conv2d(4, 4, 3))
    assert not SparseConv1x1.supports(nn.Conv2d(4, 4, 1, groups=2))
    assert not SparseConv1x1.supports(nn.Conv2d(4, 4, 1, padding=1))
    with pytest.raises(SparseKernelError, match="1x1"):
        SparseConv1x1.from_conv(nn.Conv2d(4, 4, 3))


# ------------------------------------------------------------------ sparsify_job


class Mixed(nn.Module):
    """A 1x1 conv, a 3x3 conv, a sparse Linear, a dense Linear, a Linear used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.point = nn.Conv2d(3, 8, 1)
        self.spatial = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 32)
        self.shared = nn.Linear(32, 32)
        self.head = nn.Linear(32, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.spatial(torch.relu(self.point(x)))).flatten(1)
        x = self.shared(torch.relu(self.shared(torch.relu(self.fc(x)))))
        out: torch.Tensor = self.head(x)
        return out


@pytest.fixture
def mixed() -> Callable[[], Mixed]:
    def make() -> Mixed:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = Mixed().eval()
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for layer in (model.point, model.spatial, model.fc, model.shared):
                layer.weight.mul_(torch.rand(layer.weight.shape, generator=gen) > 0.8)
        return model

    return make


def test_sparsify_replaces_measured_layers_and_keeps_outputs(mixed: Callable[[], Mixed]) -> None:
    model = mixed()
    before = copy.deepcopy(model.state_dict())
    x = inputs(2, 3, 4, 4)
    report = run_job(sparsify_job(model, x, threads=1, min_gain=0.0, min_run_time=0.001))
    names = [c.name for c in report.layers]
    assert names == ["point", "fc", "shared", "head"]  # 3x3 conv not considered
    by_name = {c.name: c for c in report.layers}
    assert report.chosen == ("point", "fc", "shared")
    assert not by_name["head"].chosen and "no zero weights" in by_name["head"].reason
    assert math.isnan(by_name["head"].dense_ms)
    assert by_name["fc"].sparsity == pytest.approx(0.8, abs=0.05)
    assert by_name["fc"].dense_ms > 0 and by_name["fc"].sparse_ms > 0
    sparse_model = report.model
    assert isinstance(sparse_model.point, SparseConv1x1)
    assert isinstance(sparse_model.fc, SparseLinear)
    assert isinstance(sparse_model.shared, SparseLinear)
    assert isinstance(sparse_model.head, nn.Linear)
    with torch.inference_mode():
        assert_close(sparse_model(x), model(x))
    for key, value in model.state_dict().items():  # the model itself is untouched
        assert torch.equal(value, before[key])
    assert isinstance(model.fc, nn.Linear)


def test_sparsify_keeps_layers_dense_when_not_faster(mixed: Callable[[], Mixed]) -> None:
    report = run_job(
        sparsify_job(mixed(), inputs(1, 3, 4, 4), threads=1, min_gain=math.inf, min_run_time=0.001)
    )
    assert report.chosen == ()
    measured = [c for c in report.layers if not math.isnan(c.sparse_ms)]
    assert {c.name for c in measured} == {"point", "fc", "shared"}
    assert all(c.reason.startswith("kept dense: sparse is") for c in measured)
    assert isinstance(report.model.fc, nn.Linear)


def test_sparsify_reports_layers_the_input_never_reaches(mixed: Callable[[], Mixed]) -> None:
    model = mixed()
    model.unused = nn.Linear(4, 4)
    with torch.no_grad():
        model.unused.weight[0] = 0.0
    report = run_job(
        sparsify_job(model, inputs(1, 3, 4, 4), threads=1, min_gain=0.0, min_run_time=0.001)
    )
    unused = next(c for c in report.layers if c.name == "unused")
    assert unused == SparseChoice(
        "unused",
        0.25,
        unused.dense_ms,
        unused.sparse_ms,
        False,
        "kept dense: the example input does not reach this layer",
    )


def test_sparsify_can_be_cancelled(mixed: Callable[[], Mixed]) -> None:
    token = CancelToken()
    job = sparsify_job(mixed(), inputs(1, 3, 4, 4), threads=1, token=token, min_run_time=0.001)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)
