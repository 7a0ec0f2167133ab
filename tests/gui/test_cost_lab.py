"""The Cost lab tab: sizes × ratios × kinds fill the table and plots live; the speed test
explains itself; runs through the controller when it has a model, alone otherwise."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.speed.cost_lab import CostRow
from gui.session.controller import SessionController
from gui.session.loaded import load_builtin_demo
from gui.speed import CostLabPanel
from gui.speed.cost_table import DENSE, KIND, RATIO, SIZE, SMALL, SPARSE

TIMEOUT = 60_000


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()!r} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def tiny(panel: CostLabPanel) -> None:
    panel.sizes_edit.setText("16, 32")
    panel.ratios_edit.setText("0, 0.5")
    panel.batch_spin.setValue(4)
    panel.threads_spin.setValue(1)
    panel.min_time_spin.setValue(0.01)


@pytest.fixture
def lab(qtbot, settings_dir):
    panel = CostLabPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 700)
    panel.show()
    yield panel
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


def test_cost_lab_fills_rows_live(qtbot, lab):
    assert lab.sizes_edit.text() == "100, 500, 1000"  # the brief's defaults
    assert lab.ratios_edit.text() == "0, 0.2, 0.5, 0.8, 0.9"
    tiny(lab)
    counts: list[int] = []
    lab.table_model.rowsInserted.connect(lambda *_: counts.append(lab.table_model.rowCount()))
    click(qtbot, lab.run_button)
    assert lab.busy and lab.cancel_button.isEnabled() and not lab.test_button.isEnabled()
    qtbot.waitUntil(lambda: not lab.busy, timeout=TIMEOUT)

    model = lab.table_model
    assert counts == list(range(1, 9))  # 2 sizes x 2 ratios x 2 kinds, one at a time
    rows = model.rows
    assert all(isinstance(r, CostRow) for r in rows)
    assert {(r.size, r.ratio, r.kind) for r in rows} == {
        (s, q, k) for s in (16, 32) for q in (0.0, 0.5) for k in ("unstructured", "structured")
    }
    for i, row in enumerate(rows):
        assert model.cell_text(i, SIZE) == f"{row.size}²"
        assert model.cell_text(i, RATIO) == f"{row.ratio:.0%}"
        assert model.cell_text(i, KIND) == row.kind
        assert model.cell_text(i, DENSE) not in ("", "–")
        # A sparse kernel once something is pruned; a smaller layer for structured pruning.
        assert (model.cell_text(i, SPARSE) == "–") == (row.ratio == 0)
        assert (model.cell_text(i, SMALL) == "–") == (row.kind == "unstructured")
    lines = lab.chart.lines()
    assert {size for size, _key in lines} == {16, 32}
    assert lines[(32, "dense_ms")][0] == [0.0, 0.5]
    assert "Done: 8 rows" in lab.status_text()


def test_speed_test_shows_speedups_and_explains(qtbot, lab):
    lab.min_time_spin.setValue(0.01)
    click(qtbot, lab.test_button)
    qtbot.waitUntil(lambda: not lab.busy, timeout=TIMEOUT)
    result = lab.speed_test
    assert result is not None
    assert (result.batch_size, result.size, result.ratio) == (100, 1000, 0.8)
    assert lab.explanation.text() == result.explanation and len(result.explanation) > 40
    bars = lab.speed_chart.speedups()
    assert set(bars) == {"masked_ms", "sparse_ms", "torch_csr_ms", "small_ms"}
    assert bars["small_ms"] == pytest.approx(result.dense_ms / result.small_ms)


def test_cancel_and_bad_input(qtbot, lab):
    lab.ratios_edit.setText("0, 1.5")
    click(qtbot, lab.run_button)
    assert not lab.busy and "1.5" in lab.status_text()
    lab.sizes_edit.setText("64, 128, 256, 512")
    lab.ratios_edit.setText("0, 0.2, 0.5, 0.8, 0.9")
    lab.min_time_spin.setValue(0.2)
    click(qtbot, lab.run_button)
    qtbot.waitUntil(lambda: lab.table_model.rowCount() >= 1, timeout=TIMEOUT)
    click(qtbot, lab.cancel_button)
    qtbot.waitUntil(lambda: not lab.busy, timeout=TIMEOUT)
    assert 1 <= lab.table_model.rowCount() < 40
    assert "Cancelled" in lab.status_text()
    assert lab.run_button.isEnabled()


def test_runs_through_the_controller_one_job_at_a_time(qtbot, settings_dir):
    controller = SessionController()
    controller.load(load_builtin_demo("cnn"))
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    panel = CostLabPanel(controller)
    qtbot.addWidget(panel)
    tiny(panel)
    labels: list[str] = []
    controller.request_started.connect(lambda request: labels.append(request.label))
    click(qtbot, panel.run_button)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert "Cost lab" in labels  # the window's runner ran it
    assert panel.table_model.rowCount() == 8
    controller.session.close()


def test_settings_are_remembered(qtbot, settings_dir):
    first = CostLabPanel()
    qtbot.addWidget(first)
    first.sizes_edit.setText("64, 128")
    first.ratios_edit.setText("0.1, 0.95")
    second = CostLabPanel()
    qtbot.addWidget(second)
    assert second.sizes() == (64, 128)
    assert second.ratios() == (0.1, 0.95)
