"""The model tree: its filter finds dotted paths, and a new window shows its columns whole."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex
from torch import nn

from gui.panels.model_tree import COLUMNS, KEPT_COLUMN, PARAM_ROLE
from gui.session.loaded import LoadedModel
from tests.gui.window_helpers import make_window, wait_idle


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3)
        self.conv2 = nn.Conv2d(2, 2, 3)


def nested_model() -> nn.Module:
    """layer1.0.conv1 ... layer4.1.conv2 as in ResNet-18, in a few hundred weights."""
    model = nn.Module()
    model.stem = nn.Conv2d(1, 2, 3)
    for name in ("layer1", "layer4"):
        model.add_module(name, nn.Sequential(Block(), Block()))
    model.fc = nn.Linear(8, 3)
    return model


def visible_params(tree) -> list[str]:
    """Every parameter row the filtered tree shows, in tree order."""
    proxy, names = tree.proxy, []

    def walk(parent) -> None:
        for row in range(proxy.rowCount(parent)):
            index = proxy.index(row, 0, parent)
            if index.data(PARAM_ROLE):
                names.append(index.data(PARAM_ROLE))
            walk(index)

    walk(QModelIndex())
    return names


def open_nested(qtbot, window) -> None:
    window.load_model(LoadedModel(nested_model(), "nested"))
    qtbot.waitUntil(lambda: window.controller.loaded.name == "nested", timeout=20_000)
    wait_idle(qtbot, window)


def test_the_filter_finds_a_dotted_path_expanded_and_selected(qtbot, window):
    open_nested(qtbot, window)
    tree = window.tree
    tree.filter.setText("layer4.1.conv2")
    wait_idle(qtbot, window)
    shown = visible_params(tree)
    assert shown and all(name.startswith("layer4.1.conv2.") for name in shown), shown
    first = tree.proxy.mapFromSource(tree.model.index_of(shown[0]))
    parent = first.parent()
    while parent.isValid():  # every ancestor of the match is expanded
        assert tree.tree.isExpanded(parent)
        parent = parent.parent()
    assert tree.selected_params() == ("layer4.1.conv2.weight",)
    assert window.layer_controls.targets == ("layer4.1.conv2.weight",)


def test_the_filter_matches_parts_of_paths_and_types(qtbot, window):
    open_nested(qtbot, window)
    tree = window.tree
    tree.set_filter("4.1.conv")
    assert set(visible_params(tree)) == {
        f"layer4.1.conv{i}.{kind}" for i in (1, 2) for kind in ("weight", "bias")
    } & set(window.controller.session.names)
    tree.set_filter("conv2.weight")
    assert {name.rpartition(".")[0] for name in visible_params(tree)} == {
        "layer1.0.conv2",
        "layer1.1.conv2",
        "layer4.0.conv2",
        "layer4.1.conv2",
    }
    tree.set_filter("LINEAR")  # types too, case-insensitive
    assert visible_params(tree) and all(n.startswith("fc.") for n in visible_params(tree))
    tree.set_filter("")
    assert len(visible_params(tree)) == len(window.controller.session.names)


def test_a_new_window_shows_the_tree_columns_up_to_kept(qtbot, settings_dir):
    """Empty settings: a first launch, in a window of the default size."""
    window = make_window(qtbot)
    window.resize(1600, 1000)
    window.open_demo("resnet18")
    qtbot.waitUntil(lambda: window.controller.session is not None, timeout=20_000)
    wait_idle(qtbot, window)
    qtbot.wait(50)  # the docks' layout settles
    view = window.tree.tree
    header = view.header()
    for column in range(KEPT_COLUMN + 1):
        assert header.sectionSize(column) >= view.sizeHintForColumn(column), COLUMNS[column]
    needed = header.sectionPosition(KEPT_COLUMN) + header.sectionSize(KEPT_COLUMN)
    assert view.viewport().width() >= needed
    window.close()
    window.controller.session.close()
