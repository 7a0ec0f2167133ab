"""Evaluation: loss, top-1/top-5, per-class accuracy and confusion against a direct
computation, fidelity to a reference, unlabeled data, progress, cancel, modes, JSON."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.common.errors import JobCancelled
from core.common.jobs import CancelToken, Progress, run_job
from core.demos import evaluate_accuracy, load_demo, load_digits
from core.pruning.session import PruningSession
from core.training.data import DataError, Dataset, load_data
from core.training.evaluate import Evaluation, evaluate, evaluate_job, evaluate_session_job


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_data("digits")


def test_scores_match_a_direct_computation(digits: Dataset) -> None:
    model = load_demo("cnn").model
    data = load_digits()
    result = evaluate(model, digits, "test", batch_size=64)
    with torch.no_grad():
        logits = model(data.test_x)
    predicted = logits.argmax(1)
    assert result.split == "test" and result.count == 360
    assert result.top1 == pytest.approx(evaluate_accuracy(model, data.test_x, data.test_y))
    assert result.loss == pytest.approx(float(F.cross_entropy(logits, data.test_y)), rel=1e-5)
    top5 = (logits.topk(5, 1).indices == data.test_y[:, None]).any(1).float().mean()
    assert result.top5 == pytest.approx(float(top5))
    expected = torch.zeros(10, 10, dtype=torch.int64)
    for t, p in zip(data.test_y.tolist(), predicted.tolist(), strict=True):
        expected[t, p] += 1
    assert result.confusion == tuple(tuple(row) for row in expected.tolist())
    for c in range(10):
        of_class = data.test_y == c
        accuracy = float((predicted[of_class] == c).float().mean())
        assert result.per_class[c] == pytest.approx(accuracy)
    assert result.fidelity is None
    assert result.top1 is not None and result.top1 > 0.95


def test_results_do_not_depend_on_the_batch_size(digits: Dataset) -> None:
    model = load_demo("mlp").model
    small = evaluate(model, digits, "val", batch_size=7)
    large = evaluate(model, digits, "val", batch_size=1000)
    assert small.count == large.count == 144
    assert small.top1 == large.top1 and small.confusion == large.confusion
    assert small.loss == pytest.approx(large.loss, rel=1e-5)


def test_fidelity_compares_top1_predictions_with_the_reference(digits: Dataset) -> None:
    model = load_demo("cnn").model
    same = evaluate(model, digits, reference=load_demo("cnn").model)
    assert same.fidelity == 1.0
    other = load_demo("mlp").model
    result = evaluate(model, digits, reference=other)
    x = load_digits().test_x
    with torch.no_grad():
        agree = (model(x).argmax(1) == other(x).argmax(1)).float().mean()
    assert result.fidelity == pytest.approx(float(agree))
    assert result.fidelity is not None and result.fidelity < 1.0


def test_unlabeled_data_gives_fidelity_only() -> None:
    x = load_digits().test_x[:50]
    data = Dataset.from_tensors("unlabeled", {"test": (x, None)})
    model = load_demo("cnn").model
    result = evaluate(model, data, reference=load_demo("mlp").model)
    assert (result.loss, result.top1, result.top5) == (None, None, None)
    assert result.per_class == () and result.confusion == ()
    assert result.fidelity is not None and 0.0 < result.fidelity <= 1.0
    assert result.summary() == f"fidelity {result.fidelity:.1%} · 50 test samples"


def test_top5_only_with_more_than_five_classes() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen)
    data = Dataset.from_tensors("five", {"test": (x, torch.arange(40) % 5)})
    model = nn.Linear(3, 5)
    result = evaluate(model, data)
    assert result.top5 is None and result.top1 is not None
    assert len(result.per_class) == 5 and sum(map(sum, result.confusion)) == 40


def test_a_class_without_samples_has_nan_accuracy() -> None:
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    data = Dataset.from_tensors("gap", {"test": (x, torch.tensor([0, 2] * 6))}, num_classes=3)
    result = evaluate(nn.Linear(4, 3), data)
    assert math.isnan(result.per_class[1]) and not math.isnan(result.per_class[0])
    assert result.confusion[1] == (0, 0, 0)


def test_json_round_trip(digits: Dataset) -> None:
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    gap = Dataset.from_tensors("gap", {"test": (x, torch.tensor([0, 2] * 6))}, num_classes=3)
    for result in (
        evaluate(load_demo("cnn").model, digits, reference=load_demo("mlp").model),
        evaluate(nn.Linear(4, 3), gap),
    ):
        text = json.dumps(result.to_dict(), allow_nan=False)
        back = Evaluation.from_dict(json.loads(text))
        assert back.to_dict() == result.to_dict()
        assert [math.isnan(a) for a in back.per_class] == [math.isnan(a) for a in result.per_class]


def test_summary_line(digits: Dataset) -> None:
    result = Evaluation("test", 360, 0.0912, 0.972, 0.999, (), (), 0.981)
    assert (
        result.summary()
        == "top-1 97.2% · top-5 99.9% · loss 0.091 · fidelity 98.1% · 360 test samples"
    )


def test_progress_per_batch_cancel_and_modes(digits: Dataset) -> None:
    model = load_demo("cnn").model
    model.train()
    reports: list[Progress] = []
    run_job(evaluate_job(model, digits, batch_size=100), reports.append)
    assert [p.fraction for p in reports] == [0.25, 0.5, 0.75, 1.0]
    assert reports[0].message == "evaluating test: batch 1/4"
    assert model.training and all(m.training for m in model.modules())
    running = model.stem.bn.running_mean.clone()
    assert torch.equal(model.stem.bn.running_mean, running)

    token = CancelToken()
    job = evaluate_job(model, digits, batch_size=100, token=token)
    next(job)
    token.cancel()
    with pytest.raises(JobCancelled):
        next(job)
    assert model.training  # modes put back when cancelled too
    assert torch.is_grad_enabled()


def test_grad_mode_is_not_left_off_between_batches(digits: Dataset) -> None:
    job = evaluate_job(load_demo("cnn").model, digits, batch_size=100)
    next(job)
    assert torch.is_grad_enabled()
    job.close()


def test_missing_split_and_mismatched_data_are_errors(digits: Dataset) -> None:
    model = load_demo("cnn").model
    only_test = Dataset.from_tensors("t", {"test": (load_digits().test_x, None)})
    with pytest.raises(DataError, match="no 'val' split"):
        evaluate(model, only_test, "val")
    with pytest.raises(DataError, match="does not take samples"):
        evaluate(nn.Linear(3, 10), digits)


def test_session_evaluation_measures_fidelity_against_the_unpruned_model(digits: Dataset) -> None:
    demo = load_demo("cnn")
    with PruningSession(demo.model) as session:
        session.global_prune(0.9)
        before = {k: v.clone() for k, v in session.model.state_dict().items()}
        result = run_job(evaluate_session_job(session, digits))
        assert result.fidelity is not None and result.fidelity < 0.95
        assert result.top1 is not None and result.top1 < 0.9
        plain = run_job(evaluate_session_job(session, digits, fidelity=False))
        assert plain.fidelity is None and plain.top1 == result.top1
        after = session.model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert len(session.history.entries) == 1
    with PruningSession(load_demo("cnn").model) as dense:
        assert run_job(evaluate_session_job(dense, digits)).fidelity == 1.0
