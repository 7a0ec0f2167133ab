"""The cost lab, the speed test and the timing they rest on (no time is asserted, only that
times exist, counts are right and torch's thread count is restored)."""

from __future__ import annotations

import pytest
import torch

from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, Progress, run_job
from core.speed.cost_lab import CostRow, _layers, cost_lab_job, speed_test_job
from core.speed.timing import METHOD_TEXT, Timing, default_threads, time_call


def test_time_call_measures_and_restores_the_thread_count() -> None:
    previous = torch.get_num_threads()
    seen: list[int] = []
    timing = time_call(lambda: seen.append(torch.get_num_threads()), threads=1, min_run_time=0.001)
    assert isinstance(timing, Timing)
    assert timing.median_ms > 0 and timing.iqr_ms >= 0 and 0 < timing.runs <= len(seen)
    assert set(seen) == {1}
    assert torch.get_num_threads() == previous
    with pytest.raises(ValueError, match="threads"):
        time_call(lambda: None, threads=0)


def test_time_call_restores_threads_when_the_call_fails() -> None:
    previous = torch.get_num_threads()

    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        time_call(boom, threads=1)
    assert torch.get_num_threads() == previous


def test_default_threads_and_method_text() -> None:
    assert default_threads() >= 1
    assert "median" in METHOD_TEXT and "interquartile" in METHOD_TEXT


def test_layers_are_pruned_as_asked() -> None:
    loose = _layers(10, 0.3, "unstructured", 4)
    assert loose.nonzeros == 70 and loose.small is None
    assert torch.equal(loose.dense.bias, loose.masked.bias)
    rows = _layers(10, 0.3, "structured", 4)
    assert rows.small is not None and rows.small.out_features == 7
    kept = rows.masked.weight.detach().abs().sum(dim=1) > 0
    assert int(kept.sum()) == 7
    with torch.no_grad():  # the smaller layer computes the kept neurons exactly
        torch.testing.assert_close(rows.small(rows.x), rows.masked(rows.x)[:, kept])
        norms = rows.dense.weight.norm(dim=1)
    assert norms[kept].min() >= norms[~kept].max()  # the weakest neurons went


def test_cost_lab_rows() -> None:
    seen: list[Progress] = []
    rows = run_job(
        cost_lab_job((8, 12), (0.0, 0.5), batch_size=3, threads=1, min_run_time=0.001),
        seen.append,
    )
    assert [(r.size, r.ratio, r.kind) for r in rows] == [
        (s, r, k) for s in (8, 12) for r in (0.0, 0.5) for k in ("unstructured", "structured")
    ]
    assert [p.detail for p in seen if p.detail is not None] == list(rows)
    by_key = {(r.size, r.ratio, r.kind): r for r in rows}
    half = by_key[(12, 0.5, "unstructured")]
    assert half.nonzeros == 72 and half.flops == 2 * 72 * 3
    assert half.sparse_ms is not None and half.small_ms is None
    assert by_key[(12, 0.5, "structured")].nonzeros == 6 * 12
    assert by_key[(12, 0.5, "structured")].small_ms is not None
    assert by_key[(8, 0.0, "unstructured")].sparse_ms is None
    assert by_key[(8, 0.0, "unstructured")].nonzeros == 64
    assert all(r.dense_ms > 0 and r.masked_ms > 0 for r in rows)
    assert len({r.dense_ms for r in rows if r.size == 8}) == 1  # one dense timing per size
    assert isinstance(rows[0], CostRow)


def test_cost_lab_can_be_cancelled() -> None:
    token = CancelToken()
    job = cost_lab_job((8,), (0.0, 0.5), batch_size=2, threads=1, min_run_time=0.001, token=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(job)


def test_speed_test_explains_its_own_numbers() -> None:
    test = run_job(speed_test_job(batch_size=4, size=64, ratio=0.75, threads=1, min_run_time=0.001))
    assert (test.batch_size, test.size, test.ratio) == (4, 64, 0.75)
    for value in (test.dense_ms, test.masked_ms, test.sparse_ms, test.small_ms, test.torch_csr_ms):
        assert value > 0
    text = test.explanation
    assert "Zeros cost the same" in text
    assert "sparse kernels pay only at high sparsity" in text
    assert "16 of 64 neurons kept" in text and "faster in proportion" in text
    assert f"{test.dense_ms:.3f} ms" in text
