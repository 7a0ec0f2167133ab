"""Opening and saving from the window: factories, trust, saved sessions, every save format."""

from __future__ import annotations

import json

import pytest
import torch
from PySide6.QtWidgets import QDialog, QMessageBox
from safetensors.torch import save_file
from torch import nn

from core.demos import build_demo_architecture
from gui.window.model_files import FactoryDialog
from tests.gui.window_helpers import (
    CONV,
    FC,
    TIMEOUT,
    apply_l1,
    close_error_dialogs,
    error_dialogs,
    make_window,
    wait_idle,
)


def demo_weights(tmp_path, suffix: str = ".safetensors"):
    """A state_dict of the demo CNN architecture, as a user would save one."""
    model = build_demo_architecture("cnn")
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return model, path


def test_a_weights_file_asks_for_its_factory_once_and_remembers_it(
    qtbot, window, tmp_path, monkeypatch
):
    model, path = demo_weights(tmp_path)
    asked: list[str] = []

    def answer(dialog: FactoryDialog) -> int:
        asked.append(dialog.factory.currentText())
        dialog.factory.setEditText("core.demos:build_demo_architecture")
        dialog.args.setText(json.dumps({"name": "cnn"}))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(FactoryDialog, "exec", answer)
    # A safetensors file never runs code: no pickle warning, only the factory question.
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail("asked to trust"))
    assert window.open_model_file(str(path))
    qtbot.waitUntil(lambda: window.controller.loaded.source == str(path), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert len(asked) == 1
    session = window.controller.session
    assert torch.equal(session.effective(CONV), model.state_dict()[CONV])
    assert str(path.resolve()) in window.recent_files()
    assert window.files.remembered_factory(str(path)) == (
        "core.demos:build_demo_architecture",
        {"name": "cnn"},
    )
    window.open_demo("mlp")
    wait_idle(qtbot, window)
    assert window.open_model_file(str(path))  # the remembered factory: nothing asked
    qtbot.waitUntil(lambda: window.controller.loaded.source == str(path), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert len(asked) == 1 and CONV in window.controller.session.names


def test_a_cancelled_factory_question_keeps_the_current_model(qtbot, window, tmp_path, monkeypatch):
    _model, path = demo_weights(tmp_path, ".pt")
    before = window.controller.session
    monkeypatch.setattr(FactoryDialog, "exec", lambda _d: QDialog.DialogCode.Rejected)
    window.open_model_file(str(path))
    wait_idle(qtbot, window)
    assert window.controller.session is before and not error_dialogs()


def test_a_pickled_model_opens_only_after_the_user_trusts_it(qtbot, window, tmp_path, monkeypatch):
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    whole = tmp_path / "whole.pt"
    torch.save(model, whole)
    before = window.controller.session
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Open]
    texts: list[str] = []

    def warning(_parent, _title, text, *_args):
        texts.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "warning", warning)
    window.open_model_file(str(whole))
    wait_idle(qtbot, window)
    assert window.controller.session is before  # refused: nothing was unpickled
    assert "pickled" in texts[0] and "Sequential" in texts[0]
    window.open_model_file(str(whole))
    qtbot.waitUntil(lambda: window.controller.session is not before, timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert window.controller.session.names == ["0.weight", "2.weight"]


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("m.prunescope", "session"),
        ("m.pt", "torch_prune"),
        ("m.safetensors", "sparse"),
        ("m.pt", "state_dict"),
        ("m.safetensors", "slim"),
    ],
)
def test_every_format_saves_from_the_window(qtbot, window, tmp_path, name, format):
    apply_l1(qtbot, window, CONV, 50.0)
    path = tmp_path / name
    assert window.save_to(str(path), format)
    wait_idle(qtbot, window)
    assert not error_dialogs(), error_dialogs()[0].text() if error_dialogs() else ""
    assert path.is_file() and (tmp_path / f"{name}.recipe.json").is_file()
    assert format in window.statusBar().currentMessage()


def test_a_saved_session_reopens_where_it_was(qtbot, window, tmp_path):
    session = window.controller.session
    apply_l1(qtbot, window, CONV, 50.0)
    apply_l1(qtbot, window, FC, 30.0)
    masks = {name: session.packed_mask(name) for name in session.names}
    original = session.original(CONV)
    path = tmp_path / "work.prunescope"
    assert window.save_to(str(path))
    wait_idle(qtbot, window)
    window.open_demo("mlp")
    wait_idle(qtbot, window)
    assert window.open_model_file(str(path))
    qtbot.waitUntil(lambda: window.controller.loaded.source == str(path), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    again = window.controller.session
    assert {name: again.packed_mask(name) for name in again.names} == masks
    assert torch.equal(again.original(CONV), original)
    assert "saved session" in window.history_view.model.data(window.history_view.model.index(0))


def test_a_failed_first_open_leaves_the_demo(qtbot, settings_dir, tmp_path):
    win = make_window(qtbot)
    try:
        win.open_model_file(str(tmp_path / "missing.pt"), confirm=False)
        qtbot.waitUntil(lambda: win.controller.session is not None, timeout=TIMEOUT)
        assert win.controller.loaded.name.startswith("demo")
        close_error_dialogs()
    finally:
        qtbot.waitUntil(lambda: not win.controller.busy, timeout=TIMEOUT)
        win.close()
        if win.controller.session is not None:
            win.controller.session.close()


def test_a_wrong_save_suffix_is_refused_before_anything_runs(window, tmp_path):
    assert not window.save_to(str(tmp_path / "m.txt"))
    assert not (tmp_path / "m.txt").exists()


def test_the_command_line_names_a_factory_with_its_weights(qtbot, window, tmp_path):
    from gui.app import _parse_args
    from gui.session.loaded import OpenRequest

    model, path = demo_weights(tmp_path)
    args, _qt = _parse_args(
        ["core.demos:build_demo_architecture", "--weights", str(path), "--arg", "name=cnn"]
    )
    request = OpenRequest(args.model, args.weights, args.arg, args.trust)
    assert request.args == (("name", "cnn"),)
    assert window.files.open_request(request, interactive=False)
    qtbot.waitUntil(lambda: window.controller.loaded.source == str(path), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    assert torch.equal(window.controller.session.effective(CONV), model.state_dict()[CONV])
    assert window.files.remembered_factory(str(path))[0] == "core.demos:build_demo_architecture"


def test_unsaved_pruning_is_not_thrown_away_without_asking(qtbot, window, tmp_path, monkeypatch):
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]

    def question(_parent, _title, text, *_args):
        asked.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", question)
    session = window.controller.session
    window.open_demo("mlp")  # nothing pruned: nothing asked
    wait_idle(qtbot, window)
    assert not asked and window.controller.session is not session
    apply_l1(qtbot, window, "fc1.weight", 50.0)
    pruned = window.controller.session
    window.open_demo("cnn")
    window.open_model_file(str(tmp_path / "other.pt"))
    wait_idle(qtbot, window)
    assert len(asked) == 2 and "1 pruning step" in asked[0]
    assert window.controller.session is pruned  # cancelled: the work stays
    assert window.save_to(str(tmp_path / "work.prunescope"))
    wait_idle(qtbot, window)
    window.open_demo("cnn")  # saved: nothing to lose, nothing asked
    wait_idle(qtbot, window)
    assert len(asked) == 2 and window.controller.session is not pruned
    apply_l1(qtbot, window, CONV, 20.0)
    answer[0] = QMessageBox.StandardButton.Discard
    window.open_demo("mlp")
    wait_idle(qtbot, window)
    assert len(asked) == 3 and window.controller.loaded.name == "demo mlp"
