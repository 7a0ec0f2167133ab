"""The magnitude histogram, the statistics panel, colour maps and export."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

import gui.session.magnitudes as magnitudes_module
from core.analysis.stats import ModelStats, stats_job
from core.common.jobs import run_job
from core.demos import load_demo
from core.pruning.methods import L1Unstructured, LnStructured
from core.pruning.session import PruningSession
from gui.heatmap.histogram import MagnitudeHistogram
from gui.panels.stats_panel import StatsPanel, format_ratio, short_name
from gui.session.magnitudes import magnitude_counts
from gui.widgets.colormaps import (
    ALARM_RGB,
    diverging_colormap,
    diverging_lut,
    mask_colormap,
    mask_lut,
    sparsity_color,
)
from gui.widgets.export import (
    DEFAULT_FILTER,
    FILE_FILTER,
    ExportError,
    content_rect,
    export_widget,
    filter_scale,
)
from gui.widgets.formatting import format_si
from tests.gui.window_helpers import CONV, select

# -- colour maps ----------------------------------------------------------------


def test_luts_are_256_rgb_bytes_and_diverging_is_white_in_the_middle():
    for lut in (diverging_lut(), mask_lut()):
        assert lut.shape == (256, 3)
        assert lut.dtype == np.uint8
        assert lut.flags.c_contiguous
    middle = diverging_lut()[127:129].astype(int)
    assert (middle > 235).all()  # zero is (almost) white
    low, high = diverging_lut()[0], diverging_lut()[-1]
    assert low[2] > low[0] and high[0] > high[2]  # negative blue, positive red
    assert mask_lut()[0].sum() < mask_lut()[-1].sum()  # pruned dark, kept light
    assert isinstance(diverging_colormap(), pg.ColorMap)
    assert isinstance(mask_colormap(), pg.ColorMap)
    assert sparsity_color(1.0) == ALARM_RGB
    assert tuple(diverging_lut(255)[127]) == (247, 247, 247)  # odd size: exact white centre


# -- histogram -----------------------------------------------------------------


@pytest.fixture
def hist(qtbot) -> MagnitudeHistogram:
    widget = MagnitudeHistogram()
    qtbot.addWidget(widget)
    return widget


def test_threshold_line_is_the_largest_pruned_magnitude(hist):
    weights = torch.randn(64, 48, generator=torch.Generator().manual_seed(1))
    mask = L1Unstructured(0.3).compute_mask(weights)
    hist.show(weights, mask)
    expected = float(weights.abs()[~mask].max())
    assert hist.threshold() == pytest.approx(expected)
    assert expected < float(weights.abs()[mask].min())  # L1: a clean cut

    structured = LnStructured(0.25, n=2, dim=0).compute_mask(weights)
    hist.show(weights, structured)
    assert hist.threshold() == pytest.approx(float(weights.abs()[~structured].max()))


def test_counts_cover_every_weight_and_the_pruned_part(hist):
    weights = torch.randn(100, 30)
    mask = L1Unstructured(0.5).compute_mask(weights)
    hist.show(weights, mask)
    counts = hist.counts()
    assert counts.total.sum() == weights.numel()
    assert counts.pruned.sum() == int((~mask).sum())
    assert counts.edges[0] == 0.0
    assert counts.edges[-1] == pytest.approx(float(weights.abs().max()))
    assert "sample" not in hist.axis_title()


def test_no_mask_or_nothing_pruned_draws_no_threshold(hist):
    weights = torch.randn(10, 10)
    hist.show(weights, None)
    assert hist.threshold() is None
    hist.show(weights, torch.ones(10, 10, dtype=torch.bool))
    assert hist.threshold() is None


def test_preview_threshold_shows_and_hides(hist):
    hist.show(torch.randn(8, 8), None)
    hist.show_threshold(0.42)
    assert hist.preview_threshold() == pytest.approx(0.42)
    hist.show_threshold(None)
    assert hist.preview_threshold() is None


def test_large_tensors_are_sampled_and_the_axis_says_so(hist, monkeypatch):
    monkeypatch.setattr(magnitudes_module, "SAMPLE_LIMIT", 1000)
    weights = torch.randn(100, 95)  # 9,500 elements: every 10th is counted
    mask = L1Unstructured(0.2).compute_mask(weights)
    hist.show(weights, mask)
    counts = hist.counts()
    assert counts.sampled == 950
    assert counts.total.sum() == 950
    assert "sample" in hist.axis_title() and "9,500" in hist.axis_title()
    # the threshold still comes from every element
    assert hist.threshold() == pytest.approx(float(weights.abs()[~mask].max()))


def test_log_y_checkbox_switches_the_axis(hist):
    hist.show(torch.randn(20, 20), None)
    hist.log_y_box.setChecked(True)
    assert hist.is_log_y()
    assert hist.getPlotItem().getAxis("left").logMode
    hist.set_log_y(False)
    assert not hist.log_y_box.isChecked()


def test_show_without_arguments_is_qwidget_show(hist):
    hist.show()
    assert hist.isVisible()


def test_magnitude_counts_accepts_half_precision_and_rejects_bad_masks():
    weights = torch.randn(16, 16).to(torch.bfloat16)
    counts = magnitude_counts(weights, weights.abs() > 0.5)
    assert counts.total.sum() == 256
    with pytest.raises(ValueError):
        magnitude_counts(weights, torch.ones(3, dtype=torch.bool))


# -- stats panel ---------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_stats() -> ModelStats:
    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    names = session.names
    session.prune(names[0], L1Unstructured(0.5))
    session.prune(names[1], LnStructured(0.5, n=2, dim=0))
    session.prune(names[3], L1Unstructured(1.0))  # a layer pruned away completely
    return run_job(stats_job(session))


@pytest.fixture
def panel(qtbot) -> StatsPanel:
    widget = StatsPanel()
    qtbot.addWidget(widget)
    return widget


def test_panel_shows_the_model_figures(panel, cnn_stats):
    panel.show_stats(cnn_stats)
    assert panel.value_text("total") == f"{cnn_stats.total_params:,}"
    assert panel.value_text("prunable") == f"{cnn_stats.prunable_params:,}"
    assert panel.value_text("nonzeros") == f"{cnn_stats.nonzeros:,}"
    assert panel.value_text("sparsity") == f"{100 * cnn_stats.sparsity:.1f}%"
    assert panel.value_text("model_sparsity") == f"{100 * cnn_stats.model_sparsity:.1f}%"
    compression = panel.value_text("compression")
    assert compression.endswith("x")
    assert float(compression[:-1]) == pytest.approx(cnn_stats.compression, abs=0.05)
    flops_ratio = cnn_stats.flops_dense / cnn_stats.flops_effective
    assert float(panel.value_text("flops_ratio")[:-1]) == pytest.approx(flops_ratio, abs=0.05)
    assert panel.value_text("flops_dense") == format_si(cnn_stats.flops_dense)
    assert panel.value_text("size_dense").endswith(" MB")


def test_bars_are_the_layer_sparsities_and_full_layers_are_red(panel, cnn_stats):
    panel.show_stats(cnn_stats)
    expected = [100 * layer.sparsity for layer in cnn_stats.layers]
    assert panel.bar_values() == pytest.approx(expected)
    widths = np.asarray(panel.chart.bars.opts["width"])
    np.testing.assert_allclose(widths, expected)
    assert panel.chart.axis.names() == [layer.name for layer in cnn_stats.layers]
    brushes = panel.chart.bars.opts["brushes"]
    for layer, brush in zip(cnn_stats.layers, brushes, strict=True):
        is_red = brush.color().getRgb()[:3] == ALARM_RGB
        assert is_red == (layer.sparsity >= 1.0), layer.name


def test_planned_overlay_and_clear(panel, cnn_stats):
    panel.show_stats(cnn_stats)
    first, last = cnn_stats.layers[0].name, cnn_stats.layers[-1].name
    panel.show_planned({first: 0.7, last: 0.25, "not.a.layer": 0.5})
    assert panel.planned_values() == pytest.approx({first: 70.0, last: 25.0})
    np.testing.assert_allclose(np.asarray(panel.chart.planned_bars.opts["width"]), [70, 25])
    panel.clear_planned()
    assert panel.planned_values() == {}


def test_missing_flops_read_na(panel, cnn_stats):
    without_flops = ModelStats(
        layers=cnn_stats.layers,
        total_params=cnn_stats.total_params,
        bytes_dense=cnn_stats.bytes_dense,
        bytes_sparse=cnn_stats.bytes_sparse,
        flops_dense=None,
        flops_effective=None,
    )
    panel.show_stats(without_flops)
    for key in ("flops_dense", "flops_effective", "flops_ratio"):
        assert panel.value_text(key) == "n/a"
    panel.clear()
    assert panel.bar_values() == []
    assert panel.value_text("total") == "–"


def test_formatting_helpers():
    assert format_ratio(76, 10) == "7.6x"
    assert format_ratio(113, 100) == "1.13x"
    assert format_ratio(5, 0) == "∞"
    assert format_ratio(None, 3) == "n/a"
    assert format_si(1_198_720) == "1.20 M"
    assert format_si(980) == "980"
    assert len(short_name("layer4.1.conv2.weight" * 3)) <= 34
    assert math.isclose(len(short_name("x" * 10)), 10)


# -- export --------------------------------------------------------------------


def test_export_widget_handles_plot_widgets_items_and_bad_suffixes(hist, tmp_path):
    hist.resize(400, 300)
    hist.show()
    hist.show(torch.randn(30, 30), None)
    png = export_widget(hist, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    svg = export_widget(hist.getPlotItem(), tmp_path / "h.svg")
    assert "<svg" in svg.read_text()
    with pytest.raises(ExportError):
        export_widget(hist, tmp_path / "h.gif")


def test_filter_scale_reads_the_chosen_png_scale():
    scales = {filter_scale(name) for name in FILE_FILTER.split(";;")}
    assert scales == {1.0, 2.0, 3.0}
    assert filter_scale(DEFAULT_FILTER) == 2.0
    assert filter_scale("PNG image 3x (*.png)") == 3.0
    assert filter_scale("") == 2.0


def test_parts_of_several_views_are_drawn_where_they_are_without_what_lies_between(qtbot, tmp_path):
    window = QWidget()
    layout = QVBoxLayout(window)
    title = QLabel("A title for the slide", window)
    button = QPushButton("A button between", window)
    first, second = MagnitudeHistogram(window), MagnitudeHistogram(window)
    for widget in (title, button, first, second):
        layout.addWidget(widget)
    layout.addSpacing(150)  # an empty band, closed up in the export
    layout.addWidget(QLabel("below the gap", window))
    qtbot.addWidget(window)
    window.resize(500, 800)
    window.show()
    qtbot.waitExposed(window)
    first.show(torch.randn(30, 30), None)
    second.show(torch.randn(30, 30), None)
    parts = [title, first.getPlotItem(), second.getPlotItem(), window.findChildren(QLabel)[-1]]
    svg = export_widget(parts, tmp_path / "parts.svg")
    texts = [t for t in svg_texts(svg) if t]
    assert "A title for the slide" in texts and "below the gap" in texts
    assert "A button between" not in texts and "log y" not in texts
    assert texts.count("count") == 2  # both histograms
    png = QImage(str(export_widget(parts, tmp_path / "parts.png")))
    below = window.findChildren(QLabel)[-1]
    span = below.geometry().bottom() - title.geometry().top()
    assert png.height() < span - 100  # the button's row and the empty band are closed
    assert png.height() > first.height() + second.height()


def test_a_plain_widget_exports_its_content_on_white(qtbot, tmp_path):
    widget = QWidget()
    layout = QVBoxLayout(widget)
    layout.addWidget(QLabel("only line", widget))
    layout.addStretch(1)
    qtbot.addWidget(widget)
    widget.resize(400, 600)
    widget.show()
    qtbot.waitExposed(widget)
    assert content_rect(widget).height() < 100
    image = QImage(str(export_widget(widget, tmp_path / "w.png", scale=2.0)))
    assert image.height() < 2 * 100
    assert QColor(image.pixel(image.width() - 2, image.height() - 2)) == QColor("white")


def svg_texts(path) -> list[str]:
    """The text drawn in an SVG file (not its title or description)."""
    root = ElementTree.parse(path).getroot()
    return ["".join(e.itertext()).strip() for e in root.iter("{http://www.w3.org/2000/svg}text")]


def test_layer_export_is_the_heatmaps_and_the_histogram_without_controls(qtbot, window, tmp_path):
    select(qtbot, window, CONV)
    window.tabs.setCurrentIndex(0)
    assert window.export_to(str(tmp_path / "layer.svg"))
    texts = svg_texts(tmp_path / "layer.svg")
    assert {"Original weights", "Mask", "Effective weights"} <= set(texts)
    assert "count" in texts  # the histogram's axis
    assert any(CONV in t for t in texts)  # the layer's title
    for chrome in ("Layout:", "Matrix", "Kernel grid", "log y"):
        assert chrome not in texts, chrome
    assert not any("drag to paint" in t for t in texts)

    assert window.export_to(str(tmp_path / "layer.png"), scale=2.0)
    image = QImage(str(tmp_path / "layer.png"))
    views_top = window.layer_views.original_view.mapTo(window, QPoint(0, 0)).y()
    hist_bottom = window.histogram.mapTo(window, QPoint(0, window.histogram.height())).y()
    hint_rows = 60  # the layout buttons and the hover labels left out
    assert image.height() >= 2 * (hist_bottom - views_top - hint_rows)


def test_statistics_export_is_the_figures_without_the_empty_area(qtbot, window, tmp_path):
    window.resize(1366, 768)
    window.tabs.setCurrentWidget(window.stats_panel)
    panel = window.stats_panel
    qtbot.waitUntil(lambda: panel.bar_values() != [] and panel.height() > 600)
    chart_bottom = panel.chart.mapTo(panel, QPoint(0, panel.chart.height())).y()
    assert chart_bottom < panel.height() - 100  # a short chart in a tall tab
    assert window.export_to(str(tmp_path / "stats.svg"))
    texts = svg_texts(tmp_path / "stats.svg")
    assert "Parameters" in texts and "sparsity (% of the layer's weights pruned)" in texts
    assert window.export_to(str(tmp_path / "stats.png"))
    image = QImage(str(tmp_path / "stats.png"))
    assert image.height() <= chart_bottom + 20
    corner = QColor(image.pixel(image.width() - 3, image.height() - 3))
    assert corner == QColor("white")  # no grey window background
