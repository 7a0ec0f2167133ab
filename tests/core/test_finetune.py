"""Fine-tuning with masks held: exact zeros through every optimiser step (weights and
optimiser state), reproducibility, cancel (keep / revert), one undoable entry,
distillation, validation-only choices, schedules and settings."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import core.training.finetune as finetune_module
from core.common.jobs import CancelToken, Progress, run_job
from core.demos import DigitsCNN, load_demo, load_digits
from core.pruning.methods import (
    BlockSparsity,
    CustomMask,
    L1Unstructured,
    LnStructured,
    NMSparsity,
)
from core.pruning.session import PruningSession
from core.training.data import DataError, Dataset, load_data
from core.training.evaluate import evaluate
from core.training.finetune import (
    EpochRecord,
    FinetuneConfig,
    FinetuneConfigError,
    FinetuneResult,
    distillation_loss,
    finetune_job,
    shift_images,
)
from core.training.masked_optim import MaskedOptimizer
from core.training.schedules import learning_rate

FAST = {"epochs": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def small() -> Dataset:
    """160 train, 64 val, 64 test digits: fast epochs."""
    digits = load_digits()
    return Dataset.from_tensors(
        "small digits",
        {
            "train": (digits.train_x[:160], digits.train_y[:160]),
            "val": (digits.train_x[160:224], digits.train_y[160:224]),
            "test": (digits.test_x[:64], digits.test_y[:64]),
        },
    )


def _pruned_every_kind(session: PruningSession) -> None:
    """Masks of every kind: structured channels, N:M, blocks, unstructured, painted, global."""
    session.prune("stem.conv.weight", LnStructured(0.25, n=2, dim=0))
    session.prune("block1.conv1.weight", NMSparsity(2, 4))
    session.prune("block1.conv2.weight", BlockSparsity(0.5, 4, 4))
    session.prune("expand.conv.weight", L1Unstructured(0.8))
    session.paint("classifier.weight", range(0, 320, 3), keep=False)
    custom = torch.rand(32, 16, 3, 3, generator=torch.Generator().manual_seed(5)) > 0.3
    session.prune("expand.conv.weight", CustomMask(custom))
    session.global_prune(0.2)


@pytest.fixture
def session() -> Iterator[PruningSession]:
    with PruningSession(load_demo("cnn").model) as session:
        _pruned_every_kind(session)
        yield session


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _finetune(
    session: PruningSession,
    data: Dataset,
    on_progress: Callable[[Progress], None] | None = None,
    token: CancelToken | None = None,
    **settings: object,
) -> FinetuneResult:
    config = FinetuneConfig(**{**FAST, **settings})  # type: ignore[arg-type]
    job = finetune_job(session, data, config, token or CancelToken())
    return run_job(job, on_progress)


# --------------------------------------------------------------------- exact zeros

OPTIMISER_SETTINGS = [
    {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
    {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.01},
    {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.05},
]


@pytest.mark.parametrize("settings", OPTIMISER_SETTINGS, ids=lambda s: s["optimizer"])
def test_pruned_weights_and_their_optimiser_state_stay_exactly_zero_every_step(
    session: PruningSession,
    small: Dataset,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, object],
) -> None:
    masks = {name: session.mask(name) for name in session.names}
    assert all(not bool(m.all()) for m in masks.values())  # every layer has pruned entries
    before = {name: session.effective(name).clone() for name in session.names}
    checked: list[int] = []
    original_step = MaskedOptimizer.step

    def step_and_check(self: MaskedOptimizer) -> None:
        original_step(self)
        assert len(self.pruned) == len(masks)
        for param, pruned in self.pruned:
            assert torch.all(param[pruned] == 0)
            state = self.optimizer.state[param]
            moments = [v for v in state.values() if torch.is_tensor(v) and v.shape == param.shape]
            assert moments, "the optimiser keeps per-weight state"
            for moment in moments:
                assert torch.all(moment[pruned] == 0)
        checked.append(1)

    monkeypatch.setattr(MaskedOptimizer, "step", step_and_check)
    result = _finetune(session, small, keep="last", schedule="onecycle", **settings)
    assert len(checked) == 2 * 5  # every step of both epochs
    assert result.chosen_epoch == 2 and result.entry is not None
    for name, mask in masks.items():
        assert torch.equal(session.mask(name), mask)  # masks unchanged
        weights = session.effective(name)
        assert torch.all(weights[~mask] == 0)
        assert not torch.equal(weights[mask], before[name][mask])  # kept ones trained


@pytest.mark.parametrize("settings", OPTIMISER_SETTINGS, ids=lambda s: s["optimizer"])
def test_masked_optimizer_holds_zeros_where_plain_torch_drifts(settings: dict[str, object]) -> None:
    """The same steps with torch's optimiser and zeroing after each step: state drifts;
    without zeroing, weights drift too. The masked optimiser keeps both at zero."""
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8, generator=gen), torch.randint(0, 10, (64,), generator=gen)

    def trained(masked: bool) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor]:
        model = _seeded_cnn()
        keep = torch.rand(model.expand.conv.weight.shape, generator=gen) > 0.5
        with torch.no_grad():
            model.expand.conv.weight[~keep] = 0.0
        options = {k: v for k, v in settings.items() if k != "optimizer"}
        wrapper = MaskedOptimizer(
            model, {"expand.conv.weight": keep}, str(settings["optimizer"]), **options
        )  # type: ignore[arg-type]
        optimizer = wrapper.optimizer
        for _ in range(5):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            if masked:
                wrapper.step()
                weight = model.expand.conv.weight
                assert torch.all(weight[~keep] == 0)
                for moment in optimizer.state[weight].values():
                    if moment.shape == weight.shape:
                        assert torch.all(moment[~keep] == 0)
            else:
                optimizer.step()
        return model, optimizer, keep

    _, _, _ = trained(masked=True)
    model, optimizer, keep = trained(masked=False)
    weight = model.expand.conv.weight
    assert torch.any(weight[~keep] != 0)  # the naive loop lets pruned weights move
    moments = [m for m in optimizer.state[weight].values() if m.shape == weight.shape]
    assert any(torch.any(m[~keep] != 0) for m in moments)


def _seeded_cnn() -> DigitsCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return DigitsCNN()


# --------------------------------------------------------------------- reproducibility


def test_same_seed_same_weights_other_seed_other_weights(small: Dataset) -> None:
    def run(seed: int, disturb: bool) -> dict[str, torch.Tensor]:
        with PruningSession(load_demo("cnn").model) as session:
            _pruned_every_kind(session)

            def draw(_: Progress) -> None:
                if disturb:
                    torch.rand(3)  # the caller uses torch's global RNG between steps

            caller = torch.get_rng_state()
            _finetune(session, small, draw, seed=seed, augment="shift", keep="last")
            if not disturb:
                assert torch.equal(torch.get_rng_state(), caller)  # the caller's RNG untouched
            return _state(session.model)

    first = run(0, disturb=False)
    assert _same(first, run(0, disturb=True))
    assert not _same(first, run(1, disturb=False))


LOADER_MODULE = """
import torch
from torch.utils.data import DataLoader, TensorDataset
from core.demos import load_digits

def loaders():
    d = load_digits()
    train = TensorDataset(d.train_x[:96], d.train_y[:96])
    test = TensorDataset(d.test_x[:40], d.test_y[:40])
    # shuffled by torch's global RNG: the fine-tune's private seeded one
    return DataLoader(train, batch_size=32, shuffle=True), DataLoader(test, batch_size=40)
"""


def test_a_shuffling_dataloader_is_reproducible_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ft_loaders.py").write_text(textwrap.dedent(LOADER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        data = load_data("ft_loaders:loaders")
        states = []
        for _ in range(2):
            with PruningSession(load_demo("cnn").model) as session:
                session.global_prune(0.5)
                result = _finetune(session, data)
                assert "no validation split" in " ".join(result.notes)
                states.append(_state(session.model))
        assert _same(*states)
    finally:
        sys.modules.pop("ft_loaders", None)


# --------------------------------------------------------------------- one undoable entry


def test_one_history_entry_undo_restores_params_and_buffers_exactly(
    session: PruningSession, small: Dataset
) -> None:
    before = _state(session.model)
    entries = len(session.history.entries)
    result = _finetune(session, small, keep="last", distill=True)
    after = _state(session.model)
    assert len(session.history.entries) == entries + 1
    assert result.entry is session.history.entries[-1]
    assert result.entry.label == "Fine-tune 2 epochs · Adam 1e-3 · constant · distilled T=4 α=0.7"
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "stem.bn.running_mean" in changed and "block1.bn1.running_var" in changed
    assert "classifier.bias" in changed and "expand.conv.weight" in changed
    session.undo()
    assert _same(_state(session.model), before)
    session.redo()
    assert _same(_state(session.model), after)


def test_the_session_is_untouched_while_training(session: PruningSession, small: Dataset) -> None:
    before = _state(session.model)
    seen: list[bool] = []

    def look(progress: Progress) -> None:
        if progress.message.startswith("epoch 2/2 · batch"):
            seen.append(_same(_state(session.model), before))

    _finetune(session, small, look, keep="last")
    assert seen and all(seen)
    assert not _same(_state(session.model), before)


# --------------------------------------------------------------------- cancel


def _cancel_at(token: CancelToken, when: Callable[[Progress], bool]) -> Callable[[Progress], None]:
    def watch(progress: Progress) -> None:
        if when(progress):
            token.cancel()

    return watch


def _after_epoch(n: int) -> Callable[[Progress], bool]:
    return lambda p: isinstance(p.detail, EpochRecord) and p.detail.epoch == n


def test_cancel_keep_applies_the_last_completed_epoch_never_a_half_one(small: Dataset) -> None:
    def session_state(**settings: object) -> tuple[FinetuneResult, dict[str, torch.Tensor]]:
        with PruningSession(load_demo("cnn").model) as session:
            _pruned_every_kind(session)
            token = CancelToken()
            midway = _cancel_at(token, lambda p: p.message.startswith("epoch 3/4 · batch 3/"))
            result = _finetune(session, small, midway, token, epochs=4, **settings)
            return result, _state(session.model)

    cancelled, state = session_state(keep="last", on_cancel="keep")
    assert cancelled.cancelled and cancelled.chosen_epoch == 2 and cancelled.entry is not None
    assert len(cancelled.records) == 2
    with PruningSession(load_demo("cnn").model) as reference:
        _pruned_every_kind(reference)
        _finetune(reference, small, epochs=2, keep="last")  # constant lr: the same two epochs
        assert _same(state, _state(reference.model))


def test_cancel_revert_leaves_the_session_as_it_was(
    session: PruningSession, small: Dataset
) -> None:
    before, entries = _state(session.model), len(session.history.entries)
    token = CancelToken()
    result = _finetune(
        session, small, _cancel_at(token, _after_epoch(1)), token, on_cancel="revert"
    )
    assert result.cancelled and result.entry is None and result.chosen_epoch == 0
    assert len(result.records) == 1
    assert _same(_state(session.model), before) and len(session.history.entries) == entries


def test_cancel_before_any_epoch_completed_changes_nothing(
    session: PruningSession, small: Dataset
) -> None:
    before = _state(session.model)
    token = CancelToken()
    first_batch = _cancel_at(token, lambda p: "batch 1/" in p.message)
    result = _finetune(session, small, first_batch, token, on_cancel="keep")
    assert result.cancelled and result.entry is None and result.records == ()
    assert _same(_state(session.model), before)


# --------------------------------------------------------------------- choices on validation only


class _Spy:
    """Records which splits a fine-tune reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, data: Dataset) -> None:
        self.splits: set[str] = set()
        original = type(data).batches

        def batches(self_: Dataset, split: str, *args: object, **kw: object) -> Iterator:  # type: ignore[type-arg]
            self.splits.add(split)
            return original(self_, split, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(type(data), "batches", batches)


def test_keep_best_picks_the_best_validation_epoch_and_never_reads_test(
    session: PruningSession, small: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch, small)
    result = _finetune(session, small, epochs=4, optimizer="sgd", lr=0.3, keep="best")
    assert "test" not in spy.splits and {"train", "val"} <= spy.splits
    baseline = result.baseline
    assert baseline is not None and baseline.epoch == 0 and math.isnan(baseline.train_loss)
    candidates = [baseline, *result.records]
    best = max(candidates, key=lambda r: (r.val_top1, -(r.val_loss or 0.0)))
    assert result.chosen_epoch == best.epoch
    if best.epoch:
        applied = evaluate(session.model, small, "val")
        assert applied.top1 == best.val_top1
        assert applied.loss == pytest.approx(best.val_loss)


def test_a_run_that_only_hurts_keeps_nothing_and_stops_early(small: Dataset) -> None:
    with PruningSession(load_demo("cnn").model) as session:  # dense and trained: hard to beat
        before = _state(session.model)
        result = _finetune(session, small, epochs=5, lr=1.0, keep="best", patience=2)
        assert result.chosen_epoch == 0 and result.entry is None and not result.cancelled
        assert result.stopped_early and len(result.records) == 2
        assert result.baseline is not None
        assert all(r.val_top1 is not None for r in result.records)
        assert all(r.val_top1 < result.baseline.val_top1 for r in result.records)  # type: ignore[operator]
        assert _same(_state(session.model), before) and not session.history.entries
        assert any("nothing applied" in n for n in result.notes)


def test_without_validation_keep_best_falls_back_to_last_and_says_so(
    small: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    digits = load_digits()
    no_val = Dataset.from_tensors(
        "no val",
        {
            "train": (digits.train_x[:128], digits.train_y[:128]),
            "test": (digits.test_x, digits.test_y),
        },
    )
    spy = _Spy(monkeypatch, no_val)
    with PruningSession(load_demo("cnn").model) as session:
        session.global_prune(0.5)
        result = _finetune(session, no_val, keep="best", patience=1)
    assert spy.splits == {"train"}
    assert result.chosen_epoch == 2 and result.baseline is None
    assert any("kept the last epoch" in n for n in result.notes)
    assert any("no early stopping" in n for n in result.notes)
    assert all(r.val_loss is None and r.val_top1 is None for r in result.records)


# --------------------------------------------------------------------- distillation


def test_distillation_loss_formula() -> None:
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 10, generator=gen), torch.randn(6, 10, generator=gen)
    labels = torch.randint(0, 10, (6,), generator=gen)
    t, alpha = 3.0, 0.6
    p_teacher = F.softmax(teacher / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student / t, dim=1))).sum(1).mean()
    expected = alpha * t * t * kl + (1 - alpha) * F.cross_entropy(student, labels)
    assert float(distillation_loss(student, teacher, labels, t, alpha)) == pytest.approx(
        float(expected), rel=1e-5
    )
    assert float(distillation_loss(student, teacher, labels, t, 0.0)) == pytest.approx(
        float(F.cross_entropy(student, labels)), rel=1e-6
    )
    assert float(distillation_loss(student, teacher, None, t, alpha)) == pytest.approx(
        float(t * t * kl), rel=1e-5
    )


def test_distillation_changes_the_result(small: Dataset) -> None:
    states = []
    for distill in (False, True):
        with PruningSession(load_demo("cnn").model) as session:
            _pruned_every_kind(session)
            _finetune(session, small, keep="last", distill=distill)
            states.append(_state(session.model))
    assert not _same(*states)


def test_unlabeled_data_trains_by_distillation_only(small: Dataset) -> None:
    digits = load_digits()
    unlabeled = Dataset.from_tensors(
        "unlabeled", {"train": (digits.train_x[:128], None), "val": (digits.train_x[128:192], None)}
    )
    with PruningSession(load_demo("cnn").model) as session:
        session.global_prune(0.6)
        with pytest.raises(DataError, match="turn on distillation"):
            _finetune(session, unlabeled)
        result = _finetune(session, unlabeled, distill=True, keep="best")
    assert result.baseline is not None and result.baseline.val_top1 is None
    losses = [r.val_loss for r in (result.baseline, *result.records)]
    assert all(loss is not None and loss >= 0 for loss in losses)
    assert losses[-1] < losses[0]  # closer to the unpruned model
    assert result.chosen_epoch == 2


# --------------------------------------------------------------------- progress and settings


def test_progress_per_batch_and_an_epoch_record_per_epoch(
    session: PruningSession, small: Dataset
) -> None:
    reports: list[Progress] = []
    _finetune(session, small, reports.append)
    records = [p.detail for p in reports if isinstance(p.detail, EpochRecord)]
    assert [r.epoch for r in records] == [0, 1, 2]
    batches = [p for p in reports if " · batch " in p.message]
    assert len(batches) == 10 and batches[0].message.startswith("epoch 1/2 · batch 1/5 · loss ")
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(r.lr == pytest.approx(1e-3) and r.seconds >= 0 for r in records)


def test_schedules() -> None:
    assert learning_rate("constant", 0.1, 0.7) == 0.1
    assert learning_rate("cosine", 0.1, 0.0) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 0.5) == pytest.approx(0.05)
    assert learning_rate("cosine", 0.1, 1.0) == pytest.approx(0.0)
    assert learning_rate("onecycle", 0.1, 0.0) == pytest.approx(0.1 / 25)
    assert learning_rate("onecycle", 0.1, 0.3) == pytest.approx(0.1)
    assert learning_rate("onecycle", 0.1, 1.0) == pytest.approx(0.1 / 25 / 1e4)
    ramp = [learning_rate("onecycle", 0.1, t / 100) for t in range(101)]
    assert ramp[:31] == sorted(ramp[:31]) and ramp[30:] == sorted(ramp[30:], reverse=True)


def test_cosine_schedule_reaches_the_records(session: PruningSession, small: Dataset) -> None:
    result = _finetune(session, small, epochs=4, schedule="cosine", lr=0.01, keep="last")
    lrs = [r.lr for r in result.records]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 0.01 and lrs[-1] < 0.001


def test_shift_images_moves_each_image_by_at_most_one_pixel() -> None:
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5) + 1
    shifted = shift_images(x, torch.Generator().manual_seed(0))
    padded = F.pad(x, (1, 1, 1, 1))
    for i in range(2):
        windows = [padded[i, :, dy : dy + 5, dx : dx + 5] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(shifted[i], w) for w in windows)
    many = shift_images(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(1))
    assert not torch.equal(many, x.repeat(50, 1, 1, 1))  # some do move


def test_shift_needs_image_inputs() -> None:
    flat = Dataset.from_tensors("flat", {"train": (torch.zeros(8, 64), torch.zeros(8).long())})
    with (
        PruningSession(nn.Sequential(nn.Linear(64, 10))) as session,
        pytest.raises(DataError, match="shift augmentation needs image inputs"),
    ):
        _finetune(session, flat, augment="shift")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch size"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam, adamw"),
        ({"schedule": "step"}, "schedule must be one of constant, cosine, onecycle"),
        ({"lr": 0.0}, "learning rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1.0}, "weight decay"),
        ({"temperature": 0.0}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"keep": "first"}, "keep must be one of best, last"),
        ({"patience": 0}, "patience"),
        ({"on_cancel": "ask"}, "on_cancel must be one of keep, revert"),
        ({"augment": "flip"}, "augment must be one of none, shift"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, object], message: str) -> None:
    with pytest.raises(FinetuneConfigError, match=message):
        FinetuneConfig(**settings).check()  # type: ignore[arg-type]


def test_config_label_and_json_round_trip() -> None:
    config = FinetuneConfig(
        epochs=30,
        optimizer="adamw",
        lr=5e-3,
        schedule="onecycle",
        weight_decay=5e-4,
        distill=True,
        temperature=4.0,
        alpha=0.7,
        augment="shift",
        patience=5,
    )
    assert config.label == (
        "Fine-tune 30 epochs · AdamW 5e-3 · onecycle · wd 5e-4 · shift augmentation"
        " · distilled T=4 α=0.7"
    )
    assert FinetuneConfig().label == "Fine-tune 10 epochs · Adam 1e-3 · constant"
    back = FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config
    with pytest.raises(FinetuneConfigError, match="unknown fine-tuning setting"):
        FinetuneConfig.from_dict({"epoch": 3})
    assert finetune_module.OPTIMIZERS == ("sgd", "adam", "adamw")
    assert finetune_module.SCHEDULES == ("constant", "cosine", "onecycle")
