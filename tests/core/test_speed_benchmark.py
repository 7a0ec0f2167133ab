"""The benchmark job: every form side by side, outputs checked before timing, export, cancel.

Runs on the tiny ``SmallNet`` at one thread with the shortest timing; no time is
asserted, only that times exist where they should and not where a form is
unavailable or wrong. The sparse break-even is measured on a small layer.
"""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import core.speed.benchmark as benchmark_module
from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, Progress, run_job
from core.pruning.methods import L1Unstructured
from core.pruning.session import PruningSession
from core.speed.advice import Advice, measure_breakeven_job
from core.speed.benchmark import (
    FORMS,
    NO_SLIM,
    BenchmarkConfig,
    BenchmarkError,
    BenchmarkReport,
    FormResult,
    batch_input,
    benchmark_job,
)
from core.speed.sparse_linear import SparsifyReport

FAST = BenchmarkConfig(batch_sizes=(1, 3), threads=1, min_run_time=0.002)


@pytest.fixture(autouse=True)
def small_breakeven(monkeypatch: pytest.MonkeyPatch) -> None:
    """Measure the break-even on a 128² layer instead of 2048² (seconds saved per test)."""
    original = measure_breakeven_job

    def small(batch_size: int, **kwargs: object) -> object:
        return original(batch_size, size=128, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(benchmark_module, "measure_breakeven_job", small)


@pytest.fixture
def pruned(net_session: PruningSession) -> Iterator[PruningSession]:
    for name in net_session.names:
        net_session.prune(name, L1Unstructured(0.6))
    yield net_session


class Standard:
    """One benchmark run shared by the tests that only read its report."""

    def __init__(self, session: PruningSession, example: torch.Tensor) -> None:
        self.session = session
        self.example = example
        session.model.train()
        self.before = copy.deepcopy(session.model.state_dict())
        self.report, self.progress = run(session, example)


@pytest.fixture(scope="module")
def standard() -> Iterator[Standard]:
    """``SmallNet``'s shape (conv 3x3 -> fc1 -> fc2), 60% L1-pruned, benchmarked once."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(2, 4, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16, 8),
            nn.ReLU(),
            nn.Linear(8, 4),
        )
        example = torch.randn(5, 2, 4, 4)
    with PruningSession(model, example_input=example) as session:
        for name in session.names:
            session.prune(name, L1Unstructured(0.6))
        yield Standard(session, example)


def run(
    session: PruningSession, example: torch.Tensor, config: BenchmarkConfig = FAST, **kwargs: object
) -> tuple[BenchmarkReport, list[Progress]]:
    seen: list[Progress] = []
    report = run_job(benchmark_job(session, example, config, **kwargs), seen.append)  # type: ignore[arg-type]
    return report, seen


def row(report: BenchmarkReport, form: str, batch: int) -> FormResult:
    return next(r for r in report.rows if r.form == form and r.batch_size == batch)


def test_every_form_and_batch_is_reported_in_order(standard: Standard) -> None:
    report, progress = standard.report, standard.progress
    assert [(r.batch_size, r.form) for r in report.rows] == [(b, f) for b in (1, 3) for f in FORMS]
    details = [p.detail for p in progress if p.detail is not None]
    assert details == list(report.rows)  # each row streamed as soon as measured
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert report.threads == 1 and report.method.startswith("torch.utils.benchmark")
    for batch in (1, 3):
        for form in ("dense", "masked", "sparse"):
            measured = row(report, form, batch)
            assert measured.available and measured.reason == ""
            assert measured.median_ms is not None and measured.median_ms > 0
            assert measured.iqr_ms is not None and measured.iqr_ms >= 0
            assert measured.throughput == pytest.approx(batch / (measured.median_ms / 1e3))
            assert measured.flops is not None and measured.flops > 0
        dense, masked = row(report, "dense", batch), row(report, "masked", batch)
        assert dense.speedup == 1.0
        assert masked.speedup == pytest.approx(dense.median_ms / masked.median_ms)  # type: ignore[operator]
        assert masked.max_abs_diff == 0.0
        assert dense.max_abs_diff is not None and dense.max_abs_diff > 0  # unpruned differs
        slim = row(report, "slim", batch)
        assert not slim.available and slim.reason == NO_SLIM and slim.median_ms is None
        semi = row(report, "semi_structured", batch)
        assert not semi.available and "GPU" in semi.reason and semi.median_ms is None


def test_parameters_and_flops_show_what_pruning_removed(standard: Standard) -> None:
    report, model = standard.report, standard.session.model
    total = sum(p.numel() for p in model.parameters())
    kept = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    dense, masked = row(report, "dense", 3), row(report, "masked", 3)
    assert (dense.params, dense.nonzero_params) == (total, total)
    assert (masked.params, masked.nonzero_params) == (total, kept)
    assert masked.flops == dense.flops  # zeros in dense tensors are still multiplied


def test_a_form_with_wrong_outputs_is_flagged_not_timed(
    pruned: PruningSession, net_input: torch.Tensor, make_net: Callable[[int], nn.Module]
) -> None:
    report, _ = run(pruned, net_input, slim_model=make_net(7))  # other weights: wrong outputs
    for batch in (1, 3):
        slim = row(report, "slim", batch)
        assert not slim.available
        assert "differ from the masked model" in slim.reason
        assert slim.max_abs_diff is not None and slim.max_abs_diff > 1e-3
        assert slim.median_ms is None and slim.speedup is None and slim.throughput is None


def test_a_correct_slim_model_is_timed(pruned: PruningSession, net_input: torch.Tensor) -> None:
    slim = copy.deepcopy(pruned.model)
    report, _ = run(pruned, net_input, slim_model=slim)
    measured = row(report, "slim", 3)
    assert measured.available and measured.median_ms is not None
    assert measured.max_abs_diff == 0.0


def test_a_form_that_cannot_run_is_reported(
    pruned: PruningSession, net_input: torch.Tensor
) -> None:
    report, _ = run(pruned, net_input, slim_model=nn.Linear(3, 3))
    slim = row(report, "slim", 1)
    assert not slim.available and slim.reason.startswith("failed to run:")


def test_wrong_sparse_kernel_output_fails_the_sparse_form(
    pruned: PruningSession, net_input: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = benchmark_module.sparsify_job

    def broken(model: nn.Module, x: torch.Tensor, **kwargs: object):  # type: ignore[no-untyped-def]
        report: SparsifyReport = yield from real(model, x, **kwargs)  # type: ignore[arg-type]
        report.model.register_forward_hook(lambda _m, _i, out: out + 1.0)  # a wrong kernel
        return report

    monkeypatch.setattr(benchmark_module, "sparsify_job", broken)
    report, _ = run(pruned, net_input)
    sparse = row(report, "sparse", 1)
    assert not sparse.available and "differ" in sparse.reason and sparse.median_ms is None
    assert sparse.max_abs_diff == pytest.approx(1.0, abs=1e-5)


def test_the_session_model_is_left_untouched(standard: Standard) -> None:
    model = standard.session.model
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, standard.before[key])
    assert all(type(m).__module__.startswith("torch") for m in model.modules())


def test_only_the_forms_asked_for(pruned: PruningSession, net_input: torch.Tensor) -> None:
    config = BenchmarkConfig(
        batch_sizes=(2,), threads=1, min_run_time=0.002, forms=("masked", "sparse")
    )
    report, _ = run(pruned, net_input, config)
    assert [r.form for r in report.rows] == ["masked", "sparse"]
    assert all(r.speedup is None for r in report.rows)  # no dense baseline to compare with


def test_advice_comes_with_the_report(standard: Standard) -> None:
    advice = standard.report.advice
    assert advice and all(isinstance(a, Advice) for a in advice)
    assert any(a.level == "warning" and "0.weight" in a.layers for a in advice)  # the 3x3 conv


def test_json_and_csv_export_round_trip(standard: Standard, tmp_path: Path) -> None:
    report = standard.report
    report.to_json(tmp_path / "bench.json")
    again = BenchmarkReport.read_json(tmp_path / "bench.json")
    assert again.as_dict() == report.as_dict()
    assert again.rows == report.rows and again.config == report.config
    assert json.loads((tmp_path / "bench.json").read_text())["threads"] == 1

    report.to_csv(tmp_path / "bench.csv")
    with (tmp_path / "bench.csv").open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(report.rows)
    for line, result in zip(lines, report.rows, strict=True):
        assert line["form"] == result.form and int(line["batch_size"]) == result.batch_size
        assert line["device"] == report.device_name
        if result.median_ms is None:
            assert line["median_ms"] == ""
        else:
            assert float(line["median_ms"]) == result.median_ms


def test_cancel_stops_between_forms(pruned: PruningSession, net_input: torch.Tensor) -> None:
    token = CancelToken()
    rows: list[object] = []

    def watch(progress: Progress) -> None:
        if progress.detail is not None:
            rows.append(progress.detail)
            token.cancel()

    with pytest.raises(JobCancelled):
        run_job(benchmark_job(pruned, net_input, FAST, token=token), watch)
    assert len(rows) == 1


def test_input_shape_and_batches(net_input: torch.Tensor) -> None:
    same = batch_input(net_input, 7, (2, 4, 4), torch.device("cpu"))
    assert same.shape == (7, 2, 4, 4)
    assert torch.equal(same[5], net_input[0]) and torch.equal(same[4], net_input[4])
    other = batch_input(net_input, 3, (2, 8, 8), torch.device("cpu"))
    assert other.shape == (3, 2, 8, 8)
    tokens = batch_input(torch.tensor([[1, 5, 2]]), 4, (6,), torch.device("cpu"))
    assert tokens.dtype == torch.int64 and int(tokens.max()) <= 5 and tokens.shape == (4, 6)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (BenchmarkConfig(forms=("dense", "fast")), "unknown form"),
        (BenchmarkConfig(batch_sizes=(0,)), "batch sizes"),
        (BenchmarkConfig(batch_sizes=()), "batch sizes"),
        (BenchmarkConfig(threads=0), "threads"),
        (BenchmarkConfig(device="tpu"), "device"),
    ],
)
def test_bad_configurations_are_refused(
    net_session: PruningSession, net_input: torch.Tensor, config: BenchmarkConfig, message: str
) -> None:
    with pytest.raises(BenchmarkError, match=message):
        run(net_session, net_input, config)
    assert issubclass(BenchmarkError, PruningError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_gpu_is_refused(
    net_session: PruningSession, net_input: torch.Tensor
) -> None:
    with pytest.raises(BenchmarkError, match="no CUDA GPU"):
        run(net_session, net_input, BenchmarkConfig(device="cuda"))


def test_channels_last_runs_every_form_in_that_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same format for every form (like the thread count); outputs still checked."""
    from core.demos import load_demo

    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)  # nothing pruned
    formats: list[bool] = []
    original_forward = nn.Conv2d.forward

    def spy(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        formats.append(
            self.weight.is_contiguous(memory_format=torch.channels_last)
            and x.is_contiguous(memory_format=torch.channels_last)
        )
        return original_forward(self, x)

    monkeypatch.setattr(nn.Conv2d, "forward", spy)
    config = BenchmarkConfig(
        batch_sizes=(2,),
        threads=1,
        min_run_time=0.002,
        forms=("dense", "masked", "slim"),
        channels_last=True,
    )
    report = run_job(
        benchmark_job(session, demo.example_input, config, slim_model=copy.deepcopy(demo.model))
    )
    assert formats and all(formats)
    assert [r.form for r in report.rows] == ["dense", "masked", "slim"]
    assert all(r.median_ms is not None and r.max_abs_diff < 1e-5 for r in report.rows)
