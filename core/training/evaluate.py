"""Accuracy in the loop: loss, top-1/top-5, per-class accuracy, confusion, fidelity.

:func:`evaluate_job` runs a model over one split of a :class:`Dataset` in
batches (a job: progress per batch, cancel between batches), on the model's
device, under ``no_grad`` and in eval mode (each submodule's train/eval flag
is put back afterwards). *Fidelity* is the share of samples on which the
model's top-1 prediction agrees with a reference model's (the unpruned model):
it needs no labels.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.pruning.session import PruningSession
from core.training.data import DataError, Dataset, check_data
from core.training.modeling import logits_of, model_device, modes_restored

__all__ = ["Evaluation", "evaluate", "evaluate_job", "evaluate_session_job"]

#: Top-5 accuracy is given only with more classes than this.
TOP5_MIN_CLASSES = 5


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on one split.

    ``loss`` is the mean cross-entropy; ``top1``/``top5`` and ``fidelity`` are
    fractions in [0, 1]. Without labels only ``count`` and ``fidelity`` are
    measured (the rest None or empty). ``top5`` is None with 5 classes or
    fewer. ``per_class[c]`` is the accuracy on samples of class ``c`` (NaN when
    the split has none); ``confusion[true][predicted]`` counts samples
    (predictions of classes beyond the data's are left out of it).
    """

    split: str
    count: int
    loss: float | None
    top1: float | None
    top5: float | None
    per_class: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    fidelity: float | None

    def summary(self) -> str:
        """One line, e.g. ``top-1 97.2% · top-5 99.9% · loss 0.091 · fidelity 98.1% ·
        360 test samples`` (what was not measured is left out)."""
        parts = []
        if self.top1 is not None:
            parts.append(f"top-1 {self.top1:.1%}")
        if self.top5 is not None:
            parts.append(f"top-5 {self.top5:.1%}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.fidelity is not None:
            parts.append(f"fidelity {self.fidelity:.1%}")
        parts.append(f"{self.count:,} {self.split} samples")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (no NaN: a class without samples is ``None`` in ``per_class``)."""
        return {
            "split": self.split,
            "count": self.count,
            "loss": self.loss,
            "top1": self.top1,
            "top5": self.top5,
            "per_class": [None if math.isnan(a) else a for a in self.per_class],
            "confusion": [list(row) for row in self.confusion],
            "fidelity": self.fidelity,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Rebuild from :meth:`to_dict` output."""

        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            split=str(data["split"]),
            count=int(data["count"]),
            loss=number("loss"),
            top1=number("top1"),
            top5=number("top5"),
            per_class=tuple(math.nan if a is None else float(a) for a in data.get("per_class", [])),
            confusion=tuple(tuple(int(c) for c in row) for row in data.get("confusion", [])),
            fidelity=number("fidelity"),
        )


def evaluate(model: nn.Module, data: Dataset, split: str = "test", **kw: Any) -> Evaluation:
    """Evaluate synchronously (see :func:`evaluate_job` for the keywords)."""
    return run_job(evaluate_job(model, data, split, **kw))


def evaluate_session_job(
    session: PruningSession,
    data: Dataset,
    split: str = "test",
    *,
    fidelity: bool = True,
    batch_size: int = 256,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[Evaluation]:
    """Evaluate the session's (pruned) model; with ``fidelity``, against the unpruned
    model (:meth:`PruningSession.unpruned_copy`, a copy: the session is not touched)."""
    reference = session.unpruned_copy() if fidelity else None
    return (
        yield from evaluate_job(
            session.model, data, split, reference=reference, batch_size=batch_size, token=token
        )
    )


class _Tally:
    """Running sums over the batches of one evaluation."""

    def __init__(self, labeled: bool, fidelity: bool) -> None:
        self.labeled = labeled
        self.fidelity = fidelity
        self.count = 0
        self.loss = 0.0
        self.top1 = 0
        self.top5 = 0
        self.agree = 0
        self.classes = 0
        self.confusion: Tensor | None = None

    def add(self, logits: Tensor, y: Tensor | None, reference: Tensor | None, what: str) -> None:
        outputs = logits.shape[1]
        if self.confusion is None:
            self.classes = self.classes or outputs
            self.confusion = torch.zeros(self.classes * self.classes, dtype=torch.int64)
        predicted = logits.argmax(dim=1)
        self.count += len(logits)
        if reference is not None:
            self.agree += int((predicted == reference.argmax(dim=1)).sum())
        if not self.labeled:
            return
        if y is None:
            raise DataError(f"{what}: a batch has no labels, the first one had")
        y = y.to(logits.device)
        if len(y) and int(y.max()) >= outputs:
            raise DataError(f"{what}: label {int(y.max())} is out of range for {outputs} outputs")
        self.loss += float(F.cross_entropy(logits, y, reduction="sum"))
        self.top1 += int((predicted == y).sum())
        if self.classes > TOP5_MIN_CLASSES and outputs >= TOP5_MIN_CLASSES:
            top = logits.topk(TOP5_MIN_CLASSES, dim=1).indices
            self.top5 += int((top == y[:, None]).any(dim=1).sum())
        inside = predicted < self.classes
        cells = (y[inside] * self.classes + predicted[inside]).cpu()
        self.confusion += torch.bincount(cells, minlength=self.classes * self.classes)

    def result(self, split: str) -> Evaluation:
        fidelity = self.agree / self.count if self.fidelity else None
        if not self.labeled or self.confusion is None:
            return Evaluation(split, self.count, None, None, None, (), (), fidelity)
        matrix = self.confusion.reshape(self.classes, self.classes)
        totals = matrix.sum(dim=1).tolist()
        hits = matrix.diagonal().tolist()
        per_class = tuple(h / t if t else math.nan for h, t in zip(hits, totals, strict=True))
        return Evaluation(
            split=split,
            count=self.count,
            loss=self.loss / self.count,
            top1=self.top1 / self.count,
            top5=self.top5 / self.count if self.classes > TOP5_MIN_CLASSES else None,
            per_class=per_class,
            confusion=tuple(tuple(int(c) for c in row) for row in matrix.tolist()),
            fidelity=fidelity,
        )


def evaluate_job(
    model: nn.Module,
    data: Dataset,
    split: str = "test",
    *,
    reference: nn.Module | None = None,
    batch_size: int = 256,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[Evaluation]:
    """A job evaluating ``model`` on one split of ``data`` (see the module docstring).

    Args:
        reference: the model whose predictions fidelity compares with (None: no fidelity).
        batch_size: samples per forward pass (a loader keeps its own batches).

    Raises:
        DataError: the split is missing or empty, or does not fit the model.
        JobCancelled: the token was cancelled (between batches).
    """
    token.check()
    check_data(model, data, split)
    if reference is not None:
        check_data(reference, data, split)
    what = f"{data.name} ({split})"
    tally = _Tally(data.has_labels(split), reference is not None)
    tally.classes = data.num_classes or 0
    total = data.batch_count(split, batch_size)
    device = model_device(model)
    ref_device = model_device(reference) if reference is not None else device
    with ExitStack() as modes:
        for module in (model, reference):
            if module is not None:
                modes.enter_context(modes_restored(module, training=False))
        for i, (x, y) in enumerate(data.batches(split, batch_size)):
            token.check()
            with torch.no_grad():
                logits = logits_of(model(x.to(device))).float()
                ref = None
                if reference is not None:
                    ref = logits_of(reference(x.to(ref_device))).float().to(logits.device)
            tally.add(logits, y, ref, what)
            done = f"{tally.count:,} samples" if total is None else f"batch {i + 1}/{total}"
            fraction = 0.0 if total is None else min(1.0, (i + 1) / total)
            yield Progress(fraction, f"evaluating {split}: {done}")
    if tally.count == 0:
        raise DataError(f"{what}: no samples to evaluate")
    return tally.result(split)
