"""HeatmapView and LayerViews: pixels, levels, hover, painting, workers, linking, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt

from core.viz.display import ALL, display_matrix, signed_pixels
from gui.heatmap import heatmap_scheduler
from gui.heatmap.heatmap import HeatmapView
from gui.heatmap.layer_views import LayerViews, view_columns


@pytest.fixture
def view(qtbot) -> HeatmapView:
    widget = HeatmapView("test", paintable=True)
    widget.resize(600, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _cell_pos(view: HeatmapView, row: int, col: int) -> QPoint:
    """Viewport position of the centre of weight (row, col)."""
    scene = view.view_box.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    return view.mapFromScene(scene)


# --------------------------------------------------------------------- pixels & levels
def test_small_matrix_is_shown_one_to_one_with_symmetric_levels(view):
    matrix = torch.randn(20, 30)
    view.set_matrix(matrix)
    assert view.is_full and view.shown_tiling.is_identity
    np.testing.assert_array_equal(view.image_item.image, matrix.numpy())
    low, high = view.levels
    assert low == -high == pytest.approx(-matrix.abs().max().item())
    assert view.color_bar.levels() == view.levels
    assert view.image_item.image.dtype == np.float32
    assert view.image_item.image.flags.c_contiguous
    assert len(view.image_item.lut) <= 256


def test_levels_are_exact_when_reduced_at_once(view, monkeypatch):
    monkeypatch.setattr(heatmap_scheduler, "SYNC_LEVELS_LIMIT", 100)
    matrix = torch.randn(700, 900)
    view.set_matrix(matrix)
    assert view.is_full and not view.shown_tiling.is_identity
    assert view.levels[1] == pytest.approx(matrix.abs().max().item())


def test_fixed_levels_are_kept(view):
    view.set_matrix(torch.randn(10, 10), levels=(-7.0, 7.0))
    assert view.levels == (-7.0, 7.0)


def test_image_is_placed_in_weight_coordinates(view):
    view.set_matrix(torch.randn(20, 30))
    rect = view.image_item.mapRectToParent(view.image_item.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == (0, 0, 30, 20)


def test_mask_kind_shows_zero_one_with_unit_levels(view):
    mask = torch.rand(16, 24) > 0.5
    view.set_matrix(mask, "mask")
    np.testing.assert_array_equal(view.image_item.image, mask.float().numpy())
    assert view.levels == (0.0, 1.0)
    assert set(np.unique(view.image_item.image)) <= {0.0, 1.0}


def test_bad_input_is_refused(view):
    with pytest.raises(ValueError):
        view.set_matrix(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError):
        view.set_matrix(torch.zeros(2, 2), "histogram")


# --------------------------------------------------------------------- hover
def test_hover_reports_index_value_and_kept(view, qtbot):
    matrix = torch.randn(20, 30)
    mask = torch.rand(20, 30) > 0.5
    view.set_matrix(matrix, mask=mask)
    with qtbot.waitSignal(view.hovered, timeout=2000) as blocker:
        qtbot.mouseMove(view.viewport(), _cell_pos(view, 12, 17))
    row, col, value, kept = blocker.args
    assert (row, col) == (12, 17)
    assert value == pytest.approx(matrix[12, 17].item())
    assert kept is bool(mask[12, 17])
    assert view.label_item.text.startswith("row 12, col 17: ")
    assert ("(kept)" if kept else "(pruned)") in view.label_item.text


def test_hover_without_mask_reports_none(view, qtbot):
    view.set_matrix(torch.randn(8, 8))
    with qtbot.waitSignal(view.hovered, timeout=2000) as blocker:
        qtbot.mouseMove(view.viewport(), _cell_pos(view, 3, 4))
    assert blocker.args[:2] == [3, 4] and blocker.args[3] is None


# --------------------------------------------------------------------- painting
def _stroke(qtbot, view, cells, button=Qt.MouseButton.LeftButton, modifier=None):
    mods = modifier or Qt.KeyboardModifier.NoModifier
    widget = view.viewport()
    qtbot.mousePress(widget, button, mods, _cell_pos(view, *cells[0]))
    for cell in cells[1:]:
        qtbot.mouseMove(widget, _cell_pos(view, *cell))
    qtbot.mouseRelease(widget, button, mods, _cell_pos(view, *cells[-1]))


def _record(view):
    strokes = []
    view.paint_stroke_finished.connect(lambda cells, keep: strokes.append((cells, keep)))
    return strokes


def test_click_paints_exactly_that_cell(view, qtbot):
    view.set_matrix(torch.ones(20, 30, dtype=torch.bool), "mask")
    strokes = _record(view)
    _stroke(qtbot, view, [(5, 7)])
    assert strokes == [([(5, 7)], False)]
    assert view.image_item.image[5, 7] == 0.0  # immediate feedback


def test_drag_is_one_stroke_without_gaps(view, qtbot):
    view.set_matrix(torch.ones(20, 30, dtype=torch.bool), "mask")
    strokes = _record(view)
    _stroke(qtbot, view, [(3, 4), (3, 8)])
    assert len(strokes) == 1
    cells, keep = strokes[0]
    assert cells == [(3, c) for c in range(4, 9)] and keep is False


def test_right_button_restores_and_modifiers_paint_rows_and_columns(view, qtbot):
    view.set_matrix(torch.zeros(20, 30, dtype=torch.bool), "mask")
    strokes = _record(view)
    _stroke(qtbot, view, [(2, 2)], button=Qt.MouseButton.RightButton)
    _stroke(qtbot, view, [(4, 1), (6, 1)], modifier=Qt.KeyboardModifier.ControlModifier)
    _stroke(qtbot, view, [(1, 9)], modifier=Qt.KeyboardModifier.AltModifier)
    _stroke(qtbot, view, [(0, 0)], modifier=Qt.KeyboardModifier.ShiftModifier)
    assert strokes == [
        ([(2, 2)], True),
        ([(4, ALL), (5, ALL), (6, ALL)], False),
        ([(ALL, 9)], False),
        ([(0, 0)], True),
    ]


@pytest.mark.qt_log_ignore("Mouse event .* not accepted")  # the clicks are meant to do nothing
def test_no_painting_when_zoomed_out_or_not_paintable(view, qtbot):
    view.set_matrix(torch.ones(3000, 3000, dtype=torch.bool), "mask")
    strokes = _record(view)
    _stroke(qtbot, view, [(1500, 1500)])
    assert strokes == []
    assert "zoom in" in view.label_item.text
    plain = HeatmapView()
    qtbot.addWidget(plain)
    plain.resize(400, 400)
    plain.show()
    plain.set_matrix(torch.ones(10, 10, dtype=torch.bool), "mask")
    strokes = _record(plain)
    _stroke(qtbot, plain, [(5, 5)])
    assert strokes == []


# --------------------------------------------------------------------- big matrices
@pytest.fixture
def force_worker(monkeypatch):
    """Big-matrix behaviour (preview, then a worker) for a 4096² matrix."""
    monkeypatch.setattr(heatmap_scheduler, "SYNC_REDUCE_LIMIT", 1 << 16)
    monkeypatch.setattr(heatmap_scheduler, "SYNC_REGION_LIMIT", 1 << 16)


def test_big_matrix_preview_then_full_reduction(view, qtbot, force_worker):
    matrix = torch.randn(4096, 4096)
    view.set_matrix(matrix)
    assert not view.is_full and view.pending  # the preview is on screen at once
    assert view.image_item.image is not None
    qtbot.waitUntil(lambda: view.is_full, timeout=10000)
    assert not view.pending
    plan = view.shown_tiling
    assert not plan.is_identity
    np.testing.assert_array_equal(view.image_item.image, signed_pixels(matrix, plan))
    assert view.levels[1] == pytest.approx(matrix.abs().max().item())


def test_until_the_kernels_are_loaded_a_preview_comes_first(view, qtbot, monkeypatch):
    monkeypatch.setattr(heatmap_scheduler, "kernels_ready", lambda: False)
    matrix = torch.randn(1500, 1500)  # reduced at once once the kernels are loaded
    view.set_matrix(matrix)
    assert not view.is_full and view.pending
    qtbot.waitUntil(lambda: view.is_full, timeout=10000)
    np.testing.assert_array_equal(view.image_item.image, signed_pixels(matrix, view.shown_tiling))


def test_newer_matrix_wins_over_a_stale_result(view, qtbot, force_worker):
    first, second = torch.randn(4096, 4096), torch.randn(4096, 4096)
    view.set_matrix(first)
    view.set_matrix(second)
    qtbot.waitUntil(lambda: view.is_full, timeout=10000)
    qtbot.wait(100)
    np.testing.assert_array_equal(view.image_item.image, signed_pixels(second, view.shown_tiling))


def test_zooming_in_reaches_one_weight_per_pixel(view, qtbot, force_worker):
    matrix = torch.randn(4096, 4096)
    view.set_matrix(matrix)
    qtbot.waitUntil(lambda: view.is_full, timeout=10000)
    view.view_box.setRange(xRange=(1000, 1040), yRange=(2000, 2040), padding=0)
    qtbot.waitUntil(
        lambda: view.is_full and view.shown_tiling is not None and view.shown_tiling.is_identity,
        timeout=10000,
    )
    plan = view.shown_tiling
    r0, r1, c0, c1 = plan.region
    assert r0 <= 2000 and r1 >= 2040 and c0 <= 1000 and c1 >= 1040
    np.testing.assert_array_equal(view.image_item.image, matrix[r0:r1, c0:c1].numpy())


# --------------------------------------------------------------------- export
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_export(view, tmp_path, suffix):
    view.set_matrix(torch.randn(10, 12))
    path = tmp_path / f"view{suffix}"
    view.export(path)
    assert path.stat().st_size > 100
    with pytest.raises(ValueError):
        view.export(tmp_path / "view.jpg")


# --------------------------------------------------------------------- LayerViews
@pytest.fixture
def layer_views(qtbot) -> LayerViews:
    widget = LayerViews()
    widget.resize(1200, 450)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _layer(shape=(24, 32), seed=0):
    generator = torch.Generator().manual_seed(seed)
    original = torch.randn(shape, generator=generator)
    mask = torch.rand(shape, generator=generator) > 0.5
    return original, mask, original * mask


def test_layer_views_share_levels_and_link_zoom(layer_views, qtbot):
    original, mask, effective = _layer()
    layer_views.show_layer(original, mask, effective)
    views = layer_views.views
    assert [v.kind for v in views] == ["weights", "mask", "weights"]
    assert views[0].levels == views[2].levels
    assert views[0].levels[1] == pytest.approx(original.abs().max().item())
    np.testing.assert_array_equal(views[2].image_item.image, effective.numpy())
    views[0].view_box.setRange(xRange=(4, 12), yRange=(2, 10), padding=0)
    qtbot.wait(10)
    (x0, x1), (y0, y1) = views[0].view_box.viewRange()
    for other in views[1:]:
        (ox0, ox1), (oy0, oy1) = other.view_box.viewRange()
        assert (ox0, ox1) == pytest.approx((x0, x1))
        assert (oy0 + oy1) / 2 == pytest.approx((y0 + y1) / 2)  # aspect lock may pad y
        assert oy0 <= 2 + 1e-6 and oy1 >= 10 - 1e-6


@pytest.mark.parametrize(
    ("area", "shape", "columns"),
    [
        ((1500, 450), (64, 64), 3),  # wide and short: side by side
        ((700, 560), (64, 64), 2),  # square-ish: two on top, one below
        ((500, 1200), (64, 64), 1),  # tall and narrow: stacked
        ((700, 900), (16, 1024), 1),  # a very wide matrix reads best full width
        ((500, 400), (64, 64), 3),  # too small for views of the minimum size: unchanged
    ],
)
def test_view_columns_shows_the_matrix_largest(area, shape, columns):
    assert view_columns(area, shape) == columns


def test_views_rearrange_with_the_space_and_stay_the_same_size(layer_views, qtbot):
    layer_views.show_layer(*_layer((64, 64)))
    assert layer_views.columns == 3
    layer_views.resize(760, 700)
    qtbot.waitUntil(lambda: layer_views.columns == 2)
    qtbot.wait(20)
    widths = [v.width() for v in layer_views.views]
    heights = [v.height() for v in layer_views.views]
    assert max(widths) - min(widths) <= 1  # linked zoom needs equal view boxes
    assert max(heights) - min(heights) <= 1
    top = {v.y() for v in layer_views.views[:2]}
    assert len(top) == 1 and layer_views.effective_view.y() > top.pop()


def test_preview_badge_until_show_layer(layer_views):
    original, mask, effective = _layer()
    layer_views.show_layer(original, mask, effective)
    proposed = torch.rand(original.shape) > 0.8
    layer_views.show_preview_mask(proposed)
    assert layer_views.in_preview and layer_views.badge.isVisibleTo(layer_views)
    assert "preview" in layer_views.mask_view.plot_item.titleLabel.text.lower()
    np.testing.assert_array_equal(
        layer_views.effective_view.image_item.image, (original * proposed).numpy()
    )
    np.testing.assert_array_equal(layer_views.mask_view.image_item.image, proposed.float().numpy())
    layer_views.show_layer(original, mask, effective)
    assert not layer_views.in_preview and not layer_views.badge.isVisibleTo(layer_views)
    assert "preview" not in layer_views.mask_view.plot_item.titleLabel.text.lower()


def test_layer_views_forward_paint_strokes(layer_views, qtbot):
    original, mask, effective = _layer()
    layer_views.show_layer(original, mask, effective)
    with qtbot.waitSignal(layer_views.paint_stroke_finished, timeout=2000) as blocker:
        _stroke(qtbot, layer_views.mask_view, [(3, 5)])
    assert blocker.args == [[(3, 5)], False]
    assert layer_views.flat_indices(original.shape, [(3, 5), (1, ALL)]).tolist() == [
        *range(32, 64),
        3 * 32 + 5,
    ]


def test_kernel_grid_layout_for_conv_weights(layer_views):
    original, mask, effective = _layer((8, 3, 3, 3))
    layer_views.show_layer(original, mask, effective)
    assert layer_views.original_view.matrix.shape == (8, 27)
    layer_views.set_layout("kernels")
    assert layer_views.layout_name == "kernels"
    for view, tensor in zip(layer_views.views, (original, mask, effective), strict=True):
        assert torch.equal(view.matrix, display_matrix(tensor, "kernels"))
    assert layer_views.original_view.describe(4, 5).startswith("row 4, col 5 = w[1, 1, 1, 2]")
    flat = layer_views.flat_indices(original.shape, [(4, 5)])
    assert flat.tolist() == [((1 * 3 + 1) * 3 + 1) * 3 + 2]


def test_busy_dims_and_pauses(layer_views):
    original, mask, effective = _layer()
    layer_views.show_layer(original, mask, effective)
    layer_views.busy(True)
    assert layer_views.busy_label.isVisibleTo(layer_views)
    assert layer_views.mask_view.image_item.opacity() < 1
    layer_views.busy(False)
    assert not layer_views.busy_label.isVisibleTo(layer_views)
    assert layer_views.mask_view.image_item.opacity() == 1


def _frames_the_matrix(view: HeatmapView, rows: int, cols: int) -> bool:
    """The matrix fills the view along one axis and is wholly inside along the other."""
    (x0, x1), (y0, y1) = view.plot_item.vb.viewRange()
    tight_x = abs(x0) < 0.5 and abs(x1 - cols) < 0.5 and y0 <= 0.5 and y1 >= rows - 0.5
    tight_y = abs(y0) < 0.5 and abs(y1 - rows) < 0.5 and x0 <= 0.5 and x1 >= cols - 0.5
    return tight_x or tight_y


def test_a_matrix_set_before_the_view_has_its_size_still_fills_it(qtbot):
    """The first layer after a load used to be a small patch in a grey square."""
    view = HeatmapView("Original weights")
    qtbot.addWidget(view)
    view.set_matrix(torch.randn(64, 147), "weights")  # not shown yet: no real size
    view.resize(500, 400)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: _frames_the_matrix(view, 64, 147), timeout=3000)
    assert view.fitted
    view.resize(300, 600)  # still fitted after a resize
    qtbot.waitUntil(lambda: _frames_the_matrix(view, 64, 147), timeout=3000)


def test_a_user_zoom_is_kept_when_the_view_resizes(view, qtbot):
    view.set_matrix(torch.randn(40, 40), "weights")
    qtbot.waitUntil(lambda: _frames_the_matrix(view, 40, 40), timeout=3000)
    view.plot_item.vb.scaleBy((0.5, 0.5))
    view.plot_item.vb.sigRangeChangedManually.emit(view.plot_item.vb.state["mouseEnabled"])
    zoomed = view.plot_item.vb.viewRange()
    assert not view.fitted
    view.resize(view.width() + 80, view.height())
    qtbot.wait(50)
    assert not _frames_the_matrix(view, 40, 40)
    assert view.plot_item.vb.viewRange() != [[0, 40], [0, 40]]
    assert zoomed[0][1] - zoomed[0][0] < 40
