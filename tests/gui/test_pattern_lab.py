"""The pattern lab shows exactly the engine's masks, live, and exports them for slides."""

from __future__ import annotations

from xml.etree import ElementTree

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QPushButton, QScrollArea, QSpinBox, QWidget
from superqt import QLabeledDoubleSlider

from core.pruning.methods import BlockSparsity, L1Unstructured, LnStructured, NMSparsity
from core.viz.pattern_figure import KEYS, format_value, random_matrix
from gui.pattern_lab.pattern_lab import EXPORT_MIN_SIZE, PatternLab
from gui.widgets.export import ExportError


def engine_masks(matrix: torch.Tensor, amount: float) -> dict[str, torch.Tensor]:
    """What the engine computes for the lab's default settings (2:4, 2x2 blocks)."""
    return {
        "unstructured": L1Unstructured(amount).compute_mask(matrix),
        "rows": LnStructured(amount, n=2, dim=0).compute_mask(matrix),
        "columns": LnStructured(amount, n=2, dim=1).compute_mask(matrix),
        "n_m": NMSparsity(2, 4).compute_mask(matrix),
        "block": BlockSparsity(amount, 2, 2).compute_mask(matrix),
    }


@pytest.fixture
def lab(qtbot) -> PatternLab:
    widget = PatternLab()
    qtbot.addWidget(widget)
    widget.resize(1200, 640)
    return widget


def assert_shows(lab: PatternLab, key: str, mask: torch.Tensor) -> None:
    weights_img, mask_img = lab.image_data(key)
    assert mask_img is not None
    np.testing.assert_array_equal(mask_img, mask.numpy().astype(np.float32))
    np.testing.assert_array_equal(weights_img, (lab.matrix() * mask).numpy())


def test_matrix_is_seeded_normal_clipped_and_8x8_by_default(lab):
    matrix = lab.matrix()
    assert matrix.shape == (8, 8)
    assert torch.equal(matrix, random_matrix(8, 0))
    assert float(matrix.abs().max()) <= 2.0
    assert not torch.equal(random_matrix(8, 0), random_matrix(8, 1))


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_masks_are_the_engines_masks(lab, seed):
    lab.set_seed(seed)
    for amount in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        lab.set_amount(amount)
        expected = engine_masks(lab.matrix(), amount)
        masks = lab.masks()
        assert set(masks) == set(KEYS)
        for key in KEYS:
            assert torch.equal(masks[key], expected[key]), (key, amount)
            assert_shows(lab, key, expected[key])


def test_default_captions_report_the_sparsity_reached(lab):
    assert lab.amount() == 0.25
    for key in ("unstructured", "rows", "columns", "block"):
        assert lab.caption(key) == "25.0% pruned: 16 of 64"
    assert lab.caption("n_m") == "50.0% pruned: 32 of 64"
    assert lab.note("rows") == "2 of 8 rows"


def test_moving_the_slider_updates_every_column(lab):
    slider = lab.findChild(QLabeledDoubleSlider, "amountSlider")
    slider.setValue(60)
    assert lab.amount() == pytest.approx(0.6)
    expected = engine_masks(lab.matrix(), 0.6)
    for key in KEYS:
        assert_shows(lab, key, expected[key])
    assert lab.caption("unstructured") == "59.4% pruned: 38 of 64"


def test_set_amount_moves_the_slider(lab):
    lab.set_amount(0.4)
    assert lab.findChild(QLabeledDoubleSlider, "amountSlider").value() == 40


def test_size_spin_changes_the_matrix_and_all_images(lab):
    lab.findChild(QSpinBox, "sizeSpin").setValue(12)
    assert lab.matrix().shape == (12, 12)
    assert torch.equal(lab.matrix(), random_matrix(12, 0))
    for key in KEYS:
        weights_img, mask_img = lab.image_data(key)
        assert weights_img.shape == mask_img.shape == (12, 12)
    lab.set_size(5)
    assert lab.image_data("rows")[0].shape == (5, 5)
    with pytest.raises(ValueError):
        lab.set_size(40)


def test_regenerate_draws_a_new_seed(lab):
    before = lab.matrix()
    lab.findChild(QPushButton, "regenerateButton").click()
    assert lab.settings.seed != 0
    assert lab.findChild(QSpinBox, "seedSpin").value() == lab.settings.seed
    assert not torch.equal(lab.matrix(), before)


def test_nm_that_does_not_divide_the_width_disables_the_column(lab):
    lab.findChild(QSpinBox, "nmMSpin").setValue(3)  # 2:3 on 8 columns
    assert not lab.is_column_enabled("n_m")
    assert "n_m" not in lab.masks()
    assert lab.caption("n_m") == "not applicable"
    assert "M=3" in lab.note("n_m")
    assert lab.image_data("n_m")[1] is None
    assert set(lab.masks()) == set(KEYS) - {"n_m"}  # the others carry on

    lab.set_nm(5, 4)
    assert "N=5" in lab.note("n_m")
    assert "Not applicable" in lab.column_tooltip("n_m")

    lab.set_nm(1, 4)
    assert lab.is_column_enabled("n_m")
    assert torch.equal(lab.masks()["n_m"], NMSparsity(1, 4).compute_mask(lab.matrix()))
    assert lab.caption("n_m") == "75.0% pruned: 48 of 64"


def test_block_shape_is_passed_to_the_engine(lab):
    lab.set_block(4, 2)
    expected = BlockSparsity(0.25, 4, 2).compute_mask(lab.matrix())
    assert_shows(lab, "block", expected)


def test_headers_explain_the_method_and_the_engine_call(lab):
    assert L1Unstructured.summary in lab.column_tooltip("unstructured")
    assert LnStructured.summary in lab.column_tooltip("columns")
    assert "dim=1" in lab.column_tooltip("columns")
    assert NMSparsity.summary in lab.column_tooltip("n_m")
    assert BlockSparsity.summary in lab.column_tooltip("block")


def test_presentation_mode_doubles_fonts_and_keeps_every_control(lab, qtbot):
    size = lab.font().pointSizeF()
    with qtbot.waitSignal(lab.presentation_changed) as blocker:
        lab.findChild(QPushButton, "presentationButton").click()
    assert blocker.args == [True]
    assert lab.is_presentation()
    assert lab.font_scale() == 2.0
    assert lab.font().pointSizeF() == pytest.approx(2 * size)
    for name in ("seedSpin", "nmNSpin", "nmMSpin", "blockRowsSpin", "blockColsSpin", "sizeSpin"):
        spin = lab.findChild(QSpinBox, name)
        assert spin.isVisibleTo(lab), name
        assert spin.font().pointSizeF() == pytest.approx(2 * size), name
    assert lab.findChild(QPushButton, "regenerateButton").isVisibleTo(lab)
    lab.findChild(QSpinBox, "nmMSpin").setValue(8)  # still drives the figure
    assert lab.settings.nm == (2, 8)

    lab.set_presentation(False)
    assert lab.font().pointSizeF() == pytest.approx(size)
    assert not lab.findChild(QPushButton, "presentationButton").isChecked()


def test_presentation_mode_fits_a_1366x768_screen(qtbot):
    page = QScrollArea()
    page.setWidgetResizable(True)
    lab = PatternLab()
    page.setWidget(lab)
    qtbot.addWidget(page)
    page.resize(1366, 700)  # full screen, less the tab bar and the status bar
    page.show()
    qtbot.waitExposed(page)
    lab.set_presentation(True)
    qtbot.waitUntil(lambda: lab.figure_plan() is not None and lab.figure_plan().side > 120)
    assert_nothing_clipped(page, lab)


def figure_rect_in(widget: QWidget, lab: PatternLab, item) -> QRect:
    """Where a graphics item of the lab's figure is, in ``widget``'s coordinates."""
    view = lab.figure
    in_view = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    return QRect(view.viewport().mapTo(widget, in_view.topLeft()), in_view.size())


def assert_nothing_clipped(page: QScrollArea, lab: PatternLab) -> None:
    """Every control and every piece of the figure lies inside the visible page."""
    visible = page.viewport().rect()
    assert page.horizontalScrollBar().maximum() == 0
    assert page.verticalScrollBar().maximum() == 0
    controls = [
        w
        for w in lab.findChildren(QWidget)
        if isinstance(w, QSpinBox | QPushButton | QCheckBox | QLabeledDoubleSlider)
    ]
    assert len(controls) >= 10
    for control in controls:
        if control.isVisibleTo(lab):
            where = QRect(control.mapTo(page.viewport(), QPoint(0, 0)), control.size())
            assert visible.contains(where), (control.objectName(), where, visible)
    figure = lab.figure.viewport().rect()
    for item in lab.figure_items():
        assert figure.contains(figure_rect_in(lab.figure.viewport(), lab, item)), item
        assert visible.contains(figure_rect_in(page.viewport(), lab, item)), item


@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_lab_fits_its_tab_with_the_docks_open(qtbot, window, size):
    window.resize(*size)
    docks = (window.tree_dock, window.history_dock, window.controls_dock)
    assert all(dock.isVisible() for dock in docks)
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    window.tabs.setCurrentIndex(titles.index("Pattern lab"))
    page = window.tabs.currentWidget()
    assert isinstance(page, QScrollArea)
    qtbot.waitUntil(lambda: window.width() == size[0] and page.viewport().width() < size[0] - 500)
    lab = window.pattern_lab
    qtbot.waitUntil(lambda: lab.width() >= page.viewport().width())  # laid out in the page
    assert_nothing_clipped(page, lab)
    side = lab.figure_plan().side
    assert side >= 75  # the matrices stay readable


def test_narrow_tall_figure_reflows_its_columns_into_bands(lab, qtbot):
    lab.resize(1200, 640)
    lab.show()
    qtbot.waitUntil(lambda: lab.figure_plan() is not None and lab.figure_plan().per_band == 5)
    wide = lab.figure_plan().side
    lab.resize(560, 900)
    qtbot.waitUntil(lambda: lab.figure_plan().per_band < 5)
    plan = lab.figure_plan()
    assert plan.bands >= 2
    tops = {key: lab.column_items(key)[1].sceneBoundingRect().top() for key in KEYS}
    assert len(set(tops.values())) == plan.bands  # the columns sit on that many rows
    assert wide > plan.side > 75


def svg_texts(path) -> list[str]:
    """The text drawn in an SVG file (not its title or description)."""
    root = ElementTree.parse(path).getroot()
    return ["".join(e.itertext()).strip() for e in root.iter("{http://www.w3.org/2000/svg}text")]


def test_window_export_of_the_lab_is_the_figure_only(qtbot, window, tmp_path):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    window.tabs.setCurrentIndex(titles.index("Pattern lab"))
    assert window.export_to(str(tmp_path / "lab.svg"))
    texts = svg_texts(tmp_path / "lab.svg")
    assert "Unstructured" in texts and "By rows" in texts
    assert "weight" in texts  # the legend
    for control_text in ("Presentation", "Export", "Regenerate", "Values", "Seed", "Size"):
        assert control_text not in texts, control_text

    one = window.export_to(str(tmp_path / "lab1.png"), scale=1.0)
    two = window.export_to(str(tmp_path / "lab2.png"), scale=2.0)
    three = window.export_to(str(tmp_path / "lab3.png"), scale=3.0)
    assert one and two and three
    size1, size2, size3 = (QImage(str(tmp_path / f"lab{n}.png")).size() for n in (1, 2, 3))
    assert (size2.width(), size2.height()) == (2 * size1.width(), 2 * size1.height())
    assert (size3.width(), size3.height()) == (3 * size1.width(), 3 * size1.height())


def test_export_lays_a_small_figure_out_for_a_slide_and_restores_the_screen(lab, qtbot, tmp_path):
    lab.resize(640, 640)
    lab.show()
    qtbot.waitUntil(lambda: lab.figure_plan() is not None and lab.figure_plan().per_band < 5)
    before = lab.figure_plan()
    item_rect = lab.column_items("rows")[1].sceneBoundingRect()
    png = lab.export(tmp_path / "lab.png")
    image = QImage(str(png))
    assert image.width() >= EXPORT_MIN_SIZE.width() * 0.9  # five columns side by side
    assert image.width() > image.height()
    assert not lab.values_shown("rows")  # too small on screen for the cell values
    values = [t for t in svg_texts(lab.export(tmp_path / "lab.svg")) if t.lstrip("-")[:1].isdigit()]
    assert len(values) >= 5 * 32  # ... but an export has room for them
    assert lab.figure_plan() == before  # the screen is as it was
    assert lab.column_items("rows")[1].sceneBoundingRect() == item_rect


def test_column_export_holds_that_column_only(lab, tmp_path):
    lab.show()
    texts = svg_texts(lab.export(tmp_path / "rows.svg", column="rows"))
    assert "By rows" in texts
    for other in ("Unstructured", "By columns", "weight", "Presentation"):
        assert other not in texts, other


def test_export_writes_png_and_svg_of_the_figure_and_of_a_column(lab, tmp_path):
    lab.show()
    png = lab.export(tmp_path / "lab.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = lab.export(tmp_path / "lab.svg")
    assert "<svg" in svg.read_text()
    column_png = lab.export(tmp_path / "rows.PNG", column="rows", scale=2.0)
    assert column_png.stat().st_size > 0
    assert "<svg" in lab.export(tmp_path / "rows.svg", column="rows").read_text()
    with pytest.raises(ExportError):
        lab.export(tmp_path / "lab.jpg")


def test_cell_values_never_read_minus_zero():
    assert format_value(-0.04) == "0.0"
    assert format_value(-0.06) == "-0.1"
    assert format_value(1.25) == "1.2"


def test_the_export_menu_names_the_columns_as_they_are_now(lab):
    def entries() -> list[str]:
        button = lab.findChild(QPushButton, "exportButton")
        return [action.text() for action in button.menu().actions() if action.text()]

    assert "N:M (2:4) column…" in entries()
    lab.set_nm(1, 4)
    lab.set_block(4, 4)
    assert "N:M (1:4) column…" in entries()
    assert "Block (4×4) column…" in entries()
    assert "N:M (2:4) column…" not in entries()
