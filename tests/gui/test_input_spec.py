"""The example input for FLOPs: asked in a dialog, tried on the model, remembered per model.

Driven like a user: the Statistics panel's "Set input…" button, the dialog's
fields and OK button; FLOPs are checked against ``torch.utils.flop_counter``
on the very tensor the session holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QDialogButtonBox
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.analysis.stats import stats_job
from core.common.jobs import run_job
from gui.panels.input_spec import (
    InputSpec,
    InputSpecDialog,
    InputSpecError,
    parse_shape,
    prefill_spec,
    recall_spec,
)
from gui.panels.stats_panel import StatsPanel
from gui.session.controller import SessionController
from gui.session.loaded import LoadedModel
from gui.widgets.formatting import format_si

TIMEOUT = 20_000


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))


class TokenLstm(nn.Module):
    """Token ids -> Embedding -> LSTM -> Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.emb(tokens))
        return self.head(out)


def torch_flops(model: nn.Module, example: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return int(counter.get_total_flops())


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    path = tmp_path / "mlp.pt"
    path.write_bytes(b"")  # the identity is the file's absolute path
    return str(path)


@pytest.fixture
def controller(qtbot, settings_dir):
    c = SessionController()
    yield c
    if c.busy:
        c.cancel()
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT)
    if c.session is not None:
        c.session.close()


@pytest.fixture
def panel(qtbot, controller) -> StatsPanel:
    widget = StatsPanel(controller=controller)
    controller.stats_ready.connect(widget.show_stats)  # as the main window does
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def load(qtbot, controller: SessionController, model: nn.Module, source: str = "") -> None:
    controller.load(LoadedModel(model, "user model", source=source))
    idle(qtbot, controller)


def idle(qtbot, controller: SessionController) -> None:
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)


def click_ok(dialog: InputSpecDialog) -> None:
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()


def test_a_model_without_an_example_input_shows_flops_na(qtbot, controller, panel, model_file):
    load(qtbot, controller, mlp(), model_file)
    assert controller.session.example_input is None
    for key in ("flops_dense", "flops_effective", "flops_ratio"):
        assert panel.value_text(key) == "n/a"
    assert panel.input_button.text() == "Set input…"
    assert panel.input_button.isEnabled()
    assert "FLOPs need an example input" in panel.flops_note_text()


def test_setting_a_spec_makes_flops_appear_equal_to_torchs_counter(
    qtbot, controller, panel, model_file
):
    load(qtbot, controller, mlp(), model_file)
    panel.input_button.click()
    dialog = panel.input_dialog()
    assert dialog is not None and dialog.isVisible()
    dialog.shape_edit.setText("4, 12")
    dialog.dtype_box.setCurrentText("float32")
    with qtbot.waitSignal(panel.input_applied, timeout=TIMEOUT):
        click_ok(dialog)
    idle(qtbot, controller)
    session = controller.session
    example = session.example_input
    assert example is not None and tuple(example.shape) == (4, 12)
    assert example.dtype == torch.float32
    expected = torch_flops(session.model, example)
    assert expected == 2 * 4 * (12 * 6 + 6 * 3)
    assert run_job(stats_job(session)).flops_dense == expected
    assert panel.value_text("flops_dense") == format_si(expected)
    assert panel.input_button.text() == "Change input…"
    assert "4×12 float32" in panel.input_label.text()
    assert panel.input_dialog() is None  # closed once the model took the input
    assert panel.input_spec() == InputSpec((4, 12), "float32")


def test_a_bad_spec_is_explained_in_the_dialog(qtbot, controller, panel, model_file):
    load(qtbot, controller, mlp(), model_file)
    dialog = panel.open_input_dialog()
    dialog.shape_edit.setText("1, twelve")
    click_ok(dialog)
    assert "not a shape" in dialog.error_text()
    assert dialog.isVisible()
    # Parses, but the model refuses it: tried in a worker, explained in the dialog.
    dialog.shape_edit.setText("1,7")
    with qtbot.waitSignal(panel.input_failed, timeout=TIMEOUT):
        click_ok(dialog)
    assert "does not accept 1×7 float32" in dialog.error_text()
    assert dialog.isVisible()
    assert controller.session.example_input is None
    assert panel.value_text("flops_dense") == "n/a"
    # An empty token range is refused before anything runs.
    dialog.shape_edit.setText("1,12")
    dialog.dtype_box.setCurrentText("int64")
    dialog.low_box.setValue(5)
    dialog.high_box.setValue(2)
    click_ok(dialog)
    assert "range 5..2 is empty" in dialog.error_text()
    dialog.reject()
    idle(qtbot, controller)
    assert recall_spec(f"file:{Path(model_file).resolve()}") is None


def test_the_spec_is_remembered_when_the_same_model_is_opened_again(
    qtbot, controller, panel, model_file
):
    load(qtbot, controller, mlp(), model_file)
    with qtbot.waitSignal(panel.input_applied, timeout=TIMEOUT):
        panel.set_input_spec(InputSpec((2, 12), "float32"))
    idle(qtbot, controller)
    flops = panel.value_text("flops_dense")
    assert flops != "n/a"
    load(qtbot, controller, mlp(), "")  # another model (no identity): nothing remembered
    assert panel.value_text("flops_dense") == "n/a"
    with qtbot.waitSignal(panel.input_applied, timeout=TIMEOUT):
        controller.load(LoadedModel(mlp(), "user model", source=model_file))
    idle(qtbot, controller)
    assert tuple(controller.session.example_input.shape) == (2, 12)
    assert panel.value_text("flops_dense") == flops
    assert panel.input_spec() == InputSpec((2, 12), "float32")
    assert panel.input_dialog() is None  # nobody was asked


def test_the_dialog_is_prefilled_from_the_first_layer(qtbot, controller, panel, model_file):
    load(qtbot, controller, mlp(), model_file)
    dialog = panel.open_input_dialog()
    assert dialog.shape_edit.text() == "1,12"  # the first Linear's in_features
    assert dialog.dtype_box.currentText() == "float32"
    assert not dialog.low_box.isEnabled()
    dialog.reject()
    conv = nn.Sequential(nn.Conv2d(5, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    assert prefill_spec(conv)[0] == InputSpec((1, 5, 32, 32), "float32")  # in_channels
    assert prefill_spec(nn.Conv1d(7, 2, 3).to(torch.float16))[0] == InputSpec((1, 7, 32), "float16")
    load(qtbot, controller, TokenLstm())
    dialog = panel.open_input_dialog()
    assert dialog.dtype_box.currentText() == "int64"
    assert (dialog.low_box.value(), dialog.high_box.value()) == (0, 49)
    assert dialog.low_box.isEnabled()
    assert "token ids 0..49" in dialog.hint_label.text()
    dialog.reject()


def test_an_lstm_layer_is_listed_as_not_counted(qtbot, controller, panel):
    load(qtbot, controller, TokenLstm())
    dialog = panel.open_input_dialog()
    dialog.shape_edit.setText("2,6")
    with qtbot.waitSignal(panel.input_applied, timeout=TIMEOUT):
        click_ok(dialog)
    idle(qtbot, controller)
    example = controller.session.example_input
    assert example.dtype == torch.int64 and int(example.min()) >= 0 and int(example.max()) <= 49
    assert panel.value_text("flops_dense") == format_si(2 * 2 * 6 * 8 * 4)  # the head only
    assert "Not counted: lstm (LSTM)" in panel.not_counted_text()
    assert "lstm (LSTM)" in panel.flops_note_text()


def test_parsing_and_validation():
    assert parse_shape(" (1, 3, 224, 224) ") == (1, 3, 224, 224)
    assert parse_shape("1x784") == (1, 784)
    for bad in ("", "1,,a", "1,0", "-1,3"):
        with pytest.raises(InputSpecError):
            parse_shape(bad)
    with pytest.raises(InputSpecError, match="more than"):
        InputSpec((1, 3, 100_000, 100_000))
    with pytest.raises(InputSpecError, match="unknown dtype"):
        InputSpec((1, 3), "float64")
    spec = InputSpec((2, 5), "int64", 3, 9)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    tokens = spec.make_tensor()
    assert tokens.dtype == torch.int64 and tokens.min() >= 3 and tokens.max() <= 9
    assert torch.equal(tokens, spec.make_tensor())  # seeded


def test_the_windows_statistics_tab_changes_the_demos_input(qtbot, window):
    panel = window.stats_panel
    session = window.controller.session
    assert tuple(session.example_input.shape) == (1, 1, 8, 8)
    assert panel.input_button.text() == "Change input…"
    assert "1×1×8×8 float32" in panel.input_label.text()
    one = run_job(stats_job(session)).flops_dense
    dialog = panel.open_input_dialog()
    assert dialog.shape_edit.text() == "1,1,8,8"  # the model's own input
    dialog.shape_edit.setText("3,1,8,8")
    with qtbot.waitSignal(panel.input_applied, timeout=TIMEOUT):
        click_ok(dialog)
    idle(qtbot, window.controller)
    assert panel.value_text("flops_dense") == format_si(3 * one)
    assert panel.not_counted_text() == ""
