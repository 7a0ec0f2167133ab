"""The Speed tab: benchmark (live rows, unavailable forms, export, cancel), advice, slim, harvest.

Driven like a user: settings typed into the widgets, buttons clicked, then what
the panel shows is compared with the engine's state. Timings are never asserted.
"""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch
from PySide6.QtCore import Qt

from core.pruning.methods import L1Unstructured, LnStructured
from core.pruning.operations import LayerPrune
from core.pruning.slim import CONSUMERS_ZERO
from core.speed.benchmark import FORMS, NO_SLIM, BenchmarkReport
from gui.panels.model_tree import COLUMNS
from gui.session.controller import SessionController
from gui.session.loaded import load_builtin_demo
from gui.speed import SpeedPanel
from gui.speed.benchmark_table import DIFF, FAILED_TEXT, FORM, MEDIAN, MUTED_TEXT, NOTE
from gui.speed.forms import form_label
from tests.gui.window_helpers import wait_idle

TIMEOUT = 60_000
CONV = "block1.conv1.weight"


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()!r} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


@pytest.fixture
def controller(qtbot, settings_dir):
    c = SessionController()
    c.load(load_builtin_demo("cnn"))
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT)
    yield c
    c.cancel()
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT)
    c.session.close()


@pytest.fixture
def panel(qtbot, controller):
    widget = SpeedPanel(controller)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def tiny_settings(panel: SpeedPanel, batches: str = "1") -> None:
    panel.batch_edit.setText(batches)
    panel.min_time_spin.setValue(0.01)
    panel.threads_spin.setValue(1)


def run_to_end(qtbot, panel: SpeedPanel) -> None:
    click(qtbot, panel.run_button)
    assert panel.benchmark.active
    qtbot.waitUntil(lambda: not panel.benchmark.active, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not panel.controller.busy, timeout=TIMEOUT)


def row_of(panel: SpeedPanel, form: str, batch: int) -> int:
    for i, row in enumerate(panel.table_model.rows):
        if (row.form, row.batch_size) == (form, batch):
            return i
    raise AssertionError(f"no row for {form} at batch {batch}")


def test_benchmark_fills_the_table_live_and_exports(qtbot, panel, tmp_path):
    assert panel.shape_edit.text() == "1, 8, 8"  # the demo's example input, without batch
    tiny_settings(panel)
    counts: list[int] = []
    panel.table_model.rowsInserted.connect(lambda *_: counts.append(panel.table_model.rowCount()))
    run_to_end(qtbot, panel)

    model = panel.table_model
    assert counts == list(range(1, len(FORMS) + 1))  # one row at a time, as measured
    assert sorted(r.form for r in model.rows) == sorted(FORMS)
    report = panel.report
    assert report is not None and len(report.rows) == len(FORMS)
    assert report.config.batch_sizes == (1,) and report.threads == 1
    assert "Done" in panel.status_text()

    # Unavailable forms: greyed, with their reason in words.
    slim = row_of(panel, "slim", 1)
    assert model.cell_text(slim, NOTE) == NO_SLIM
    assert model.cell_text(slim, MEDIAN) == "–"
    assert model.data(model.index(slim, FORM), Qt.ItemDataRole.ForegroundRole) == MUTED_TEXT
    semi = row_of(panel, "semi_structured", 1)
    assert model.cell_text(semi, FORM) == form_label("semi_structured")
    assert model.cell_text(semi, NOTE)  # e.g. "needs an NVIDIA GPU"
    assert "unavailable" in model.data(model.index(semi, MEDIAN), Qt.ItemDataRole.ToolTipRole)
    # Timed forms: a time and the output check against the masked model.
    for form in ("masked", "sparse"):
        i = row_of(panel, form, 1)
        result = model.rows[i]
        assert result.median_ms is not None and result.max_abs_diff is not None
        assert model.cell_text(i, MEDIAN) not in ("", "–")
        assert model.cell_text(i, DIFF) == ("0" if result.max_abs_diff == 0 else
                                            f"{result.max_abs_diff:.1e}")  # fmt: skip
    assert panel.latency_chart.values().keys() == {("dense", 1), ("masked", 1), ("sparse", 1)}
    assert ("masked", 1) in panel.speedup_chart.speedups()
    assert "adaptive_autorange" in panel.method_label.text()

    # Export: the CSV parses back to one line per row; the JSON to the same report.
    assert panel.csv_button.isEnabled() and panel.json_button.isEnabled()
    written = panel.export_report(tmp_path / "bench.csv")
    with written.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["form"] for line in lines] == [r.form for r in report.rows]
    assert float(lines[0]["median_ms"]) == pytest.approx(report.rows[0].median_ms)
    panel.export_report(tmp_path / "bench.json")
    again = BenchmarkReport.read_json(tmp_path / "bench.json")
    assert [r.form for r in again.rows] == [r.form for r in report.rows]
    assert json.loads((tmp_path / "bench.json").read_text())["threads"] == 1


def test_cancel_stops_the_benchmark_and_keeps_the_rows(qtbot, panel):
    tiny_settings(panel, "1, 2, 3, 4, 5, 6")
    panel.min_time_spin.setValue(0.2)
    assert not panel.cancel_button.isEnabled()
    click(qtbot, panel.run_button)
    qtbot.waitUntil(lambda: panel.table_model.rowCount() >= 1, timeout=TIMEOUT)
    click(qtbot, panel.cancel_button)
    qtbot.waitUntil(lambda: not panel.benchmark.active, timeout=TIMEOUT)
    kept = panel.table_model.rowCount()
    assert 1 <= kept < 6 * len(FORMS)
    assert "Cancelled" in panel.status_text()
    assert panel.report is None and not panel.csv_button.isEnabled()
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    qtbot.wait(200)
    assert panel.table_model.rowCount() == kept  # nothing arrives after the cancel


def test_bad_settings_are_explained_in_the_panel(qtbot, panel):
    panel.batch_edit.setText("1, sixteen")
    click(qtbot, panel.run_button)
    assert not panel.benchmark.active
    assert "sixteen" in panel.status_text()
    panel.batch_edit.setText("1")
    panel.shape_edit.setText("")
    click(qtbot, panel.run_button)
    assert not panel.benchmark.active and "Input shape" in panel.status_text()


def test_advice_warns_before_a_run(qtbot, panel, controller):
    qtbot.waitUntil(lambda: bool(panel.advice_view.advice), timeout=TIMEOUT)
    assert any("Nothing is pruned" in t for t in panel.advice_view.texts())
    controller.apply(LayerPrune((CONV,), L1Unstructured(0.5)))
    qtbot.waitUntil(lambda: bool(panel.advice_view.warnings()), timeout=TIMEOUT)
    warning = panel.advice_view.warnings()[0]
    assert CONV in warning.layers
    shown = [label for label in panel.advice_view.findChildren(type(panel.status))
             if label.property("level") == "warning" and label.isVisible()]  # fmt: skip
    assert shown and "cost as much as weights" in shown[0].text()


def test_settings_are_remembered(qtbot, controller):
    first = SpeedPanel(controller)
    qtbot.addWidget(first)
    first.batch_edit.setText("2, 8")
    first.min_time_spin.setValue(0.05)
    first.form_checks["semi_structured"].setChecked(False)
    second = SpeedPanel(controller)
    qtbot.addWidget(second)
    assert second.batch_edit.text() == "2, 8"
    assert second.min_time_spin.value() == pytest.approx(0.05)
    assert "semi_structured" not in second.config().forms
    assert second.config().batch_sizes == (2, 8)


def shape_in_tree(window, name: str) -> str:
    model = window.tree.model
    return model.data(model.index_of(name).siblingAtColumn(COLUMNS.index("Shape")))


def test_slim_after_group_pruning_replaces_the_model_and_undo_restores(qtbot, window):
    panel = SpeedPanel(window.controller)
    window.tabs.addTab(panel, "Speed")  # as the window adds it
    window.tabs.setCurrentWidget(panel)
    box = panel.slim_box
    session = window.controller.session
    assert shape_in_tree(window, "stem.conv.weight") == "16 × 1 × 3 × 3"

    box.amount_slider.setValue(50.0)
    click(qtbot, box.group_button)
    wait_idle(qtbot, window)
    assert "Applied" in box.status_text()
    assert session.sparsity("stem.conv.weight") == pytest.approx(0.5)

    click(qtbot, box.slim_button)
    wait_idle(qtbot, window)
    result = box.last_result
    assert result is not None and session.model is result.model
    assert session.model.stem.conv.out_channels == 8
    assert shape_in_tree(window, "stem.conv.weight") == "8 × 1 × 3 × 3"  # the tree followed
    removed = sum(result.removed.values())
    assert f"removed {removed} channels in {len(result.removed)} groups" in box.slim_result.text()
    assert "max |diff|" in box.slim_result.text() and "→" in box.slim_result.text()
    assert panel.slim_model is result.model

    window.controller.undo()
    wait_idle(qtbot, window)
    assert session.model is not result.model
    assert session.model.stem.conv.out_channels == 16
    assert shape_in_tree(window, "stem.conv.weight") == "16 × 1 × 3 × 3"
    assert "masked model again" in box.status_text()

    # The next benchmark measures the slim model as the "slim" form.
    tiny_settings(panel)
    for form in ("sparse", "semi_structured"):
        panel.form_checks[form].setChecked(False)
    run_to_end(qtbot, panel)
    slim = panel.table_model.rows[row_of(panel, "slim", 1)]
    assert slim.median_ms is not None and slim.params == result.params_after
    assert slim.max_abs_diff is not None and slim.max_abs_diff <= 1e-4


def test_harvest_lists_all_zero_channels_and_removes_them(qtbot, panel, controller):
    box = panel.slim_box
    # Zero 8 of the classifier's 32 input columns: the expand channels feeding them are unread.
    controller.apply(LayerPrune(("classifier.weight",), LnStructured(0.25, n=1, dim=1)))
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert not box.remove_button.isEnabled()
    click(qtbot, box.harvest_button)
    qtbot.waitUntil(lambda: box.harvest_model.rowCount() > 0, timeout=TIMEOUT)
    rows = box.harvest_model.rows
    assert [(r.root, len(r.channels), r.reason) for r in rows] == [
        ("expand.conv", 8, CONSUMERS_ZERO)
    ]
    text = box.harvest_model.data(box.harvest_model.index(0, 1))
    assert text.startswith("8 (#")
    assert "8 all-zero channels in 1 group" in box.harvest_status.text()

    qtbot.waitUntil(lambda: box.remove_button.isEnabled(), timeout=TIMEOUT)
    click(qtbot, box.remove_button)
    qtbot.waitUntil(lambda: box.last_result is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert controller.session.model.expand.conv.out_channels == 24
    assert controller.session.model.classifier.in_features == 24
    assert box.harvest_model.rowCount() == 0
    controller.undo()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert controller.session.model.expand.conv.out_channels == 32


def test_slim_without_group_pruning_says_why(qtbot, panel, controller):
    box = panel.slim_box
    click(qtbot, box.slim_button)
    qtbot.waitUntil(lambda: not box.slim_job.active, timeout=TIMEOUT)
    assert "nothing to slim" in box.status_text()
    assert box.status.styleSheet().startswith("color: #c0392b")
    assert controller.session.model.stem.conv.out_channels == 16


def test_a_failed_form_is_red_and_untimed(qtbot, panel):
    """A slim model whose outputs differ from the masked one is reported failed, not timed."""
    wrong = copy.deepcopy(panel.controller.session.model)
    with torch.no_grad():
        wrong.classifier.bias.add_(1.0)
    panel.set_slim_model(wrong)
    assert "slim" in panel.slim_note.text()
    tiny_settings(panel)
    for form in ("sparse", "semi_structured"):
        panel.form_checks[form].setChecked(False)
    run_to_end(qtbot, panel)
    model = panel.table_model
    i = row_of(panel, "slim", 1)
    assert model.rows[i].median_ms is None
    assert model.data(model.index(i, FORM), Qt.ItemDataRole.ForegroundRole) == FAILED_TEXT
    assert "differ" in model.cell_text(i, NOTE)
    assert model.cell_text(i, DIFF) != "–"


def test_a_panel_built_before_any_model_waits_for_one(qtbot, settings_dir):
    controller = SessionController()  # the window builds its tabs before opening a model
    panel = SpeedPanel(controller)
    qtbot.addWidget(panel)
    assert not panel.run_button.isEnabled() and not panel.slim_box.slim_button.isEnabled()
    assert not panel.run_benchmark()
    controller.load(load_builtin_demo("mlp"))
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert panel.run_button.isEnabled() and panel.slim_box.slim_button.isEnabled()
    assert panel.shape_edit.text() == "1, 8, 8"
    controller.session.close()


def test_a_benchmark_after_group_pruning_times_a_slim_copy_beside_dense_and_masked(qtbot, window):
    panel = SpeedPanel(window.controller)
    window.tabs.addTab(panel, "Speed")
    window.tabs.setCurrentWidget(panel)
    session = window.controller.session
    panel.slim_box.amount_slider.setValue(50.0)
    click(qtbot, panel.slim_box.group_button)
    wait_idle(qtbot, window)
    model = session.model
    tiny_settings(panel)
    for form in ("sparse", "semi_structured"):
        panel.form_checks[form].setChecked(False)
    run_to_end(qtbot, panel)
    assert session.model is model  # nothing applied: the slim copy was for the benchmark
    masked = panel.table_model.rows[row_of(panel, "masked", 1)]
    slim = panel.table_model.rows[row_of(panel, "slim", 1)]
    assert slim.median_ms is not None and slim.params < 0.5 * masked.params
    assert slim.max_abs_diff is not None and slim.max_abs_diff <= 1e-4


def test_a_panel_closed_while_its_job_runs_ignores_the_late_result(qtbot, controller):
    """A benchmark's result that arrives after its panel was deleted touches nothing."""
    import shiboken6

    panel = SpeedPanel(controller)
    tiny_settings(panel)
    for form in ("sparse", "slim", "semi_structured"):
        panel.form_checks[form].setChecked(False)
    assert panel.run_benchmark()
    qtbot.waitUntil(lambda: controller.busy, timeout=5000)
    shiboken6.delete(panel)  # the window closed the tab while the job runs
    qtbot.waitUntil(lambda: not controller.busy, timeout=20_000)
    qtbot.wait(50)  # the result and "finished" are delivered: no exception in the loop


def test_opening_a_model_redraws_the_charts_only_when_they_showed_results(
    qtbot, panel, controller, monkeypatch
):
    drawn: list[int] = []
    chart = panel.results_box.latency_chart
    original = type(chart).show_rows
    monkeypatch.setattr(
        type(chart), "show_rows", lambda self, rows: (drawn.append(len(rows)), original(self, rows))
    )
    controller.load(load_builtin_demo("mlp"))  # nothing measured: the empty charts stay
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert drawn == []
    tiny_settings(panel)
    run_to_end(qtbot, panel)
    assert drawn and drawn[-1] == len(FORMS)
    controller.load(load_builtin_demo("cnn"))  # the results go, so do their bars
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert drawn[-1] == 0
