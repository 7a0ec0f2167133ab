"""Which kinds of parameters are prunable: chosen in the Model menu, remembered per model."""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt
from torch import nn

from gui.panels.model_tree import PARAM_ROLE, PRUNABLE_ROLE
from gui.session.loaded import LoadedModel
from gui.session.target_kinds import model_key, remembered_options
from tests.gui.window_helpers import CONV, apply_l1, wait_idle

BIAS = "classifier.bias"


def row_state(window, name: str) -> tuple[bool, bool]:
    """(listed, enabled) of a parameter's row in the tree, as the user sees it."""
    index = window.tree.model.index_of(name)
    if not index.isValid():
        return False, False
    enabled = bool(index.flags() & Qt.ItemFlag.ItemIsEnabled)
    assert bool(index.data(PRUNABLE_ROLE)) == enabled
    assert (index.data(PARAM_ROLE) == name) == enabled  # greyed rows select nothing
    return True, enabled


def tooltip(window, name: str) -> str:
    return str(window.tree.model.index_of(name).data(Qt.ItemDataRole.ToolTipRole))


def choose(qtbot, window, option: str, on: bool = True) -> None:
    window.kinds_menu.choose(option, on)
    wait_idle(qtbot, window)


def test_biases_become_prunable_targets_and_can_be_pruned(qtbot, window):
    session = window.controller.session
    assert BIAS not in session.names
    listed, enabled = row_state(window, BIAS)
    assert listed and not enabled  # every parameter is listed, biases greyed by default
    assert "Biases" in tooltip(window, BIAS)
    action = window.kinds_menu.actions_by_option["include_bias"]
    assert action.isEnabled() and not action.isChecked()

    choose(qtbot, window, "include_bias")

    session = window.controller.session
    assert BIAS in session.names and session.target_options["include_bias"]
    assert row_state(window, BIAS) == (True, True)
    assert action.isChecked()
    apply_l1(qtbot, window, BIAS, 50)  # selected in the tree, pruned with the layer controls
    mask = session.packed_mask(BIAS)
    assert mask is not None and mask.pruned == session.info(BIAS).numel // 2


def test_adding_a_kind_keeps_pruning_steps(qtbot, window):
    apply_l1(qtbot, window, CONV, 50)
    session = window.controller.session
    pruned = session.packed_mask(CONV).pruned
    asked = []
    window.kinds_menu.confirm_discard = lambda steps: asked.append(steps) or False

    choose(qtbot, window, "include_bias")

    assert window.controller.session is session and not asked  # no question, same session
    assert BIAS in session.names and session.packed_mask(CONV).pruned == pruned
    assert len(session.operations) == 1
    assert BIAS in session.weight_names  # chosen by the user: global pruning ranks it too
    assert BIAS in window.global_panel.included()

    choose(qtbot, window, "include_bias", on=False)  # narrowing would lose the step: asked
    assert asked == [1]
    assert window.controller.session is session and BIAS in session.names
    assert window.kinds_menu.actions_by_option["include_bias"].isChecked()  # refused: unchanged

    window.kinds_menu.confirm_discard = lambda steps: True
    choose(qtbot, window, "include_bias", on=False)
    fresh = window.controller.session
    assert fresh is not session and BIAS not in fresh.names
    assert fresh.packed_mask(CONV) is None and not fresh.operations
    assert bool((fresh.model.get_parameter(CONV) != 0).all())  # the weights came back


def test_steps_undone_are_kept_for_redo_or_asked_about(qtbot, window):
    apply_l1(qtbot, window, CONV, 50)
    window.controller.undo()
    wait_idle(qtbot, window)
    session = window.controller.session
    asked = []
    window.kinds_menu.confirm_discard = lambda steps: asked.append(steps) or False

    choose(qtbot, window, "include_bias")  # widening keeps the step undo can redo
    assert window.controller.session is session and session.history.can_redo() and not asked

    choose(qtbot, window, "include_bias", on=False)  # narrowing would drop it: asked
    assert asked == [1]
    assert window.controller.session is session and session.history.can_redo()


def test_the_choice_is_remembered_when_the_model_is_opened_again(qtbot, window):
    choose(qtbot, window, "include_bias")
    assert remembered_options("demo:cnn")["include_bias"]
    window.open_demo("mlp")
    wait_idle(qtbot, window)
    assert not window.controller.session.target_options["include_bias"]  # per model
    assert not window.kinds_menu.actions_by_option["include_bias"].isChecked()

    window.open_demo("cnn")
    wait_idle(qtbot, window)

    session = window.controller.session
    assert session.target_options["include_bias"] and BIAS in session.names
    assert window.kinds_menu.actions_by_option["include_bias"].isChecked()
    assert row_state(window, BIAS) == (True, True)


def test_a_file_is_remembered_by_its_absolute_path(qtbot, window, tmp_path, monkeypatch):
    whole = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), whole)
    monkeypatch.chdir(tmp_path)
    assert model_key("whole.pt", None) == f"file:{whole.resolve()}"
    assert model_key("", None) == ""  # nothing to know it by

    assert window.open_model_file("whole.pt", confirm=False)
    wait_idle(qtbot, window)
    assert window.controller.session.names == ["0.weight", "2.weight"]
    choose(qtbot, window, "include_bias")
    window.open_demo("cnn")
    wait_idle(qtbot, window)
    assert not window.controller.session.target_options["include_bias"]

    assert window.open_model_file(str(whole), confirm=False)  # the same file, absolutely
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert row_state(window, "2.bias") == (True, True)
    assert window.kinds_menu.actions_by_option["include_bias"].isChecked()


def test_a_model_built_in_memory_is_remembered_by_its_architecture(qtbot, window):
    def built() -> LoadedModel:
        return LoadedModel(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), "script")

    window.load_model(built())
    wait_idle(qtbot, window)
    choose(qtbot, window, "include_bias")
    other = LoadedModel(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)), "other")
    assert other.key != built().key  # another architecture: its own choice
    window.load_model(other)
    wait_idle(qtbot, window)
    assert not window.controller.session.target_options["include_bias"]

    window.load_model(built())  # a new instance of the same architecture
    wait_idle(qtbot, window)
    assert window.controller.session.names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert window.kinds_menu.actions_by_option["include_bias"].isChecked()


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 3)
        self.attention = nn.MultiheadAttention(6, 2)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 2)


def open_recurrent(qtbot, window) -> None:
    window.controller.load(LoadedModel(Recurrent(), "recurrent"))
    wait_idle(qtbot, window)


def test_lstm_and_attention_weights_are_listed_greyed_until_other_is_chosen(qtbot, window):
    open_recurrent(qtbot, window)
    model = window.controller.session.model
    every = [name for name, _ in model.named_parameters()]
    for name in every:  # the tree lists every named_parameters() entry
        assert window.tree.model.index_of(name).isValid(), name
    others = ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "attention.in_proj_weight")
    for name in others:
        assert row_state(window, name) == (True, False), name
        assert "Other parameters" in tooltip(window, name)
    assert row_state(window, "head.weight") == (True, True)
    assert "No kind" in tooltip(window, "norm.weight")  # 1-D: never a target

    choose(qtbot, window, "include_other")

    session = window.controller.session
    for name in others:
        assert name in session.names
        assert row_state(window, name) == (True, True), name
    assert row_state(window, "norm.weight") == (True, False)
    window.tree.select_param("lstm.weight_hh_l0")
    wait_idle(qtbot, window)
    assert window.tree.selected_params() == ("lstm.weight_hh_l0",)
    assert window.layer_controls.targets == ("lstm.weight_hh_l0",)
