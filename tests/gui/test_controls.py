"""The layer controls and the global pruning panel, driven through real controller signals."""

from __future__ import annotations

import math
import threading

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from core.common.errors import PruningError
from core.common.jobs import run_job
from core.pruning.methods import (
    METHODS,
    BlockSparsity,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
)
from core.pruning.operations import GlobalPrune, LayerPrune
from core.pruning.session import PruningSession
from core.pruning.targets import TargetInfo
from gui.pruning import layer_controls
from gui.pruning.global_panel import CAP, INCLUDE, PLANNED, GlobalPanel, LayerTableModel, parse_cap
from gui.pruning.layer_controls import LayerControls, RemainingUnknown
from gui.pruning.method_pages import (
    PREVIEW_DELAY_MS,
    ParamPage,
    ThresholdPage,
    make_page,
    offered_methods,
)
from gui.session.controller import SessionController
from gui.session.loaded import load_builtin_demo
from gui.session.requests import Request

CONV = "block1.conv1.weight"  # (16, 16, 3, 3): 2,304 weights
STEM = "stem.conv.weight"  # (16, 1, 3, 3): 144 weights
FC = "classifier.weight"  # (10, 32): 320 weights
TIMEOUT = 20_000


def settle(qtbot, controller: SessionController) -> None:
    """Let pending preview timers fire and every queued job finish."""
    qtbot.wait(PREVIEW_DELAY_MS + 30)
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)


@pytest.fixture
def controller(qtbot):
    c = SessionController()
    c.load(load_builtin_demo("cnn"))
    qtbot.waitUntil(lambda: not c.busy, timeout=TIMEOUT)
    yield c
    settle(qtbot, c)
    c.session.close()


@pytest.fixture
def controls(qtbot, controller):
    widget = LayerControls(controller)
    qtbot.addWidget(widget)
    widget.set_targets((CONV,))
    return widget


@pytest.fixture
def panel(qtbot, controller):
    widget = GlobalPanel(controller)
    qtbot.addWidget(widget)
    return widget


def preview_masks(qtbot, controls: LayerControls):
    """Wait for the live preview of the controls' current op; return its masks."""
    with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT) as blocker:
        pass
    return blocker.args[0].masks


def never_ending() -> Request:
    """A request nobody runs: what a stubbed controller call hands back."""
    return Request("stub", lambda token: iter(()))


def apply_and_wait(qtbot, widget, controller: SessionController) -> None:
    widget.live_check.setChecked(False)
    assert widget.apply()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)


# -- layer controls --------------------------------------------------------------------------


def test_every_offered_method_but_custom_mask(controls):
    offered = offered_methods()
    assert "custom_mask" not in offered
    assert set(offered) == set(METHODS) - {"custom_mask"}
    combo = controls.method_combo
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels == [METHODS[name].label for name in offered]
    assert "L1 unstructured" in labels and "N:M semi-structured" in labels
    for i in range(combo.count()):
        summary = METHODS[combo.itemData(i)].summary
        assert combo.itemData(i, Qt.ItemDataRole.ToolTipRole) == summary
    controls.set_method("block")
    assert controls.summary.text() == BlockSparsity.summary


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("l1_unstructured", L1Unstructured(0.25)),
        ("random_unstructured", RandomUnstructured(0.25, seed=0)),
        ("ln_structured", LnStructured(0.25, n=2, dim=0)),
        ("random_structured", RandomStructured(0.25, dim=0, seed=0)),
        ("n_m", NMSparsity(2, 4)),
        ("block", BlockSparsity(0.25, 4, 4, 2)),
        ("threshold", MagnitudeThreshold(0.0)),
        ("quantile", QuantileRule(0.25)),
    ],
)
def test_build_op_for_each_method(controls, name, expected):
    controls.set_method(name)
    controls.set_amount_percent(25.0)
    assert controls.build_op() == LayerPrune((CONV,), expected, "set")


# -- pages built from the methods' schemas --------------------------------------------


def _other_value(spec, page: ParamPage):
    """A valid value for ``spec`` that differs from its default, set in the page's field."""
    field = page.fields[spec.name]
    if spec.type == "choice":
        value = spec.choices[-1][1] if spec.choices[-1][1] != spec.default else spec.choices[0][1]
        field.setCurrentIndex(field.findData(value))
    elif spec.type == "fraction":
        value = 0.3
        field.setValue(30.0)
    elif spec.type == "float":
        value = 0.25
        field.setValue(value)
    elif spec.type == "dim":
        value = 1
        field.setValue(value)
    else:
        value = spec.default + 1
        field.setValue(value)
    return value


@pytest.mark.parametrize("name", offered_methods())
def test_schema_pages_produce_the_methods_params(qtbot, name):
    cls = METHODS[name]
    page = make_page(name)
    qtbot.addWidget(page)
    specs = [spec for spec in cls.param_specs if spec.type != "amount"]
    assert list(page.fields) == [spec.name for spec in specs]
    defaults = {spec.name: spec.default for spec in cls.param_specs}
    if cls.uses_amount and not page.owns_amount():
        defaults["amount"] = 0.25
    assert page.method(0.25) == cls(**defaults)
    # Every field moved off its default (M before N, so N may grow) reaches the method.
    chosen = {spec.name: _other_value(spec, page) for spec in reversed(specs)}
    assert page.params() == chosen
    expected = {**defaults, **chosen}
    assert page.method(0.25) == cls(**expected)
    assert page.method(0.25).params() == expected


def test_pages_label_rows_from_the_schema(qtbot):
    page = make_page("n_m")
    qtbot.addWidget(page)
    labels = [page.form.itemAt(row, page.form.ItemRole.LabelRole).widget().text() for row in (0, 1)]
    assert labels == ["Keep N", "Of M"]
    assert page.fields["n"].toolTip() == METHODS["n_m"].spec("n").help
    page.fields["m"].setValue(8)
    assert page.fields["n"].maximum() == 8  # N <= M follows M
    page.fields["m"].setValue(3)
    assert page.fields["n"].maximum() == 3 and page.fields["n"].value() == 2
    quantile = make_page("quantile")
    qtbot.addWidget(quantile)
    assert quantile.owns_amount() and not make_page("block").owns_amount()
    assert isinstance(make_page("threshold"), ThresholdPage)
    assert make_page("l1_unstructured").empty


def test_unknown_method_has_no_page():
    with pytest.raises(PruningError, match="unknown pruning method 'l0_magic'"):
        make_page("l0_magic")


def test_build_op_reads_parameters_and_mode(qtbot, controls):
    controls.set_method("ln_structured")
    page = controls.page()
    page.fields["dim"].setValue(1)
    norm = page.fields["n"]
    norm.setCurrentIndex(norm.findData(float("inf")))
    with qtbot.waitSignal(controls.op_changed) as blocker:
        controls.set_mode("further")
    controls.set_amount_percent(37.5)
    expected = LayerPrune((CONV,), LnStructured(0.375, n=float("inf"), dim=1), "further")
    assert controls.build_op() == expected
    assert blocker.args[0].mode == "further"
    assert controls.further_radio.text() == "Prune a further 37.5% of what remains"


def test_count_amount_is_bounded_by_units(controls):
    controls.set_method("ln_structured")
    controls.set_amount_count(5)
    assert controls.build_op().method == LnStructured(5, n=2, dim=0)
    assert controls.amount_box.count.maximum() == 16  # output channels
    controls.set_method("l1_unstructured")
    assert controls.amount_box.count.maximum() == 2304
    controls.set_method("block")
    assert controls.amount_box.count.maximum() == 4 * 36  # 4 x 36 blocks of 4x4 in 16 x 144


def test_dim_spin_follows_the_targets_ndim(controls):
    controls.set_method("random_structured")
    dim = controls.page().fields["dim"]
    assert (dim.minimum(), dim.maximum()) == (-4, 3)
    controls.set_targets((CONV, FC))
    assert (dim.minimum(), dim.maximum()) == (-2, 1)


def test_structured_page_rejects_1d_and_out_of_range_dim(qtbot):
    page = make_page("ln_structured")
    qtbot.addWidget(page)
    bias = TargetInfo("fc.bias", "fc", "Linear", (10,), torch.float32, torch.device("cpu"))
    with pytest.raises(PruningError, match=r"fc\.bias: .*at least 2 dimensions"):
        page.check(bias)
    weight = TargetInfo("fc.weight", "fc", "Linear", (10, 32), torch.float32, torch.device("cpu"))
    page.fields["dim"].setRange(-4, 3)
    page.fields["dim"].setValue(3)
    with pytest.raises(PruningError, match="out of range"):
        page.check(weight)
    assert page.units(weight.shape) == (0, "channels")  # no units where it cannot prune


def test_preview_matches_the_session_masks(qtbot, controls, controller):
    controls.set_method("l1_unstructured")
    with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT) as blocker:
        controls.set_amount_percent(30.0)
    masks = blocker.args[0].masks
    op = controls.build_op()
    expected = run_job(controller.session.masks_job(op))
    assert masks[CONV] == expected[CONV]
    numel = controller.session.info(CONV).numel
    assert masks[CONV].sparsity == round(0.3 * numel) / numel
    assert controls.status_text().startswith("Preview — not applied")
    assert controller.session.sparsity(CONV) == 0.0  # nothing applied


def test_previews_are_throttled(qtbot, controls, controller, monkeypatch):
    calls = []
    monkeypatch.setattr(controller, "preview", lambda op: calls.append(op) or never_ending())
    for percent in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0):
        controls.set_amount_percent(percent)
    assert calls == []
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=TIMEOUT)
    qtbot.wait(PREVIEW_DELAY_MS + 50)
    assert len(calls) == 1
    assert calls[0].method == L1Unstructured(0.6)


def test_live_preview_off_requests_nothing(qtbot, controls, controller, monkeypatch):
    calls = []
    monkeypatch.setattr(controller, "preview", lambda op: calls.append(op) or never_ending())
    controls.live_check.setChecked(False)
    controls.set_amount_percent(42.0)
    qtbot.wait(PREVIEW_DELAY_MS + 50)
    assert calls == []


@pytest.mark.parametrize("percent", [37.3, 50.0, 99.9])
def test_apply_in_set_mode_gives_exact_sparsity(qtbot, controls, controller, percent):
    controls.set_method("l1_unstructured")
    controls.set_amount_percent(percent)
    controls.set_mode("set")
    apply_and_wait(qtbot, controls, controller)
    numel = controller.session.info(CONV).numel
    assert controller.session.sparsity(CONV) == round(percent / 100 * numel) / numel
    assert controls.status_text().startswith("Applied")


def test_apply_further_prunes_what_remains(qtbot, controls, controller):
    controls.set_amount_percent(50.0)
    apply_and_wait(qtbot, controls, controller)
    controls.set_mode("further")
    controls.set_amount_percent(50.0)
    apply_and_wait(qtbot, controls, controller)
    numel = controller.session.info(CONV).numel
    assert controller.session.sparsity(CONV) == (1152 + 576) / numel


def test_apply_is_disabled_while_busy(qtbot, controls, controller):
    controls.live_check.setChecked(False)
    assert controls.apply_button.isEnabled()
    controls.apply()
    assert controller.busy and not controls.apply_button.isEnabled()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert controls.apply_button.isEnabled()


def test_invalid_count_shows_error_and_disables_apply(qtbot, controls, controller):
    controls.set_targets((CONV, FC))
    with qtbot.waitSignal(controls.op_changed) as blocker:
        controls.set_amount_count(2000)
    assert blocker.args == [None]
    assert "classifier.weight" in controls.status_text()
    assert "cannot prune 2000" in controls.status_text()
    assert "c0392b" in controls.status.styleSheet()
    assert not controls.apply_button.isEnabled()
    with pytest.raises(PruningError):
        controls.build_op()
    assert not controls.apply()
    settle(qtbot, controller)
    assert controller.session.sparsity(CONV) == 0.0


def test_invalid_nm_width_shows_error(controls):
    controls.set_targets((STEM,))  # 1 x 3 x 3 = 9 inputs per row
    controls.set_method("n_m")
    assert "divisible by 4" in controls.status_text()
    assert not controls.apply_button.isEnabled()
    controls.page().fields["m"].setValue(3)
    assert controls.build_op().method == NMSparsity(2, 3)
    assert controls.apply_button.isEnabled()


def test_no_targets_disables_everything(controls):
    controls.set_targets(())
    assert not controls.body.isEnabled()
    assert not controls.hint.isHidden()
    with pytest.raises(PruningError):
        controls.build_op()
    assert controls.current_op() is None


def test_reset_restores_the_layer(qtbot, controls, controller):
    apply_and_wait(qtbot, controls, controller)
    assert controller.session.sparsity(CONV) == 0.5
    controls.reset()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert controller.session.sparsity(CONV) == 0.0


@pytest.mark.parametrize("answer", [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
def test_make_permanent_asks_first(qtbot, controls, controller, monkeypatch, answer):
    apply_and_wait(qtbot, controls, controller)
    asked = []

    def warning(*args, **_kwargs):
        asked.append(args[2])
        return answer

    monkeypatch.setattr(QMessageBox, "warning", warning)
    result = controls.make_permanent()
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert "cannot be undone" in asked[0] and "clears the undo history" in asked[0]
    session = controller.session
    if answer == QMessageBox.StandardButton.No:
        assert not result
        assert session.history.can_undo() and not session.is_permanent(CONV)
    else:
        assert result
        assert not session.history.entries and session.is_permanent(CONV)
        assert session.sparsity(CONV) == 0.5


# -- global panel ---------------------------------------------------------------------------


def plan(qtbot, panel: GlobalPanel) -> dict[str, float]:
    panel.live_check.setChecked(False)
    with qtbot.waitSignal(panel.planned, timeout=TIMEOUT) as blocker:
        assert panel.preview_plan()
    assert blocker.args[0] == panel.planned_sparsity()
    return blocker.args[0]


def test_panel_lists_every_layer(panel, controller):
    names = [row.name for row in panel.model.rows]
    assert names == controller.session.names
    assert panel.included() == tuple(names)
    panel.set_targets((CONV, FC))
    assert panel.included() == (CONV, FC)
    panel.set_targets(())
    assert panel.included() == tuple(names)


def test_global_build_op(panel, controller):
    panel.set_amount_percent(62.5)
    panel.set_included(STEM, False)
    panel.set_cap(FC, 20.0)
    expected = GlobalPrune(
        tuple(n for n in controller.session.names if n != STEM), 0.625, ((FC, 0.2),)
    )
    assert panel.build_op() == expected


def test_planned_sparsity_equals_what_apply_gives(qtbot, panel, controls, controller):
    apply_and_wait(qtbot, controls, controller)  # CONV at 50% before the global pruning
    panel.set_amount_percent(60.0)
    planned = plan(qtbot, panel)
    assert set(planned) == set(controller.session.names)
    assert planned[CONV] > 0.5
    apply_and_wait(qtbot, panel, controller)
    for name, sparsity in planned.items():
        assert controller.session.sparsity(name) == sparsity


def test_caps_are_respected(qtbot, panel, controller):
    panel.set_amount_percent(90.0)
    panel.set_cap(CONV, 20.0)
    planned = plan(qtbot, panel)
    numel = controller.session.info(CONV).numel
    assert planned[CONV] == math.floor(0.2 * numel) / numel
    apply_and_wait(qtbot, panel, controller)
    assert controller.session.sparsity(CONV) == planned[CONV]


def test_excluded_layer_stays_unchanged(qtbot, panel, controller):
    panel.set_amount_percent(80.0)
    panel.set_included(CONV, False)
    planned = plan(qtbot, panel)
    assert CONV not in planned
    assert panel.model.data(panel.model.index(1, PLANNED)) == "—"
    before = controller.session.effective(CONV).clone()
    apply_and_wait(qtbot, panel, controller)
    assert controller.session.sparsity(CONV) == 0.0
    assert torch.equal(controller.session.effective(CONV), before)


def test_full_prune_warns_about_wiped_layers(qtbot, panel):
    panel.set_targets((STEM, FC))
    panel.set_amount_percent(100.0)
    planned = plan(qtbot, panel)
    assert planned == {STEM: 1.0, FC: 1.0}
    assert panel.wiped_layers() == (STEM, FC)
    assert not panel.warning.isHidden()
    assert panel.warning.text().endswith("2 layers would be pruned away entirely")
    index = panel.model.index(0, PLANNED)
    assert panel.model.data(index, Qt.ItemDataRole.BackgroundRole) is not None
    assert panel.model.data(index, Qt.ItemDataRole.DecorationRole) is not None
    panel.set_amount_percent(50.0)  # the plan is stale now: the warning goes
    assert panel.warning.isHidden() and panel.planned_sparsity() == {}


def test_a_plan_of_an_amount_left_behind_is_never_shown(qtbot, panel, controller):
    """Two plans for the same layers: the first (50 %) must not pass for the second (60 %)."""
    panel.live_check.setChecked(False)
    panel.set_amount_percent(50.0)
    assert panel.preview_plan()
    panel.set_amount_percent(60.0)  # before the 50 % plan is back
    assert panel.preview_plan()
    settle(qtbot, controller)
    session = controller.session
    remaining = sum(session.info(name).numel for name in panel.included())
    planned = sum(
        round(sparsity * session.info(name).numel)
        for name, sparsity in panel.planned_sparsity().items()
    )
    assert planned == round(0.6 * remaining)
    assert panel.status_text().startswith("Plan — not applied")


def test_the_plan_previewed_is_the_plan_applied(qtbot, panel, controller):
    panel.live_check.setChecked(False)
    panel.set_cap(CONV, 20.0)
    panel.set_amount_percent(70.0)
    assert panel.preview_plan()
    settle(qtbot, controller)
    planned = panel.planned_sparsity()
    assert planned and planned[CONV] <= 0.2
    assert panel.apply()
    settle(qtbot, controller)
    session = controller.session
    assert {name: session.sparsity(name) for name in planned} == pytest.approx(planned)
    assert panel.status_text().startswith("Applied")


def test_live_replanning_is_throttled(qtbot, panel, controller, monkeypatch):
    calls = []
    monkeypatch.setattr(controller, "plan", lambda op: calls.append(op) or never_ending())
    panel.show()  # live plans only while the panel is on screen
    qtbot.waitExposed(panel)
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=TIMEOUT)  # the plan on showing
    calls.clear()
    for percent in (10.0, 20.0, 30.0):
        panel.set_amount_percent(percent)
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=TIMEOUT)
    qtbot.wait(PREVIEW_DELAY_MS + 50)
    assert len(calls) == 1 and calls[0].amount == 0.3


def test_table_edits_caps_and_inclusion(panel):
    model = panel.model
    cap = model.index(0, CAP)
    assert model.flags(cap) & Qt.ItemFlag.ItemIsEditable
    assert model.setData(cap, "25")
    assert model.rows[0].cap == 25.0
    assert not model.setData(cap, "250")
    assert not model.setData(cap, "abc")
    assert model.setData(cap, "")
    assert model.rows[0].cap is None
    include = model.index(0, INCLUDE)
    assert model.setData(include, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    assert model.data(include, Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked
    assert STEM not in panel.included()
    with pytest.raises(PruningError):
        panel.set_cap(FC, 120.0)
    assert parse_cap(" 12,5 % ") == 12.5


def test_no_included_layer_is_an_error(panel):
    for name in panel.included():
        panel.set_included(name, False)
    assert "include at least one layer" in panel.status_text()
    assert not panel.apply_button.isEnabled() and not panel.preview_button.isEnabled()
    assert not panel.apply()


def test_current_sparsity_follows_masks_changed(qtbot, panel, controls, controller):
    apply_and_wait(qtbot, controls, controller)
    row = panel.model.row_of(CONV)
    assert row.pruned == 1152
    assert panel.model.data(panel.model.index(1, 3)) == "50.0%"


@pytest.mark.parametrize(("method", "live"), [("ln_structured", 8), ("block", 72)])
def test_further_count_is_bounded_by_what_remains(qtbot, controls, controller, method, live):
    controls.set_method(method)
    controls.set_amount_percent(50.0)
    apply_and_wait(qtbot, controls, controller)
    controls.set_mode("further")
    controls.set_amount_count(live)
    assert controls.build_op().method.amount == live
    controls.set_amount_count(live + 1)
    assert f"only {live} remain" in controls.status_text()
    assert not controls.apply_button.isEnabled()


def test_layer_table_model_passes_qt_model_checks(qtmodeltester, controller):
    model = LayerTableModel()  # no parent: it must outlive the tester's teardown
    model.load(controller.session, {STEM, FC})
    model.setData(model.index(4, CAP), "30")
    model.set_planned({STEM: 144, FC: 12})
    qtmodeltester.check(model, force_py=True)
    assert model.row_of(STEM).wiped and not model.row_of(FC).wiped


@pytest.mark.parametrize("how", ["percent", "threshold"])
def test_the_status_warns_before_apply_empties_a_layer(qtbot, controls, controller, how):
    if how == "percent":
        controls.set_method("l1_unstructured")
        with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT):
            controls.set_amount_percent(100.0)
    else:  # a threshold above the largest |w|
        controls.set_method("threshold")
        largest = float(controller.session.original(CONV).abs().max())
        with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT):
            controls.page().value_box.setValue(largest * 2)
    settle(qtbot, controller)
    assert "prunes every weight of the layer" in controls.status_text()
    # an ordinary amount says nothing of the kind
    controls.set_method("l1_unstructured")
    with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT):
        controls.set_amount_percent(40.0)
    settle(qtbot, controller)
    assert controls.status_text().startswith("Preview — not applied")


# -- figures of whole layers come from workers ------------------------------------------------


def refuse_on_gui_thread(monkeypatch, owner: type, name: str) -> list[str]:
    """``owner.name`` raises on the GUI thread from now on; returns the refused calls."""
    original, main, refused = getattr(owner, name), threading.main_thread(), []

    def refusing(*args, **kwargs):
        if threading.current_thread() is main:
            refused.append(name)
            raise AssertionError(f"{name} on the GUI thread")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, refusing)
    return refused


def test_threshold_scale_is_measured_in_a_worker(qtbot, controls, controller, monkeypatch):
    largest = float(controller.session.effective(CONV).abs().max())
    refused = refuse_on_gui_thread(monkeypatch, PruningSession, "effective")
    with qtbot.waitSignal(controller.figures_ready, timeout=TIMEOUT) as blocker:
        controls.set_method("threshold")
        page = controls.page()
        assert page.largest is None
        assert page.scale.text() == "Largest |w| in the selection: measuring…"
    assert refused == []
    assert blocker.args == [(CONV,)]
    assert page.largest == pytest.approx(largest)
    assert page.scale.text() == f"Largest |w| in the selection: {largest:.4g}"
    assert page.value_box.singleStep() == 10.0 ** math.floor(math.log10(largest / 100))
    assert controller.layer_figures(CONV).largest == page.largest


def test_threshold_scale_of_a_selection_is_its_largest(qtbot, controls, controller):
    controls.set_method("threshold")
    controls.set_targets((CONV, FC, STEM))
    qtbot.waitUntil(lambda: controls.page().largest is not None, timeout=TIMEOUT)
    session = controller.session
    expected = max(float(session.effective(n).abs().max()) for n in (CONV, FC, STEM))
    assert controls.page().largest == pytest.approx(expected)


def test_further_count_of_a_big_layer_waits_for_the_worker(
    qtbot, controls, controller, monkeypatch
):
    monkeypatch.setattr(layer_controls, "INLINE_COUNT_LIMIT", 0)  # every layer counts as big
    controls.set_method("ln_structured")
    controls.set_amount_percent(50.0)
    apply_and_wait(qtbot, controls, controller)
    assert controller.layer_figures(CONV) is None  # the apply made old figures stale
    controls.set_mode("further")
    with qtbot.waitSignal(controller.figures_ready, timeout=TIMEOUT):
        controls.set_amount_count(8)
        assert controls.counting and controls.current_op() is None
        assert controls.status_text() == f"Counting the channels that remain in {CONV}…"
        assert not controls.apply_button.isEnabled()
        with pytest.raises(RemainingUnknown):
            controls.build_op()
    assert not controls.counting
    assert controls.build_op().method == LnStructured(8, n=2, dim=0)
    assert controls.apply_button.isEnabled()
    figures = controller.layer_figures(CONV)
    assert figures.remaining[LnStructured(8).pattern()] == 8
    controls.set_amount_count(9)  # known now: at once
    assert "cannot prune 9 more channels, only 8 remain" in controls.status_text()


def test_a_preview_asked_while_counting_follows_the_count(qtbot, controls, controller, monkeypatch):
    monkeypatch.setattr(layer_controls, "INLINE_COUNT_LIMIT", 0)
    controls.live_check.setChecked(False)
    controls.set_method("block")
    controls.set_amount_percent(25.0)
    apply_and_wait(qtbot, controls, controller)
    controls.set_mode("further")
    controls.live_check.setChecked(True)
    with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT) as blocker:
        controls.set_amount_count(10)
        assert controls.counting
    op = controls.current_op()
    assert op is not None and op.method.amount == 10 and op.mode == "further"
    assert (
        blocker.args[0].masks[CONV].pruned == controller.session.packed_mask(CONV).pruned + 10 * 16
    )


def test_layer_figures_follow_the_session(qtbot, controller):
    session = controller.session
    assert controller.layer_figures(CONV) is None
    pattern = LnStructured(1).pattern()
    with qtbot.waitSignal(controller.figures_ready, timeout=TIMEOUT):
        assert controller.measure_layers((CONV, FC), (pattern,))
    figures = controller.layer_figures(CONV)
    assert figures.mask is None and figures.pruned == 0 and figures.remaining[pattern] == 16
    assert figures.largest == pytest.approx(float(session.effective(CONV).abs().max()))
    assert not controller.measure_layers((CONV,), (pattern,))  # nothing new to measure
    others = controller.layer_figures(FC)
    controller.apply(LayerPrune((CONV,), L1Unstructured(0.5)))
    qtbot.waitUntil(lambda: not controller.busy, timeout=TIMEOUT)
    assert controller.layer_figures(CONV) is None  # the layer changed
    assert controller.layer_figures(FC) is others  # this one did not


def test_the_applied_status_stays_until_a_control_moves(qtbot, controls, controller):
    controls.set_method("threshold")  # a page whose figures are re-measured after Apply
    qtbot.waitUntil(lambda: controls.page().largest is not None, timeout=TIMEOUT)
    apply_and_wait(qtbot, controls, controller)
    qtbot.waitUntil(lambda: controls.page().largest is not None, timeout=TIMEOUT)
    settle(qtbot, controller)
    assert controls.status_text().startswith("Applied — ")
    controls.set_targets((FC,))
    assert controls.status_text() == "Ready to apply"
    controls.set_targets((CONV,))
    apply_and_wait(qtbot, controls, controller)
    controls.page().value_box.setValue(0.01)
    assert not controls.status_text().startswith("Applied")


def test_a_failed_plan_is_no_longer_on_its_way(qtbot, panel, controller, monkeypatch):
    def failing(_token):
        raise PruningError("the plan broke")
        yield  # a job

    monkeypatch.setattr(
        controller,
        "plan",
        lambda op: controller.submit("plan", failing, silent_errors=(PruningError,)),
    )
    panel.live_check.setChecked(False)
    assert panel.preview_plan()
    assert panel.plan_pending
    qtbot.waitUntil(lambda: "the plan broke" in panel.status_text(), timeout=TIMEOUT)
    assert not panel.plan_pending  # a live plan may start again when it comes on screen


def test_the_status_line_is_readable_not_greyed_out(controls):
    """Information in the status line ("Ready to apply", "Applied — …") is not drawn in the
    pale grey of disabled text: WCAG AA contrast (4.5:1) against the window."""
    from PySide6.QtGui import QColor

    def luminance(color: QColor) -> float:
        def channel(c: float) -> float:
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(color.redF())
            + 0.7152 * channel(color.greenF())
            + 0.0722 * (channel(color.blueF()))
        )

    assert controls.status_text() == "Ready to apply"
    style = controls.status.styleSheet()
    ink = QColor(style.split("color:")[1].split(";")[0].strip())
    assert ink.isValid(), style
    background = controls.palette().window().color()
    light, dark = sorted((luminance(ink), luminance(background)), reverse=True)
    assert (light + 0.05) / (dark + 0.05) >= 4.5
