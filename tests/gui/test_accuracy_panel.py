"""The Accuracy panel, driven like a user in the window on the demo CNN: data, evaluation
kept in the history, masked fine-tuning with live curves, undo and both kinds of Cancel."""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from core.demos import evaluate_accuracy
from core.training.evaluate import Evaluation
from core.training.finetune import EpochRecord, FinetuneResult
from gui.accuracy.data_source import DataChoice, DataSourceBox
from gui.accuracy.finetune_form import DEFAULTS, FinetuneForm
from gui.accuracy.panel import AccuracyPanel
from gui.panels.stats_panel import StatsPanel
from gui.session.measurements import AUTO_ACCURACY, evaluation_key
from gui.window.main_window import MainWindow
from tests.gui.window_helpers import (
    CONV,
    FC,
    TIMEOUT,
    apply_l1,
    error_dialogs,
    on_details,
    wait_idle,
)

GATED_MODULE = "prunescope_test_gated_digits"
GATED_SOURCE = '''
"""Digits as loaders whose training data waits at the start of epoch 2 until GATE is set."""
import threading

from core.demos import load_digits

GATE = threading.Event()


class Gated:
    """Training batches; after one full pass (epoch 1) the next pass waits for GATE."""

    num_classes = 10

    def __init__(self, batches):
        self.batches = batches
        self.full_passes = 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        if self.full_passes >= 1:
            GATE.wait(30)  # a broken test fails instead of hanging
        yield from self.batches
        self.full_passes += 1


class GatedTest(Gated):
    """Test batches: the second batch of a pass waits for GATE."""

    def __iter__(self):
        for i, batch in enumerate(self.batches):
            if i == 1:
                GATE.wait(30)
            yield batch


def make():
    d = load_digits()
    def batches(x, y, size=64):
        return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]
    return {
        "train": Gated(batches(d.train_x[:1100], d.train_y[:1100])),
        "val": batches(d.train_x[1100:], d.train_y[1100:]),
        "test": GatedTest(batches(d.test_x, d.test_y)),
    }
'''


@pytest.fixture
def panel(qtbot, window: MainWindow) -> AccuracyPanel:
    """The panel as the integrator adds it: a tab of the window, on the window's controller."""
    widget = AccuracyPanel(window.controller)
    window.tabs.addTab(widget, "Accuracy")
    window.tabs.setCurrentWidget(widget)
    qtbot.waitUntil(lambda: widget.data is not None, timeout=TIMEOUT)
    wait_idle(qtbot, window)
    return widget


@pytest.fixture
def gated(monkeypatch, tmp_path: Path) -> Iterator[ModuleType]:
    """A ``package.module:function`` data source whose epoch 2 waits for the test."""
    (tmp_path / f"{GATED_MODULE}.py").write_text(textwrap.dedent(GATED_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module(GATED_MODULE)
    yield module
    module.GATE.set()
    sys.modules.pop(GATED_MODULE, None)


def weights(window: MainWindow) -> dict[str, torch.Tensor]:
    session = window.controller.session
    assert session is not None
    return {k: v.detach().clone() for k, v in session.model.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def history_rows(window: MainWindow) -> list[str]:
    model = window.history_view.model
    return [str(model.index(row).data()) for row in range(model.rowCount())]


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def run_finetune(qtbot, window: MainWindow, panel: AccuracyPanel) -> FinetuneResult:
    panel.tabs.setCurrentIndex(1)
    with qtbot.waitSignal(panel.finetuned, timeout=60_000) as blocker:
        click(qtbot, panel.finetune_button)
    wait_idle(qtbot, window)
    result: FinetuneResult = blocker.args[0]
    return result


# -- evaluation ----------------------------------------------------------------------------


def test_evaluate_on_the_demo_matches_the_engine_and_is_kept_with_its_history_step(
    qtbot, window, panel
):
    apply_l1(qtbot, window, CONV, 80.0)
    session = window.controller.session
    data = window.controller.loaded.data
    expected = evaluate_accuracy(session.model, data.test_x, data.test_y)
    assert panel.source.choice().kind == "digits"
    assert "1,293 train" in panel.source.description_text()
    panel.set_split("test")

    with qtbot.waitSignal(panel.evaluated, timeout=TIMEOUT) as blocker:
        click(qtbot, panel.evaluate_button)
    wait_idle(qtbot, window)
    evaluation: Evaluation = blocker.args[0]

    # What the user sees: top-1 as the engine's accuracy, the confusion matrix of the test set.
    assert evaluation.top1 == pytest.approx(expected, abs=1e-9)
    assert panel.view.value_text("top1") == f"{100 * expected:.1f}%"
    assert panel.view.value_text("count") == "360 test"
    assert panel.view.value_text("fidelity").endswith("%")
    assert panel.view.confusion_model.total() == len(data.test_y) == 360
    assert panel.view.confusion_model.rowCount() == panel.view.confusion_model.columnCount() == 10
    per_class = panel.view.class_model.accuracies()
    assert len(per_class) == 10
    assert sum(a * row_sum for a, row_sum in zip(
        per_class, map(sum, evaluation.confusion), strict=True
    )) == pytest.approx(expected * 360)  # fmt: skip
    assert "step 1" in panel.view.where.text()

    # Kept with the history step it was measured at, and shown beside it.
    measurements = session.history.measurements()
    assert measurements[evaluation_key("test")] == evaluation.to_dict()
    assert measurements[AUTO_ACCURACY] == pytest.approx(expected)
    assert history_rows(window)[1].endswith(f"{100 * expected:.1f}%")
    assert window.history_view.model.accuracy(1) == f"{100 * expected:.1f}%"
    assert window.controller.accuracy() == pytest.approx(expected)

    # Going back shows that the result belongs to step 1; coming back shows it again.
    window.controller.undo()
    wait_idle(qtbot, window)
    assert "changed since" in panel.view.where.text()
    window.controller.redo()
    wait_idle(qtbot, window)
    assert "changed since" not in panel.view.where.text()
    assert panel.view.evaluation == evaluation


def test_the_demo_records_its_automatic_test_accuracy_at_every_step(qtbot, window, panel):
    stats = StatsPanel()
    qtbot.addWidget(stats)
    window.controller.accuracy_ready.connect(stats.show_accuracy)  # the integrator's line
    apply_l1(qtbot, window, FC, 90.0)
    session = window.controller.session
    data = window.controller.loaded.data
    expected = evaluate_accuracy(session.model, data.test_x, data.test_y)
    assert session.history.measurements()[AUTO_ACCURACY] == pytest.approx(expected)
    start = session.history.measurements(0)[AUTO_ACCURACY]
    assert history_rows(window)[0].endswith(f"{100 * start:.1f}%")
    assert history_rows(window)[1].endswith(f"{100 * expected:.1f}%")
    assert stats.value_text("accuracy") == f"{100 * expected:.1f}%"
    assert window.accuracy_label.text() == f"Test accuracy {expected:.1%}"


def test_cancel_stops_an_evaluation_and_records_nothing(qtbot, window, panel, gated):
    panel.source.set_kind("callable")
    panel.source.set_target(f"{GATED_MODULE}:make")
    evaluated: list[object] = []
    panel.evaluated.connect(evaluated.append)
    click(qtbot, panel.evaluate_button)
    qtbot.waitUntil(  # the data is loaded; the evaluation runs
        lambda: panel.running == "Evaluate test" and panel.evaluate_cancel.isEnabled(),
        timeout=TIMEOUT,
    )
    assert panel.source.description_text().startswith(f"✓ {GATED_MODULE}:make")
    with qtbot.waitSignal(panel.job.cancelled, timeout=TIMEOUT):
        click(qtbot, panel.evaluate_cancel)
        gated.GATE.set()
    wait_idle(qtbot, window)
    assert panel.evaluate_text() == "Evaluation cancelled."
    assert evaluated == [] and panel.view.evaluation is None
    assert evaluation_key("test") not in window.controller.session.history.measurements()
    assert not panel.evaluate_cancel.isEnabled() and panel.evaluate_button.isEnabled()


def test_a_demo_gets_the_digits_and_another_model_the_users_last_choice(qtbot, window, panel):
    mine = DataChoice("file", "/data/mine.npz", 0.1, 0.3, 5)
    panel.source.set_choice(mine)  # as if typed
    window.open_demo("resnet18")  # no data of its own
    wait_idle(qtbot, window)
    assert panel.source.choice() == mine and panel.data is None
    window.open_demo("cnn")
    qtbot.waitUntil(lambda: panel.data is not None, timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert panel.source.choice().kind == "digits"
    assert panel.source.remembered() == mine  # the demo's digits were not a user's choice


def test_a_data_file_that_does_not_fit_the_model_is_refused_before_anything_runs(
    qtbot, window, panel, tmp_path
):
    path = tmp_path / "wrong_shape.npz"
    x = np.zeros((40, 3, 5, 5), dtype=np.float32)  # 75 values a sample; the model takes 1x8x8
    np.savez(path, x=x, y=np.arange(40) % 10)
    rows = history_rows(window)
    before = weights(window)
    panel.source.set_kind("file")
    panel.source.set_target(str(path))
    assert panel.data is None
    evaluated: list[object] = []
    panel.evaluated.connect(evaluated.append)

    click(qtbot, panel.evaluate_button)
    qtbot.waitUntil(lambda: bool(panel.source.error_text()), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    error = panel.source.error_text()
    assert "wrong_shape.npz" in error and "3×5×5" in error, error
    assert panel.data is None and evaluated == [] and panel.view.evaluation is None
    assert evaluation_key("test") not in window.controller.session.history.measurements()

    panel.tabs.setCurrentIndex(1)
    click(qtbot, panel.finetune_button)
    wait_idle(qtbot, window)
    assert panel.source.error_text() == error
    assert history_rows(window) == rows
    assert_same(weights(window), before)
    assert not error_dialogs()  # said in the panel, no dialog needed


def test_a_bad_setting_is_explained_in_the_form_and_starts_nothing(qtbot, window, panel):
    panel.form.lr_edit.setText("0")
    assert "learning rate" in panel.form.error_text()
    rows = history_rows(window)
    assert panel.finetune() is False
    wait_idle(qtbot, window)
    assert history_rows(window) == rows


# -- fine-tuning ------------------------------------------------------------------------------


def test_finetune_from_the_panel_is_one_step_with_live_curves_and_undo_restores_exactly(
    qtbot, window, panel
):
    apply_l1(qtbot, window, CONV, 80.0)
    session = window.controller.session
    pruned = {name: ~session.mask(name) for name in session.names}
    before = weights(window)
    rows = history_rows(window)
    form = panel.form
    assert form.config() == DEFAULTS  # Adam 1e-3, cosine, distillation, keep best
    form.epochs_spin.setValue(2)
    records: list[EpochRecord] = []
    on_details(window, lambda d: records.append(d) if isinstance(d, EpochRecord) else None)

    result = run_finetune(qtbot, window, panel)

    assert not result.cancelled and len(result.records) == 2
    assert [r.epoch for r in panel.curves.records] == [1, 2]
    assert [x for x, _ in panel.curves.points()["train_loss"]] == [1.0, 2.0]
    assert len(panel.curves.points()["val_top1"]) == 3  # before training, then each epoch
    assert [r.epoch for r in records] == [0, 1, 2]
    after = history_rows(window)
    assert result.entry is not None  # seeded: an epoch beats the pruned start on validation
    assert len(after) == len(rows) + 1 and "Fine-tune 2 epochs" in after[-1]
    kept = result.records[result.chosen_epoch - 1]
    assert panel.finetune_text() == (
        f"Fine-tuned 2 epochs · kept epoch {result.chosen_epoch} "
        f"(best validation {100 * kept.val_top1:.1f}%)"
    )
    assert panel.curves.chosen_epoch == result.chosen_epoch
    tuned = weights(window)
    assert any(not torch.equal(tuned[k], before[k]) for k in before)
    params = dict(session.model.named_parameters())
    assert pruned[CONV].sum() == round(0.8 * pruned[CONV].numel())
    for name, where in pruned.items():  # the masks held: pruned weights are exactly zero
        assert torch.count_nonzero(params[name].detach()[where]) == 0, name

    window.undo_action.trigger()
    wait_idle(qtbot, window)
    assert history_rows(window)[: len(rows)] == rows
    assert session.history.cursor == len(rows) - 1
    assert_same(weights(window), before)


def test_cancel_with_return_to_before_leaves_weights_and_history(qtbot, window, panel, gated):
    panel.source.set_kind("callable")
    panel.source.set_target(f"{GATED_MODULE}:make")
    panel.form.epochs_spin.setValue(3)
    panel.form.set_on_cancel("revert")
    assert panel.form.cancel_revert.isChecked()
    rows, before = history_rows(window), weights(window)

    def on_detail(detail: object) -> None:
        if isinstance(detail, EpochRecord) and detail.epoch == 1:
            panel.finetune_cancel.click()
            gated.GATE.set()

    on_details(window, on_detail)
    result = run_finetune(qtbot, window, panel)

    assert result.cancelled and result.entry is None and result.chosen_epoch == 0
    assert len(result.records) == 1
    assert history_rows(window) == rows
    assert_same(weights(window), before)
    assert (
        panel.finetune_text() == "Cancelled after 1 epoch · the model is as it was before the run"
    )


def test_cancel_with_keep_after_one_epoch_keeps_that_epoch_as_one_step(qtbot, window, panel, gated):
    panel.source.set_kind("callable")
    panel.source.set_target(f"{GATED_MODULE}:make")
    panel.form.epochs_spin.setValue(3)
    panel.form.keep_combo.setCurrentIndex(panel.form.keep_combo.findData("last"))
    panel.form.set_on_cancel("keep")
    rows, before = history_rows(window), weights(window)

    def on_detail(detail: object) -> None:
        if isinstance(detail, EpochRecord) and detail.epoch == 1:
            click(qtbot, panel.finetune_cancel)
            gated.GATE.set()

    on_details(window, on_detail)
    result = run_finetune(qtbot, window, panel)

    assert result.cancelled and result.chosen_epoch == 1 and result.entry is not None
    assert [r.epoch for r in result.records] == [1]
    after = history_rows(window)
    assert len(after) == len(rows) + 1 and "kept epoch 1" in after[-1]
    assert panel.finetune_text().startswith("Cancelled after 1 epoch · kept epoch 1")
    assert any(not torch.equal(weights(window)[k], before[k]) for k in before)
    window.controller.undo()
    wait_idle(qtbot, window)
    assert_same(weights(window), before)


# -- the parts --------------------------------------------------------------------------------


def test_the_form_disables_what_does_not_apply_and_remembers_its_settings(qtbot, settings_dir):
    form = FinetuneForm()
    qtbot.addWidget(form)
    form.optimizer_combo.setCurrentIndex(form.optimizer_combo.findData("adam"))
    assert not form.momentum_spin.isEnabled()
    form.optimizer_combo.setCurrentIndex(form.optimizer_combo.findData("sgd"))
    assert form.momentum_spin.isEnabled()
    form.distill_check.setChecked(False)
    assert not form.temperature_spin.isEnabled() and not form.alpha_spin.isEnabled()
    form.lr_edit.setText("0.05")
    form.patience_spin.setValue(3)
    config = form.config()
    assert (config.optimizer, config.lr, config.distill, config.patience) == ("sgd", 0.05, False, 3)

    again = FinetuneForm()
    qtbot.addWidget(again)
    assert again.config() == config
    again.defaults_button.click()
    assert again.config() == DEFAULTS


def test_the_data_choice_is_remembered(qtbot, settings_dir):
    box = DataSourceBox()
    qtbot.addWidget(box)
    assert box.choice() == DataChoice()  # the digits by default
    assert not box.test_spin.isEnabled()  # the digits have a fixed test split
    box.set_choice(DataChoice("file", "/data/set.npz", 0.15, 0.25, 7))
    assert box.test_spin.isEnabled()

    again = DataSourceBox()
    qtbot.addWidget(again)
    choice = again.choice()
    assert (choice.kind, choice.target, choice.seed) == ("file", "/data/set.npz", 7)
    assert math.isclose(choice.val_fraction, 0.15) and math.isclose(choice.test_fraction, 0.25)
    again.set_kind("callable")
    assert not again.val_spin.isEnabled() and not again.seed_spin.isEnabled()
    again.set_kind("file")
    assert again.choice().target == "/data/set.npz"
