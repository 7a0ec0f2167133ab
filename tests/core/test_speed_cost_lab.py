"""The cost lab, the speed test and the timing they rest on (no time is asserted, only that
times exist, counts are right and torch's thread count is restored)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
import torch

from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, Progress, run_job
from core.common.threads import new_thread_count, torch_threads
from core.speed.cost_lab import CostRow, _layers, cost_lab_job, speed_test_job
from core.speed.timing import METHOD_TEXT, Timing, default_threads, time_call

T = TypeVar("T")


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


def _in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run in a new thread (which starts at torch's process-wide default count)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def test_time_call_in_a_worker_thread_puts_back_its_count_and_the_default() -> None:
    """A job thread runs at its own count (the GUI's job_threads); time_call, cancelled
    there, must leave that count, the GUI thread's and the count new threads start at."""
    main = torch.get_num_threads()
    original_default = _in_thread(torch.get_num_threads)
    default, job, timed = 2, 3, 1  # all different, whatever the machine
    token = CancelToken()
    seen: list[int] = []

    def timed_call() -> None:
        seen.append(torch.get_num_threads())
        token.cancel()
        token.check()

    def worker() -> tuple[int, int]:
        torch.get_num_threads()  # torch's per-thread setup first, as job_threads does
        torch.set_num_threads(job)  # this thread's count (also made the process default)
        _in_thread(lambda: torch.set_num_threads(default))  # another thread resets the default
        with pytest.raises(JobCancelled):
            time_call(timed_call, threads=timed)
        return torch.get_num_threads(), _in_thread(torch.get_num_threads)

    try:
        assert _in_thread(worker) == (job, default)
        assert seen == [timed]
        assert torch.get_num_threads() == main
    finally:
        _in_thread(lambda: torch.set_num_threads(original_default))
    assert _in_thread(torch.get_num_threads) == original_default


def test_torch_threads_sets_nothing_when_the_count_is_already_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    before = (torch.get_num_threads(), new_thread_count())
    with torch_threads(torch.get_num_threads()):
        pass
    assert calls == []
    assert (torch.get_num_threads(), new_thread_count()) == before
    with pytest.raises(ValueError, match="threads"), torch_threads(0):
        pass


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
