"""The main window end to end: real widgets, real controller jobs, real signals.

Every test opens the demo CNN in a fresh :class:`MainWindow` with settings kept
in a temporary folder (never the user's), drives it the way a user would
(tree selection, controls, mouse strokes on the mask heatmap, menu actions,
history clicks) and checks the engine's state against what the widgets show.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from safetensors.torch import load_model
from torch import nn

import core.common.chunks as chunks
from core.common.jobs import CancelToken, Progress
from core.demos import build_demo_architecture
from core.pruning.methods import L1Unstructured
from core.pruning.operations import GlobalPrune, LayerPrune, ReplaceModel
from core.viz.display import cells_to_flat_index, display_matrix, display_shape
from gui.heatmap.heatmap import HeatmapView
from gui.panels.model_tree import PARAM_ROLE, SPARSITY_COLUMN, SPARSITY_ROLE
from gui.panels.stats_panel import format_percent
from gui.session.loaded import LoadedModel
from gui.window.main_window import MainWindow
from tests.gui.window_helpers import (
    CONV,
    FC,
    STUCK_TIMEOUT,
    TIMEOUT,
    apply_l1,
    close_error_dialogs,
    error_dialogs,
    make_window,
    select,
    wait_idle,
)


# ----------------------------------------------------------------------------- helpers
def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A deep copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert state.keys() == expected.keys()
    changed = [k for k in expected if not torch.equal(state[k], expected[k])]
    assert not changed, f"tensors changed: {changed}"


def tree_leaves(window: MainWindow) -> list[str]:
    """Parameter names of the tree's leaves, depth first (source model)."""
    model = window.tree.model
    names: list[str] = []

    def walk(parent) -> None:
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            param = index.data(PARAM_ROLE)
            if param:
                names.append(param)
            walk(index)

    from PySide6.QtCore import QModelIndex

    walk(QModelIndex())
    return names


def tree_sparsity(window: MainWindow, name: str) -> float:
    index = window.tree.model.index_of(name).siblingAtColumn(SPARSITY_COLUMN)
    assert index.isValid()
    return float(index.data(SPARSITY_ROLE))


def shown_image(view: HeatmapView) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The image of a heatmap showing its matrix one weight per pixel, and the region shown."""
    plan = view.shown_tiling
    assert plan is not None and plan.is_identity, f"not shown 1:1: {plan}"
    assert view.is_full
    image = np.asarray(view.image_item.image)
    r0, r1, c0, c1 = plan.region
    assert image.shape == (r1 - r0, c1 - c0)
    return image, plan.region


def assert_shows(view: HeatmapView, expected: np.ndarray) -> None:
    """The heatmap shows ``expected`` (a display matrix) 1:1 over the visible region."""
    image, (r0, r1, c0, c1) = shown_image(view)
    assert (r1 - r0) * (c1 - c0) >= expected.size // 2, "most of the layer should be visible"
    assert np.array_equal(image, expected[r0:r1, c0:c1])


def displayed(window: MainWindow, tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as the layer views lay it out, as a float32 image."""
    return display_matrix(tensor.float(), window.layer_views.layout_name).numpy()


def cell_pos(view: HeatmapView, row: int, col: int) -> QPoint:
    """Viewport pixel at the centre of display cell ``(row, col)``."""
    scene = view.view_box.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    return view.mapFromScene(scene)


def click_cell(qtbot, window: MainWindow, row: int, col: int, keep: bool = False) -> None:
    """A one-cell stroke with the real mouse: left prunes, right restores."""
    view = window.layer_views.views[1]
    assert view.paintable
    px_w, px_h = view.view_box.viewPixelSize()
    assert max(px_w, px_h) <= 1.0, "zoomed out too far to paint"
    button = Qt.MouseButton.RightButton if keep else Qt.MouseButton.LeftButton
    qtbot.mouseClick(view.viewport(), button, pos=cell_pos(view, row, col))


# ----------------------------------------------------------------------------- fixtures
# ----------------------------------------------------------------------------- 1. opening
def test_open_demo_fills_tree_selects_first_layer_and_measures(window):
    session = window.controller.session
    assert session is not None
    assert tree_leaves(window) == session.names
    assert window.tree.selected_params() == (session.names[0],)
    assert session.names[0] in window.layer_title.text()
    assert "demo cnn" in window.windowTitle()
    assert re.search(r"\d+(\.\d+)?%", window.accuracy_label.text()), window.accuracy_label.text()
    # the three views show the first layer (original, mask all kept, effective)
    original = session.original(session.names[0])
    assert_shows(window.layer_views.views[1], displayed(window, torch.ones_like(original)))
    assert not window.undo_action.isEnabled()
    assert not window.redo_action.isEnabled()
    assert window.history_view.model.rowCount() == 1


@pytest.mark.parametrize("name", ["stem.conv.weight", CONV, FC])
def test_each_view_shows_the_whole_layer(qtbot, window, name):
    """Linked, aspect-locked views must not crop the layer: every weight is on screen."""
    select(qtbot, window, name)
    rows, cols = window.layer_views.views[0].matrix.shape
    titles = ("original", "mask", "effective")
    for title, view in zip(titles, window.layer_views.views, strict=True):
        (x0, x1), (y0, y1) = view.view_box.viewRange()
        eps = 1e-9  # view ranges are floats: 1.8e-15 is not a crop
        assert x0 <= eps and x1 >= cols - eps, f"{title} view crops columns: {x0:.2f}..{x1:.2f}"
        assert y0 <= eps and y1 >= rows - eps, f"{title} view crops rows: {y0:.2f}..{y1:.2f}"
        assert shown_image(view)[1] == (0, rows, 0, cols)


# ----------------------------------------------------------------------------- 2. preview, apply
def test_preview_then_apply_l1_from_layer_controls(qtbot, window):
    session = window.controller.session
    select(qtbot, window, CONV)
    before = snapshot(session.model)
    previews: list[dict] = []
    window.layer_controls.previewed.connect(lambda preview: previews.append(preview.masks))

    controls = window.layer_controls
    controls.set_method("l1_unstructured")
    controls.set_amount_percent(20.0)  # the controls open at 50 %: move the slider
    controls.set_amount_percent(50.0)
    controls.set_mode("set")
    qtbot.waitUntil(lambda: bool(previews), timeout=TIMEOUT)
    wait_idle(qtbot, window)

    # the preview is shown but nothing changed
    assert window.layer_views.in_preview
    preview = previews[-1][CONV].to_bool()
    numel = preview.numel()
    assert int((~preview).sum()) == round(0.5 * numel)
    assert torch.equal(preview, L1Unstructured(0.5).compute_mask(session.original(CONV)))
    assert_shows(window.layer_views.views[1], displayed(window, preview))
    # the histogram marks the previewed threshold: the largest |w| the preview prunes
    largest = float(session.original(CONV).abs()[~preview].max())
    assert window.histogram.preview_threshold() == pytest.approx(largest)
    assert session.sparsity(CONV) == 0.0
    assert not session.history.entries
    assert_same_state(session.model, before)
    assert tree_sparsity(window, CONV) == 0.0

    qtbot.mouseClick(controls.apply_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)

    expected = round(0.5 * numel) / numel
    assert session.sparsity(CONV) == expected
    assert tree_sparsity(window, CONV) == pytest.approx(expected, abs=1e-12)
    assert torch.equal(session.mask(CONV), preview)
    assert not window.layer_views.in_preview
    assert window.histogram.preview_threshold() is None
    assert window.histogram.threshold() == pytest.approx(largest)
    assert_shows(window.layer_views.views[1], displayed(window, session.mask(CONV)))
    effective = session.effective(CONV)
    assert_shows(window.layer_views.views[2], displayed(window, effective))
    assert bool((effective[~preview] == 0).all())
    assert window.history_view.model.rowCount() == 2
    assert "Set block1.conv1.weight" in window.history_view.model.index(1).data()
    assert window.undo_action.isEnabled()
    assert not window.redo_action.isEnabled()
    assert f"{expected:.1%}" in window.layer_title.text()


# ----------------------------------------------------------------------------- 3. undo / redo
def test_undo_restores_bit_exactly_and_redo_reapplies(qtbot, window):
    session = window.controller.session
    before = snapshot(session.model)
    apply_l1(qtbot, window, CONV, 50.0)
    applied_mask = session.mask(CONV)
    after = snapshot(session.model)
    assert session.sparsity(CONV) > 0

    window.undo_action.trigger()
    wait_idle(qtbot, window)
    assert_same_state(session.model, before)
    assert session.sparsity(CONV) == 0.0
    assert tree_sparsity(window, CONV) == 0.0
    assert bool(session.mask(CONV).all())
    assert not window.undo_action.isEnabled()
    assert window.redo_action.isEnabled()
    assert_shows(window.layer_views.views[1], displayed(window, session.mask(CONV)))

    window.redo_action.trigger()
    wait_idle(qtbot, window)
    assert torch.equal(session.mask(CONV), applied_mask)
    assert_same_state(session.model, after)
    assert tree_sparsity(window, CONV) == pytest.approx(session.sparsity(CONV), abs=1e-12)
    assert window.undo_action.isEnabled()
    assert not window.redo_action.isEnabled()


# ----------------------------------------------------------------------------- 4. painting
def test_mouse_stroke_prunes_one_weight_and_undo_restores_it(qtbot, window):
    session = window.controller.session
    select(qtbot, window, CONV)
    before = snapshot(session.model)
    row, col = 5, 7
    layout = window.layer_views.layout_name
    shape = tuple(session.info(CONV).shape)
    flat = cells_to_flat_index([(row, col)], shape, layout)
    assert flat.numel() == 1
    index = int(flat[0])
    assert float(session.original(CONV).view(-1)[index]) != 0.0

    strokes: list = []
    window.layer_views.paint_stroke_finished.connect(lambda c, k: strokes.append((c, k)))
    click_cell(qtbot, window, row, col)
    wait_idle(qtbot, window)

    assert strokes == [([(row, col)], False)]
    mask = session.mask(CONV).view(-1)
    assert int((~mask).sum()) == 1
    assert not bool(mask[index])
    effective = session.effective(CONV).view(-1)
    assert float(effective[index]) == 0.0
    others = torch.ones_like(mask)
    others[index] = False
    assert torch.equal(effective[others], before[CONV].view(-1)[others])
    for key in before:
        if key != CONV:
            assert torch.equal(session.model.state_dict()[key], before[key]), key
    assert len(session.history.entries) == 1
    assert window.history_view.model.rowCount() == 2
    expected = np.ones(display_shape(shape, layout), dtype=np.float32)
    expected[row, col] = 0.0
    assert_shows(window.layer_views.views[1], expected)

    window.undo_action.trigger()
    wait_idle(qtbot, window)
    assert_same_state(session.model, before)
    assert session.sparsity(CONV) == 0.0


def test_right_stroke_restores_a_pruned_weight_to_its_original_value(qtbot, window):
    session = window.controller.session
    apply_l1(qtbot, window, CONV, 50.0)
    layout = window.layer_views.layout_name
    mask_display = display_matrix(session.mask(CONV), layout)
    _image, (r0, r1, c0, c1) = shown_image(window.layer_views.views[1])
    visible = torch.zeros_like(mask_display)
    visible[r0:r1, c0:c1] = True
    rows, cols = torch.nonzero(~mask_display & visible, as_tuple=True)
    row, col = int(rows[len(rows) // 2]), int(cols[len(cols) // 2])
    index = int(cells_to_flat_index([(row, col)], tuple(session.info(CONV).shape), layout)[0])
    original = session.original(CONV).view(-1)
    pruned_before = session.mask(CONV)
    effective_before = session.effective(CONV).clone()
    assert float(effective_before.view(-1)[index]) == 0.0 != float(original[index])

    click_cell(qtbot, window, row, col, keep=True)
    wait_idle(qtbot, window)

    mask = session.mask(CONV)
    assert bool(mask.view(-1)[index])
    assert int((mask != pruned_before).sum()) == 1
    assert float(session.effective(CONV).view(-1)[index]) == float(original[index])
    changed = session.effective(CONV) != effective_before
    assert int(changed.sum()) == 1
    assert len(session.history.entries) == 2
    assert_shows(window.layer_views.views[1], displayed(window, mask))


def test_stroke_signal_paints_through_the_window(qtbot, window):
    """The stroke signal alone (no mouse) goes through the same path."""
    session = window.controller.session
    select(qtbot, window, FC)
    assert window.layer_views.layout_name == "matrix"
    window.layer_views.paint_stroke_finished.emit([(2, 3), (2, 4)], False)
    wait_idle(qtbot, window)
    mask = session.mask(FC)
    assert int((~mask).sum()) == 2
    assert not bool(mask[2, 3]) and not bool(mask[2, 4])
    assert len(session.history.entries) == 1


# ----------------------------------------------------------------------------- 5. history click
def test_clicking_the_first_history_row_goes_back_to_start(qtbot, window):
    session = window.controller.session
    start = snapshot(session.model)
    apply_l1(qtbot, window, CONV, 50.0)
    apply_l1(qtbot, window, FC, 30.0)
    assert session.history.cursor == 2
    assert window.history_view.model.rowCount() == 3

    view = window.history_view.list
    rect = view.visualRect(window.history_view.model.index(0))
    assert rect.isValid()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    wait_idle(qtbot, window)

    assert session.history.cursor == 0
    assert len(session.history.entries) == 2  # still redoable
    assert_same_state(session.model, start)
    assert all(session.sparsity(n) == 0.0 for n in session.names)
    assert all(tree_sparsity(window, n) == 0.0 for n in session.names)
    assert window.redo_action.isEnabled() and not window.undo_action.isEnabled()

    window.history_view.step_requested.emit(2)
    wait_idle(qtbot, window)
    assert session.history.cursor == 2
    assert session.sparsity(CONV) == 0.5


# ----------------------------------------------------------------------------- 6. global
def test_global_prune_plan_matches_result_and_statistics(qtbot, window):
    session = window.controller.session
    panel = window.global_panel
    window.prune_tabs.setCurrentWidget(panel)
    panel.set_amount_percent(40.0)
    qtbot.mouseClick(panel.preview_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)

    planned = panel.planned_sparsity()
    assert set(planned) == set(session.names)
    assert all(session.sparsity(n) == 0.0 for n in session.names)  # a plan changes nothing
    assert window.stats_panel.planned_values() == pytest.approx(
        {n: 100.0 * s for n, s in planned.items()}
    )
    total = sum(session.info(n).numel for n in session.names)
    planned_pruned = sum(round(planned[n] * session.info(n).numel) for n in session.names)
    assert planned_pruned == round(0.4 * total)

    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)

    for name in session.names:
        assert session.sparsity(name) == pytest.approx(planned[name], abs=1e-12), name
        assert tree_sparsity(window, name) == pytest.approx(planned[name], abs=1e-12), name
    pruned = sum(round(session.sparsity(n) * session.info(n).numel) for n in session.names)
    assert pruned == round(0.4 * total)

    window.tabs.setCurrentWidget(window.stats_panel)
    stats = window.stats_panel
    assert stats.value_text("sparsity") == format_percent(pruned / total)
    assert stats.value_text("pruned") == f"{pruned:,}"
    assert stats.bar_values() == pytest.approx([100.0 * session.sparsity(n) for n in session.names])
    assert "Sparsity" in window.sparsity_label.text()
    assert len(session.history.entries) == 1


# ----------------------------------------------------------------------------- 7. pattern lab
def test_pattern_lab_tab_shows_the_engine_masks(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert "Pattern lab" in titles
    window.tabs.setCurrentIndex(titles.index("Pattern lab"))
    lab = window.pattern_lab
    assert lab.isVisible()
    lab.set_amount(0.5)
    masks = lab.masks()
    expected = L1Unstructured(0.5).compute_mask(lab.matrix())
    assert torch.equal(masks["unstructured"], expected)
    _weights, mask_image = lab.image_data("unstructured")
    assert mask_image is not None
    assert np.array_equal(mask_image, expected.numpy().astype(np.float32))


# ----------------------------------------------------------------------------- 8. errors
def test_presentation_mode_gives_the_lab_the_window_and_restores_the_docks(qtbot, window):
    docks = (window.tree_dock, window.history_dock, window.controls_dock)
    assert all(dock.isVisible() for dock in docks)
    window.presentation_action.trigger()  # F11
    assert window.pattern_lab.is_presentation()
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Pattern lab"
    assert not any(dock.isVisible() for dock in docks)
    window.pattern_lab.set_presentation(False)  # the lab's own button works the same
    assert not window.presentation_action.isChecked()
    qtbot.waitUntil(lambda: all(dock.isVisible() for dock in docks))


def test_failing_job_shows_an_error_dialog_and_the_window_keeps_working(qtbot, window):
    session = window.controller.session
    before = snapshot(session.model)
    numel = session.info(CONV).numel
    select(qtbot, window, CONV)

    window.controller.apply(LayerPrune((CONV,), L1Unstructured(numel + 1), "set"))
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=TIMEOUT)
    wait_idle(qtbot, window)
    box = error_dialogs()[0]
    assert "larger than" in box.text()
    assert box.parent() is window
    assert_same_state(session.model, before)
    assert not session.history.entries
    assert not window.controller.mutating
    assert not window.layer_views.busy_label.isVisible()
    close_error_dialogs()
    assert not error_dialogs()

    apply_l1(qtbot, window, CONV, 25.0)
    assert session.sparsity(CONV) == round(0.25 * numel) / numel
    assert len(session.history.entries) == 1
    assert not error_dialogs()


@pytest.mark.parametrize("error", [ValueError, RuntimeError, NotImplementedError])
def test_exception_in_a_job_shows_an_error_dialog(qtbot, window, monkeypatch, error):
    """Any exception a job raises must reach the user (torch raises RuntimeError a lot)."""
    session = window.controller.session

    def broken(*_args, **_kwargs):
        raise error("disk on fire")

    monkeypatch.setattr(session, "commit_masks_job", broken)
    window.controller.apply(LayerPrune((FC,), L1Unstructured(0.5), "set"))
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=STUCK_TIMEOUT)
    wait_idle(qtbot, window)
    boxes = error_dialogs()
    assert boxes and "disk on fire" in boxes[0].text()
    assert error.__name__ in boxes[0].detailedText()  # the traceback is in the details
    assert session.sparsity(FC) == 0.0
    assert not session.history.entries
    assert not window.controller.mutating
    close_error_dialogs()

    monkeypatch.undo()
    apply_l1(qtbot, window, FC, 50.0)
    assert session.sparsity(FC) == 0.5


# ----------------------------------------------------------------------------- 9. cancel
def cancel_a_global_prune(qtbot, window: MainWindow, monkeypatch) -> tuple[dict, list[str]]:
    """Open a 4 x Linear(512, 512) model, start a global prune with small chunks and
    cancel it at its first progress report. Returns the state before and the
    labels reported cancelled."""
    monkeypatch.setattr(chunks, "CHUNK", 4096)
    original_check = CancelToken.check

    def slow_check(self: CancelToken) -> None:
        time.sleep(0.002)  # keep the worker busy long enough to be cancelled mid-way
        original_check(self)

    monkeypatch.setattr(CancelToken, "check", slow_check)
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(512, 512) for _ in range(4)))
    window.load_model(LoadedModel(model, "big"))
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.names == [f"{i}.weight" for i in range(4)]
    assert tree_leaves(window) == session.names
    before = snapshot(model)

    progress: list[str] = []
    cancelled: list[str] = []

    def on_progress(_fraction: float, message: str) -> None:
        progress.append(message)
        if len(progress) == 1:
            window.controller.cancel()

    controller = window.controller
    controller.progress.connect(on_progress)
    controller.cancelled.connect(lambda request: cancelled.append(request.label))
    try:
        assert controller.apply(GlobalPrune(tuple(session.names), 0.5))
        qtbot.waitUntil(lambda: bool(cancelled), timeout=TIMEOUT)
        wait_idle(qtbot, window)
    finally:
        controller.progress.disconnect(on_progress)
    assert progress
    assert cancelled and "Global" in cancelled[0]
    return before, cancelled


def test_cancel_global_prune_leaves_session_unchanged(qtbot, window, monkeypatch):
    before, _ = cancel_a_global_prune(qtbot, window, monkeypatch)
    session = window.controller.session
    assert_same_state(session.model, before)
    assert all(session.sparsity(n) == 0.0 for n in session.names)
    assert all(tree_sparsity(window, n) == 0.0 for n in session.names)
    assert not session.history.entries
    assert window.history_view.model.rowCount() == 1
    assert not window.undo_action.isEnabled()

    # the window still works: a new job runs to the end
    assert window.controller.apply(GlobalPrune(tuple(session.names), 0.25))
    wait_idle(qtbot, window)
    total = sum(session.info(n).numel for n in session.names)
    pruned = sum(round(session.sparsity(n) * session.info(n).numel) for n in session.names)
    assert pruned == round(0.25 * total)
    assert len(session.history.entries) == 1


def test_cancel_says_cancelled_in_the_status_bar(qtbot, window, monkeypatch):
    _, cancelled = cancel_a_global_prune(qtbot, window, monkeypatch)
    message = window.statusBar().currentMessage()
    assert message == f"{cancelled[0]}: cancelled"


def test_cancel_releases_the_views_and_controls(qtbot, window, monkeypatch):
    cancel_a_global_prune(qtbot, window, monkeypatch)
    assert not window.controller.mutating
    assert not window.layer_views.busy_label.isVisible()
    assert all(view.image_item.opacity() == 1.0 for view in window.layer_views.views)
    assert window.global_panel.apply_button.isEnabled()
    assert window.layer_controls.apply_button.isEnabled()
    assert not window.progress.isVisible()


def test_cancel_button_is_wired_to_the_controller(qtbot, window):
    assert not window.cancel_button.isVisible()  # idle: no progress bar, no cancel button
    cancelled: list[str] = []
    window.controller.cancelled.connect(lambda request: cancelled.append(request.label))
    window.cancel_button.click()  # nothing running: harmless
    assert not cancelled

    def endless(token: CancelToken):
        while True:  # runs until the button cancels it
            token.check()
            time.sleep(0.005)
            yield Progress(0.5, "waiting for Cancel")

    window.controller.submit("Endless", endless)
    qtbot.waitUntil(window.cancel_button.isVisible, timeout=TIMEOUT)
    with qtbot.waitSignal(window.controller.cancelled, timeout=STUCK_TIMEOUT):
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert cancelled == ["Endless"]
    wait_idle(qtbot, window)
    assert not window.cancel_button.isVisible()


# ----------------------------------------------------------------------------- 10. files
def test_save_writes_checkpoint_and_recipe_that_reload(qtbot, window, tmp_path):
    session = window.controller.session
    apply_l1(qtbot, window, CONV, 50.0)
    apply_l1(qtbot, window, FC, 30.0)
    path = tmp_path / "m.safetensors"
    assert window.save_to(str(path))
    wait_idle(qtbot, window)  # saving runs in a worker
    assert path.is_file()
    recipe = tmp_path / "m.safetensors.recipe.json"  # under the file's full name
    assert recipe.is_file()
    assert "block1.conv1.weight" in recipe.read_text()
    assert "m.safetensors" in window.statusBar().currentMessage()

    fresh = build_demo_architecture("cnn")
    missing, unexpected = load_model(fresh, str(path))
    assert not missing and not unexpected
    assert_same_state(fresh, snapshot(session.model))
    assert int((fresh.state_dict()[CONV] == 0).sum()) == round(0.5 * session.info(CONV).numel)


def test_save_with_a_bad_suffix_shows_an_error(qtbot, window, tmp_path):
    assert not window.save_to(str(tmp_path / "m.txt"))
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=TIMEOUT)
    assert "m.txt" in error_dialogs()[0].text()
    assert not (tmp_path / "m.txt").exists()


def test_open_whole_model_file_and_reject_state_dict(qtbot, window, tmp_path):
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    whole = tmp_path / "whole.pt"
    torch.save(model, whole)
    assert window.open_model_file(str(whole), confirm=False)
    wait_idle(qtbot, window)
    session = window.controller.session
    assert session.names == ["0.weight", "2.weight"]
    assert tree_leaves(window) == session.names
    assert window.tree.selected_params() == ("0.weight",)
    assert "0.weight" in window.layer_title.text()
    assert "whole.pt" in window.windowTitle()
    assert "not measured" in window.accuracy_label.text()
    assert str(whole) in window.recent_files()
    assert torch.equal(session.effective("0.weight"), model[0].weight.detach())

    state = tmp_path / "state.pt"
    torch.save(model.state_dict(), state)
    assert window.open_model_file(str(state), confirm=False)  # opens in a worker
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=TIMEOUT)
    assert "state_dict" in error_dialogs()[0].text()
    assert "factory" in error_dialogs()[0].text()
    close_error_dialogs()
    # the model already open stays open and usable
    assert window.controller.session is session
    assert str(state) not in window.recent_files()
    apply_l1(qtbot, window, "2.weight", 40.0)
    assert session.sparsity("2.weight") == round(0.4 * 15) / 15

    window.open_model_file(str(tmp_path / "missing.pt"), confirm=False)
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=TIMEOUT)
    assert "missing.pt" in error_dialogs()[0].text()
    close_error_dialogs()
    assert window.controller.session is session


# ----------------------------------------------------------------------------- 11. settings
def test_geometry_and_recent_files_persist(qtbot, window, settings_dir, tmp_path):
    whole = tmp_path / "recent.pt"
    torch.save(nn.Sequential(nn.Linear(4, 4)), whole)
    assert window.open_model_file(str(whole), confirm=False)
    wait_idle(qtbot, window)
    # The offscreen screen is 800 x 800 and the window's minimum width is larger, so
    # only a height change survives restoreGeometry's fit-to-screen.
    window.resize(window.width(), window.height() - 30)
    qtbot.waitUntil(lambda: window.isVisible())
    size = window.size()
    window.close()
    window.settings.sync()
    assert any(settings_dir.rglob("*.ini")), "settings were not written to the test folder"

    again = make_window(qtbot)
    try:
        assert again.size() == size
        assert str(whole) in again.recent_files()
        texts = [action.text() for action in again.recent_menu.actions()]
        assert str(whole) in texts
        assert again.recent_menu.isEnabled()
    finally:
        qtbot.waitUntil(lambda: not again.controller.busy, timeout=TIMEOUT)
        again.close()
        if again.controller.session is not None:
            again.controller.session.close()


def test_replacing_the_model_refreshes_tree_and_views_and_undo_brings_it_back(qtbot, window):
    """What Slim does through the controller: a new model with other shapes, one undo away."""
    controller = window.controller
    old_names = controller.session.names
    small = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10))
    results: list[object] = []
    request = controller.submit(
        "Replace",
        lambda token: controller.session.apply_job(ReplaceModel(small, "Slim"), token),
        mutating=True,
    )
    request.finished.connect(results.append)
    wait_idle(qtbot, window)
    assert len(results) == 1
    assert tree_leaves(window) == ["1.weight", "3.weight"]
    qtbot.waitUntil(lambda: "1.weight" in window.layer_title.text(), timeout=TIMEOUT)
    assert "12 × 64" in window.layer_title.text()
    window.undo_action.trigger()
    wait_idle(qtbot, window)
    assert tree_leaves(window) == old_names
    assert controller.session.model is not small


def test_make_permanent_refreshes_the_original_view_and_histogram(qtbot, window):
    apply_l1(qtbot, window, FC, 50.0)
    session = window.controller.session
    before = window.histogram.counts()
    assert before is not None and before.pruned[1:].sum() > 0  # pruned |w| spread over bins
    assert window.controller.make_permanent((FC,))
    wait_idle(qtbot, window)
    assert session.is_permanent(FC)
    # The original values of pruned weights are gone: the views show zeros there now.
    assert_shows(window.layer_views.views[0], displayed(window, session.effective(FC)))
    after = window.histogram.counts()
    assert after is not before and after.pruned[1:].sum() == 0


def test_the_pattern_lab_is_built_when_its_tab_is_first_shown(qtbot, window):
    """It takes ~0.3 s to build: the window does not pay that before it opens."""
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    page = window.tabs.widget(titles.index("Pattern lab"))
    assert page.widget() is None
    window.tabs.setCurrentWidget(page)
    assert page.widget() is window.pattern_lab
    assert window.pattern_lab.isVisible()


def test_a_new_model_chooses_its_layout_even_when_a_layer_has_the_old_name(qtbot, window):
    """``0.weight`` of two models: the second one's picture is chosen afresh, not inherited."""
    square = nn.Sequential(nn.Conv2d(64, 64, 3))  # 64 x 576 as a matrix; 192 x 192 as kernels
    window.load_model(LoadedModel(square, "square kernels"))
    wait_idle(qtbot, window)
    assert window.layer_views.layout_name == "kernels"

    wide = nn.Sequential(nn.Conv2d(3, 64, 7))  # 64 x 147 as a matrix; 448 x 21 as kernels
    window.load_model(LoadedModel(wide, "wide stem"))
    wait_idle(qtbot, window)
    assert window.layer_tab.current == "0.weight"
    assert window.layer_views.layout_name == "matrix"
