"""Fine-tuning a pruned model with its masks held, optionally distilled from the unpruned one.

:func:`finetune_job` trains a private deep copy of ``session.model`` (the
session is untouched while it runs) with a :class:`MaskedOptimizer` (pruned
weights stay exactly zero, optimiser state included), then applies the chosen
epoch's parameters *and* buffers (BatchNorm running statistics) as one
undoable :class:`~core.pruning.operations.WeightUpdate`; undo returns the exact
weights before.

Choices are made on the validation split only, never on test: which epoch to
keep (``keep="best"``: best validation top-1, ties to the lower validation
loss; without labels, the lowest validation loss) and early stopping. The
validation split is also measured before training (epoch 0), so a run that
only hurts keeps nothing. Without a validation split, ``keep="best"`` falls
back to the last epoch and there is no early stopping (said in the result's
``notes``).

With distillation the teacher is :meth:`PruningSession.unpruned_copy` and the
loss is ``alpha * T² * KL(softmax(teacher/T) || softmax(student/T)) +
(1 - alpha) * cross-entropy``; unlabeled training data is distilled only.

Runs are seeded and reproducible: the shuffling and augmentation draw from
generators seeded with ``seed``, and torch's global RNG (dropout, a loader's
own shuffling) is swapped for a private seeded one around each step, so the
caller's random state is untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.common.errors import JobCancelled, PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, scaled
from core.pruning.history import Entry
from core.pruning.operations import WeightUpdate
from core.pruning.session import PruningSession
from core.training.data import DataError, Dataset, check_data
from core.training.evaluate import evaluate_job
from core.training.masked_optim import OPTIMIZER_LABELS, OPTIMIZERS, MaskedOptimizer
from core.training.modeling import logits_of, model_device, modes_restored
from core.training.private_rng import PrivateRng
from core.training.schedules import SCHEDULES, learning_rate

__all__ = [
    "AUGMENTATIONS",
    "KEEP_CHOICES",
    "ON_CANCEL_CHOICES",
    "OPTIMIZERS",
    "SCHEDULES",
    "EpochRecord",
    "FinetuneConfig",
    "FinetuneConfigError",
    "FinetuneResult",
    "finetune_job",
]

KEEP_CHOICES: tuple[str, ...] = ("best", "last")
ON_CANCEL_CHOICES: tuple[str, ...] = ("keep", "revert")
AUGMENTATIONS: tuple[str, ...] = ("none", "shift")


class FinetuneConfigError(PruningError):
    """A fine-tuning setting out of range (the message names it and what is allowed)."""


def _number_text(value: float) -> str:
    """``1e-3``, ``5e-3``, ``2.5e-4``: short scientific notation for labels."""
    mantissa, exponent = f"{value:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune (see the module docstring for ``keep`` and distillation).

    ``augment="shift"`` moves each training image by up to one pixel in each
    direction (zero fill), for image-like ``(C, H, W)`` inputs.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    distill: bool = False
    temperature: float = 4.0
    alpha: float = 0.7
    keep: str = "best"
    patience: int | None = None
    on_cancel: str = "keep"
    augment: str = "none"

    def check(self) -> None:
        """Raise :class:`FinetuneConfigError` naming the first setting out of range."""

        def fail(message: str) -> None:
            raise FinetuneConfigError(message)

        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def real(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        if not whole(self.epochs) or self.epochs < 1:
            fail(f"epochs must be a whole number of at least 1, got {self.epochs!r}")
        if not whole(self.batch_size) or self.batch_size < 1:
            fail(f"batch size must be a whole number of at least 1, got {self.batch_size!r}")
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("keep", self.keep, KEEP_CHOICES),
            ("on_cancel", self.on_cancel, ON_CANCEL_CHOICES),
            ("augment", self.augment, AUGMENTATIONS),
        ):
            if value not in allowed:
                fail(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if not real(self.lr) or not math.isfinite(self.lr) or self.lr <= 0:
            fail(f"learning rate must be a positive number, got {self.lr!r}")
        if not real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            fail(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not real(self.weight_decay) or not 0.0 <= self.weight_decay < math.inf:
            fail(f"weight decay must be a number >= 0, got {self.weight_decay!r}")
        if not whole(self.seed):
            fail(f"seed must be a whole number, got {self.seed!r}")
        if not isinstance(self.distill, bool):
            fail(f"distill must be true or false, got {self.distill!r}")
        if not real(self.temperature) or not 0.0 < self.temperature < math.inf:
            fail(f"temperature must be a positive number, got {self.temperature!r}")
        if not real(self.alpha) or not 0.0 <= self.alpha <= 1.0:
            fail(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.patience is not None and (not whole(self.patience) or self.patience < 1):
            fail(f"patience must be a whole number of at least 1 (or none), got {self.patience!r}")

    @property
    def label(self) -> str:
        """History label, e.g.
        ``Fine-tune 10 epochs · Adam 1e-3 · cosine · distilled T=4 α=0.7``."""
        parts = [
            f"Fine-tune {self.epochs} epoch{'s' if self.epochs != 1 else ''}",
            f"{OPTIMIZER_LABELS.get(self.optimizer, self.optimizer)} {_number_text(self.lr)}",
            self.schedule,
        ]
        if self.weight_decay:
            parts.append(f"wd {_number_text(self.weight_decay)}")
        if self.augment != "none":
            parts.append(f"{self.augment} augmentation")
        if self.distill:
            parts.append(f"distilled T={self.temperature:g} α={self.alpha:g}")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (see :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Rebuild from :meth:`to_dict` output; missing keys take their defaults.

        Raises:
            FinetuneConfigError: unknown keys or values out of range.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FinetuneConfigError(
                f"unknown fine-tuning setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        config = cls(**data)
        config.check()
        return config


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch (``epoch`` 1-based; 0 is the validation before training,
    with ``train_loss`` NaN). ``lr`` is the learning rate of the epoch's last step."""

    epoch: int
    train_loss: float
    val_loss: float | None
    val_top1: float | None
    lr: float
    seconds: float


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    """What a fine-tune did.

    ``chosen_epoch`` is the epoch applied to the session (0: nothing applied:
    cancelled and reverted, or no epoch beat the start). ``entry`` is the
    history entry applied (None when nothing was). ``baseline`` is the
    validation before training (None without a validation split); ``notes``
    say what fell back (e.g. no validation split).
    """

    records: tuple[EpochRecord, ...]
    chosen_epoch: int
    cancelled: bool
    stopped_early: bool
    entry: Entry | None
    baseline: EpochRecord | None = None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------- pieces


def shift_images(x: Tensor, generator: torch.Generator) -> Tensor:
    """Each image moved by -1, 0 or +1 pixel along H and W (drawn per sample), zero fill."""
    n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    padded = F.pad(x, (1, 1, 1, 1))
    offsets = torch.randint(0, 3, (n, 2), generator=generator).to(x.device)
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            chosen = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            if bool(chosen.any()):
                out[chosen] = padded[chosen, ..., dy : dy + height, dx : dx + width]
    return out


def distillation_loss(
    student: Tensor, teacher: Tensor, labels: Tensor | None, temperature: float, alpha: float
) -> Tensor:
    """``alpha·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1-alpha)·CE``
    (the KL term alone without labels)."""
    kl = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature * temperature)
    if labels is None:
        return kl
    return alpha * kl + (1.0 - alpha) * F.cross_entropy(student, labels)


def _state_of(model: nn.Module) -> dict[str, Tensor]:
    """Copies of every parameter and buffer, by state_dict name (tied names included)."""
    tensors: dict[str, Tensor] = dict(model.named_parameters(remove_duplicate=False))
    tensors.update(model.named_buffers(remove_duplicate=False))
    return {name: t.detach().clone() for name, t in tensors.items()}


def _has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@dataclass
class _Choice:
    """The epoch kept so far, its validation key, and epochs since it improved."""

    epoch: int = 0
    key: tuple[float, ...] | None = None
    state: dict[str, Tensor] | None = None
    stale: int = 0


def _key(record: EpochRecord) -> tuple[float, ...]:
    """Larger is better: validation top-1, then lower loss (loss alone without labels)."""
    loss = -record.val_loss if record.val_loss is not None else -math.inf
    if record.val_top1 is not None:
        return (record.val_top1, loss)
    return (loss,)


class _Run:
    """One fine-tune's moving parts (the student, the teacher, the optimiser, the RNG)."""

    def __init__(self, session: PruningSession, data: Dataset, config: FinetuneConfig) -> None:
        self.data = data
        self.config = config
        self.student = copy.deepcopy(session.model)
        check_data(self.student, data, "train")
        self.labeled = data.has_labels("train")
        self.has_val = "val" in data.splits()
        val_unlabeled = self.has_val and not data.has_labels("val")
        self.teacher: nn.Module | None = None
        if config.distill or val_unlabeled:
            self.teacher = session.unpruned_copy()
            self.teacher.eval()
            self.teacher.requires_grad_(False)
        masks = {
            name: session.mask(name)
            for name in session.names
            if session.packed_mask(name) is not None
        }
        self.optimizer = MaskedOptimizer(
            self.student,
            masks,
            config.optimizer,
            lr=learning_rate(config.schedule, config.lr, 0.0),
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.device = model_device(self.student)
        self.rng = PrivateRng(config.seed, self.device)
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.augment = torch.Generator().manual_seed(config.seed + 1)
        self.skip_single = _has_batch_norm(self.student)
        self.steps_per_epoch = data.batch_count("train", config.batch_size)
        self.step = 0
        self.loss = math.nan
        self.lr = self.optimizer.optimizer.param_groups[0]["lr"]

    def progress(self, epoch: int) -> float:
        """Training progress ``t`` in [0, 1] for the schedule."""
        config = self.config
        if self.steps_per_epoch:
            return self.step / (self.steps_per_epoch * config.epochs)
        return (epoch - 1) / config.epochs

    def train_step(self, batches: Iterator[tuple[Tensor, Tensor | None]], epoch: int) -> int:
        """One optimiser step on the next batch, with the job's RNG; the batch's loss goes
        to :attr:`loss`. Returns the batch's sample count: 0 when the data ran out, -1 for
        a batch skipped (a single sample, which BatchNorm cannot train on)."""
        config = self.config
        with self.rng.active():
            try:
                x, y = next(batches)
            except StopIteration:
                return 0
            if len(x) < 2 and self.skip_single:
                return -1
            x = x.to(self.device)
            if config.augment == "shift":
                x = shift_images(x, self.augment)
            if y is not None:
                y = y.to(self.device)
            self.lr = learning_rate(config.schedule, config.lr, self.progress(epoch))
            self.optimizer.set_lr(self.lr)
            logits = logits_of(self.student(x)).float()
            if self.teacher is not None and config.distill:
                with torch.no_grad():
                    teacher = logits_of(self.teacher(x)).float()
                loss = distillation_loss(logits, teacher, y, config.temperature, config.alpha)
            else:
                if y is None:
                    raise DataError(f"{self.data.name} (train): a batch has no labels")
                loss = F.cross_entropy(logits, y)
            self.optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            self.step += 1
            self.loss = float(loss.detach())
        return len(x)

    def validate_job(
        self, token: CancelToken, fraction: float, message: str
    ) -> Job[tuple[float | None, float | None]]:
        """Validation loss and top-1 (without labels: KL to the unpruned model, no top-1).

        Reports progress as ``fraction`` with ``message``."""
        yield Progress(fraction, message)
        if self.data.has_labels("val"):
            job = evaluate_job(self.student, self.data, "val", batch_size=256, token=token)
            result = yield from scaled(job, fraction, fraction)
            return result.loss, result.top1
        assert self.teacher is not None
        total, count = 0.0, 0
        with modes_restored(self.student, training=False):
            for x, _ in self.data.batches("val", 256):
                token.check()
                with torch.no_grad():
                    x = x.to(self.device)
                    student = logits_of(self.student(x)).float()
                    teacher = logits_of(self.teacher(x)).float()
                    kl = distillation_loss(student, teacher, None, 1.0, 1.0)
                total += float(kl) * len(x)
                count += len(x)
        return (total / count if count else None), None


# --------------------------------------------------------------------- the job


def finetune_job(
    session: PruningSession,
    data: Dataset,
    config: FinetuneConfig,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[FinetuneResult]:
    """A job fine-tuning the session's model with its masks held (see the module docstring).

    Yields a progress report per batch (``epoch 3/10 · batch 12/23 · loss 0.31``)
    and one per finished epoch whose ``detail`` is its :class:`EpochRecord`
    (also one for the validation before training, epoch 0). Ends with one
    :class:`WeightUpdate` applied through ``session.apply_job`` (one history
    entry), unless nothing is kept.

    Cancelled (the token), it does not raise: with ``on_cancel="keep"`` it
    applies the chosen among the completed epochs; with ``"revert"``, or before
    any epoch completed, it leaves the session as it was. Either way the result
    says ``cancelled=True``. A half-finished epoch is never applied.

    Raises:
        FinetuneConfigError: a setting out of range.
        DataError: no training split, data that does not fit the model, labels
            missing without distillation, or shifts asked for non-image inputs.
    """
    config.check()
    if "train" not in data.splits():
        raise DataError(f"{data.name} has no train split to fine-tune on")
    if not data.has_labels("train") and not config.distill:
        raise DataError(f"{data.name}: the training data has no labels; turn on distillation")
    if config.augment == "shift" and len(data.input_shape) != 3:
        raise DataError(
            f"{data.name}: shift augmentation needs image inputs (C, H, W), "
            f"not samples of shape {data.input_shape}"
        )
    token.check()
    run = _Run(session, data, config)
    notes: list[str] = []
    keep = config.keep
    if not run.has_val:
        if keep == "best":
            keep = "last"
            notes.append("no validation split: kept the last epoch (test is never used to choose)")
        if config.patience is not None:
            notes.append("no validation split: no early stopping")
    for note in notes:
        yield Progress(0.0, note)

    records: list[EpochRecord] = []
    baseline: EpochRecord | None = None
    choice = _Choice()
    cancelled = stopped_early = False
    epochs = config.epochs
    try:
        if run.has_val:
            started = time.perf_counter()
            val_loss, val_top1 = yield from run.validate_job(
                token, 0.0, "validating before fine-tuning"
            )
            baseline = EpochRecord(
                0, math.nan, val_loss, val_top1, run.lr, time.perf_counter() - started
            )
            choice.key = _key(baseline)
            yield Progress(0.0, _epoch_message(baseline, epochs), baseline)
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            run.student.train()
            batches = run.data.batches(
                "train", config.batch_size, shuffle=True, generator=run.shuffle
            )
            loss_sum, seen, batch = 0.0, 0, 0
            total = run.steps_per_epoch
            while True:
                token.check()
                count = run.train_step(batches, epoch)
                if count == 0:
                    break
                batch += 1
                if count < 0:
                    continue
                loss_sum += run.loss * count
                seen += count
                done = (epoch - 1 + (batch / total if total else 0.0)) / epochs
                of = f"/{total}" if total else ""
                yield Progress(
                    min(1.0, done),
                    f"epoch {epoch}/{epochs} · batch {batch}{of} · loss {loss_sum / seen:.3g}",
                )
            if run.steps_per_epoch is None:
                run.steps_per_epoch = batch
            val_loss, val_top1 = (None, None)
            if run.has_val:
                val_loss, val_top1 = yield from run.validate_job(
                    token, epoch / epochs, f"epoch {epoch}/{epochs} · validating"
                )
            record = EpochRecord(
                epoch,
                loss_sum / seen if seen else math.nan,
                val_loss,
                val_top1,
                run.lr,
                time.perf_counter() - started,
            )
            records.append(record)
            improved = choice.key is None or _key(record) > choice.key
            if improved:
                choice.key, choice.stale = _key(record), 0
            else:
                choice.stale += 1
            if keep == "last" or improved:
                choice.epoch, choice.state = epoch, _state_of(run.student)
            yield Progress(epoch / epochs, _epoch_message(record, epochs), record)
            if run.has_val and config.patience is not None and choice.stale >= config.patience:
                stopped_early = epoch < epochs
                if stopped_early:
                    notes.append(
                        f"stopped after epoch {epoch}: no validation improvement "
                        f"in {config.patience} epoch(s)"
                    )
                break
    except JobCancelled:
        cancelled = True

    def result(chosen: int, entry: Entry | None) -> FinetuneResult:
        return FinetuneResult(
            tuple(records), chosen, cancelled, stopped_early, entry, baseline, tuple(notes)
        )

    if cancelled and (config.on_cancel == "revert" or not records):
        return result(0, None)
    if choice.state is None:
        notes.append("no epoch beat the model before fine-tuning on validation: nothing applied")
        return result(0, None)
    description = config.label
    if choice.epoch != epochs:
        description += f" · kept epoch {choice.epoch}"
    update = WeightUpdate(choice.state, description)
    choice.state = None
    yield Progress(1.0, "applying the fine-tuned weights")
    entry = yield from scaled(session.apply_job(update, NEVER_CANCELLED), 1.0, 1.0)
    return result(choice.epoch, entry)


def _epoch_message(record: EpochRecord, epochs: int) -> str:
    """``epoch 3/10 · train loss 0.31 · val top-1 97.2% · val loss 0.091``."""
    parts = [f"epoch {record.epoch}/{epochs}"]
    if not math.isnan(record.train_loss):
        parts.append(f"train loss {record.train_loss:.3g}")
    if record.val_top1 is not None:
        parts.append(f"val top-1 {record.val_top1:.1%}")
    if record.val_loss is not None:
        parts.append(f"val loss {record.val_loss:.3g}")
    return " · ".join(parts)
