"""The pattern lab shows exactly the engine's masks, live, and exports them for slides."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QPushButton, QSpinBox
from superqt import QLabeledDoubleSlider

from core.pruning.methods import BlockSparsity, L1Unstructured, LnStructured, NMSparsity
from core.viz.pattern_figure import KEYS, format_value, random_matrix
from gui.export import ExportError
from gui.pattern_lab import PatternLab


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


def test_presentation_mode_doubles_fonts_and_hides_secondary_controls(lab, qtbot):
    seed_spin = lab.findChild(QSpinBox, "seedSpin")
    size = lab.font().pointSizeF()
    with qtbot.waitSignal(lab.presentation_changed) as blocker:
        lab.findChild(QPushButton, "presentationButton").click()
    assert blocker.args == [True]
    assert lab.is_presentation()
    assert lab.font_scale() == 2.0
    assert lab.font().pointSizeF() == pytest.approx(2 * size)
    assert seed_spin.isHidden()
    assert not lab.findChild(QSpinBox, "sizeSpin").isHidden()

    lab.set_presentation(False)
    assert lab.font().pointSizeF() == pytest.approx(size)
    assert not seed_spin.isHidden()
    assert not lab.findChild(QPushButton, "presentationButton").isChecked()


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
