"""What new users tripped on: Global table names, plans nobody asked for, pruned cells."""

from __future__ import annotations

import torch
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHeaderView

from gui.heatmap.heatmap import HeatmapView
from gui.heatmap.heatmap_items import PRUNED_CELL_COLOR
from gui.heatmap.layer_views import LayerViews
from gui.pruning.global_panel import LAYER
from gui.pruning.method_pages import PREVIEW_DELAY_MS
from gui.widgets.colormaps import hex_color
from tests.gui.window_helpers import wait_idle


# ------------------------------------------------------------ Global table names
def test_global_table_shows_distinguishable_full_names(qtbot, window):
    window.open_demo("resnet18")
    wait_idle(qtbot, window)
    panel = window.global_panel
    window.prune_tabs.setCurrentWidget(panel)
    wait_idle(qtbot, window)
    table, model = panel.table, panel.model
    assert model.rowCount() == len(window.controller.session.names) > 10
    # ResNet names share their start ("layer3.1.conv1"): elide it, keep the distinct end.
    assert table.textElideMode() == Qt.TextElideMode.ElideLeft
    header = table.horizontalHeader()
    assert header.sectionResizeMode(LAYER) == QHeaderView.ResizeMode.Interactive
    shown = [model.data(model.index(r, LAYER)) for r in range(model.rowCount())]
    assert len(set(shown)) == len(shown)
    for r, row in enumerate(model.rows):
        tip = model.data(model.index(r, LAYER), Qt.ItemDataRole.ToolTipRole)
        assert row.name in tip
    # The user can drag the column wider.
    width = table.columnWidth(LAYER)
    header.resizeSection(LAYER, width + 80)
    assert table.columnWidth(LAYER) == width + 80


# ------------------------------------------------------------ plans nobody asked for
def test_statistics_show_no_plan_until_the_global_tab_is_used(qtbot, window):
    assert window.prune_tabs.currentWidget() is not window.global_panel
    window.tabs.setCurrentWidget(window.stats_panel)
    qtbot.wait(3 * PREVIEW_DELAY_MS)
    wait_idle(qtbot, window)
    assert window.stats_panel.planned_values() == {}
    assert window.global_panel.planned_sparsity() == {}

    window.prune_tabs.setCurrentWidget(window.global_panel)  # the user opens the Global tab
    with qtbot.waitSignal(window.global_panel.planned, timeout=20_000):
        pass
    wait_idle(qtbot, window)
    planned = window.global_panel.planned_sparsity()
    assert set(planned) == set(window.controller.session.names)
    assert window.stats_panel.planned_values() == {n: 100.0 * s for n, s in planned.items()}


# ------------------------------------------------------------ pruned cells in the effective view
def _cell_color(view: HeatmapView, image: QImage, row: int, col: int) -> tuple[int, int, int]:
    scene = view.view_box.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    point = view.mapFromScene(scene)
    ratio = image.devicePixelRatio()
    color = image.pixelColor(round(point.x() * ratio), round(point.y() * ratio))
    return color.red(), color.green(), color.blue()


def test_effective_view_draws_pruned_cells_apart_from_tiny_weights(qtbot):
    views = LayerViews()
    qtbot.addWidget(views)
    views.resize(900, 400)
    views.show()
    qtbot.waitExposed(views)
    original = torch.tensor([[1e-6, 0.5, -0.5], [0.25, -0.25, 0.3], [0.1, -0.1, 0.2]])
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1, 1] = False  # pruned: its effective weight is 0
    views.show_layer(original, mask, original * mask)
    view = views.effective_view
    qtbot.waitUntil(lambda: not views.pending, timeout=5_000)
    qtbot.wait(50)
    image = view.grab().toImage()
    pruned, tiny = _cell_color(view, image, 1, 1), _cell_color(view, image, 0, 0)
    assert max(abs(a - b) for a, b in zip(pruned, tiny, strict=True)) > 60
    assert max(abs(a - b) for a, b in zip(pruned, PRUNED_CELL_COLOR, strict=True)) <= 3
    # The legend under the colour bar says what that colour means.
    assert view.marks_pruned and view.pruned_legend.isVisible()
    assert view.pruned_legend.toPlainText().endswith("pruned")
    assert hex_color(PRUNED_CELL_COLOR) in view.pruned_legend.toHtml()
    assert "all pruned" in view.describe(1, 1) or "(pruned)" in view.describe(1, 1)
    # The original weights view shows the weight itself, not the pruned colour.
    assert not views.original_view.marks_pruned
    # A preview marks the cells it would prune too.
    preview = torch.ones(3, 3, dtype=torch.bool)
    preview[0, 2] = False
    views.show_preview_mask(preview)
    qtbot.waitUntil(lambda: not views.pending, timeout=5_000)
    qtbot.wait(50)
    image = view.grab().toImage()
    assert (
        max(
            abs(a - b)
            for a, b in zip(_cell_color(view, image, 0, 2), PRUNED_CELL_COLOR, strict=True)
        )
        <= 3
    )
    assert (
        max(
            abs(a - b)
            for a, b in zip(_cell_color(view, image, 1, 1), PRUNED_CELL_COLOR, strict=True)
        )
        > 60
    )
