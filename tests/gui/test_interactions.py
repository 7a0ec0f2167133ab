"""The GUI thread never reads a whole layer (issue 8).

The window is driven like a user (tree selection with the threshold, structured
and block pages shown, "further" counts, a live preview and Apply, a paint
stroke, Undo) while every whole-layer read is refused on the GUI thread:
unpacking a packed mask (``PackedMask.to_bool``/``to_numpy``/``chunk``) and the
session's weight and mask tensors. The figures the pages need (the largest
|w|, the units that remain) come from workers, with the layer's snapshot or a
small job. Every layer counts as big here (``INLINE_COUNT_LIMIT`` is 0).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
import torch
from torch import nn

import gui.pruning.layer_controls as layer_controls
from core.common.jobs import Job, Progress
from core.pruning.masks import PackedMask
from core.pruning.methods import BlockSparsity, L1Unstructured, LnStructured
from core.pruning.operations import LayerPrune
from core.pruning.session import PruningSession
from gui.session.jobs import JobRunner, job_thread_count, job_threads
from gui.session.layer_reads import LayerSnapshot
from gui.session.loaded import LoadedModel
from gui.session.requests import Request
from gui.window.main_window import MainWindow
from tests.gui.window_helpers import TIMEOUT, select, wait_idle

BIG = "0.weight"  # 64 x 48
SMALL = "2.weight"  # 10 x 64

T = TypeVar("T")


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(48, 64), nn.ReLU(), nn.Linear(64, 10))


def off_gui(fn: Callable[[], T]) -> T:
    """``fn()`` run in another thread (where whole-layer reads are allowed)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join()
    return result[0]


def refuse_whole_layer_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, whole-layer reads raise on the GUI thread; returns those attempted."""
    main = threading.main_thread()
    refused: list[str] = []

    def guard(owner: type, name: str) -> None:
        original = getattr(owner, name)

        def refusing(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is main:
                refused.append(f"{owner.__name__}.{name}")
                raise AssertionError(f"{owner.__name__}.{name} on the GUI thread")
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, refusing)

    for name in ("to_bool", "to_numpy", "chunk"):
        guard(PackedMask, name)
    for name in ("effective", "original", "mask"):
        guard(PruningSession, name)
    return refused


@pytest.fixture
def mlp_window(qtbot, window: MainWindow, monkeypatch: pytest.MonkeyPatch) -> MainWindow:
    """The window on a small MLP whose layers all count as big."""
    monkeypatch.setattr(layer_controls, "INLINE_COUNT_LIMIT", 0)
    window.controller.load(LoadedModel(mlp(), "mlp"))
    wait_idle(qtbot, window)
    return window


def wait_counted(qtbot, window: MainWindow) -> None:
    controls = window.layer_controls
    qtbot.waitUntil(lambda: not controls.counting, timeout=TIMEOUT)
    wait_idle(qtbot, window)


def test_interactions_read_no_layer_on_the_gui_thread(qtbot, mlp_window, monkeypatch):
    window, controls = mlp_window, mlp_window.layer_controls
    session = window.controller.session
    largest = float(session.model[0].weight.detach().abs().max())
    refused = refuse_whole_layer_reads(monkeypatch)

    # Selecting the layer with each page shown.
    for method in ("threshold", "ln_structured", "block"):
        select(qtbot, window, SMALL)
        controls.set_method(method)
        select(qtbot, window, BIG)
        assert controls.status_text() == "Ready to apply"
    controls.set_method("threshold")
    assert controls.page().largest == pytest.approx(largest)
    assert f"{largest:.4g}" in controls.page().scale.text()

    # A live preview, then Apply.
    controls.set_method("l1_unstructured")
    controls.live_check.setChecked(True)
    with qtbot.waitSignal(controls.previewed, timeout=TIMEOUT):
        controls.set_amount_percent(50.0)
    wait_idle(qtbot, window)
    assert window.layer_views.in_preview
    assert controls.status_text().startswith("Preview — not applied: 50.0% of 3,072")
    controls.live_check.setChecked(False)
    controls.apply_button.click()
    wait_idle(qtbot, window)
    assert session.sparsity(BIG) == 0.5
    assert "50.0% pruned" in window.layer_title.text()

    # Whole channels pruned, then "further" counts on the structured page...
    controls.set_method("ln_structured")
    controls.set_amount_percent(25.0)
    controls.apply_button.click()
    wait_idle(qtbot, window)
    controls.set_mode("further")
    controls.set_amount_count(48)
    assert controls.counting and not controls.apply_button.isEnabled()
    assert controls.status_text() == "Counting the channels that remain in 0.weight…"
    wait_counted(qtbot, window)
    assert controls.build_op().method == LnStructured(48, n=2, dim=0)
    assert controls.apply_button.isEnabled()
    controls.set_amount_count(49)  # known now: no wait
    assert not controls.counting
    assert "cannot prune 49 more channels, only 48 remain" in controls.status_text()
    assert not controls.apply_button.isEnabled()

    # ... and on the block page (a quarter of the 4 x 4 blocks pruned first).
    controls.set_method("block")
    controls.set_mode("set")
    controls.set_amount_percent(25.0)
    controls.apply_button.click()
    wait_idle(qtbot, window)
    controls.set_mode("further")
    mask = session.packed_mask(BIG)
    live = off_gui(lambda: BlockSparsity(1).remaining_units((64, 48), mask))
    assert live == 192 - 48
    controls.set_amount_count(live + 1)  # counted already if the views' read brought it
    wait_counted(qtbot, window)
    assert f"only {live} remain" in controls.status_text()
    controls.set_amount_count(live)
    assert controls.build_op().method.amount == live

    # A paint stroke on a kept weight, and its undo.
    kept = off_gui(lambda: session.mask(BIG))
    row, col = (int(i) for i in torch.nonzero(kept)[0])
    flat = np.array([row * 48 + col])
    window.layer_views.paint_stroke_finished.emit([(row, col)], False)
    wait_idle(qtbot, window)
    assert not session.packed_mask(BIG).is_kept(flat)[0]
    window.undo_action.trigger()
    wait_idle(qtbot, window)
    assert session.packed_mask(BIG).is_kept(flat)[0]

    assert refused == []


def test_threshold_scale_comes_with_the_layer_snapshot(qtbot, mlp_window, monkeypatch):
    window, controls = mlp_window, mlp_window.layer_controls
    controller = window.controller
    select(qtbot, window, SMALL)
    controls.set_method("threshold")
    controller.apply(LayerPrune((BIG,), L1Unstructured(0.3)))  # its figures are stale now
    wait_idle(qtbot, window)
    assert controller.layer_figures(BIG) is None
    largest = float(controller.session.model[0].weight.detach().abs().max())
    refused = refuse_whole_layer_reads(monkeypatch)
    jobs: list[str] = []
    snapshots: list[LayerSnapshot] = []

    def started(request: Request) -> None:
        jobs.append(request.label)
        request.finished.connect(snapshots.append)

    controller.request_started.connect(started)

    select(qtbot, window, BIG)
    assert jobs == [f"Read {BIG}"]  # no job of its own: the figures came with the layer
    (snapshot,) = snapshots
    assert snapshot.figures.largest == pytest.approx(largest)
    assert controls.page().largest == snapshot.figures.largest
    assert controller.layer_figures(BIG) is snapshot.figures
    assert refused == []


def test_a_stroke_makes_the_figures_stale_and_the_views_bring_new_ones(qtbot, mlp_window):
    window = mlp_window
    controller = window.controller
    select(qtbot, window, BIG)
    before = controller.layer_figures(BIG)
    assert before is not None and before.pruned == 0
    window.layer_views.paint_stroke_finished.emit([(0, 0), (0, 1)], False)
    wait_idle(qtbot, window)
    after = controller.layer_figures(BIG)
    assert after is not None and after is not before
    assert after.pruned == 2 and after.mask is controller.session.packed_mask(BIG)


# -- the job runner leaves the GUI thread a core --------------------------------------------


def test_job_threads_leave_one_core_and_restore(qtbot):
    cores = len(os.sched_getaffinity(0))
    assert job_thread_count() == max(1, cores - 1)
    seen: dict[str, int] = {}

    def work() -> None:
        seen["before"] = torch.get_num_threads()
        with job_threads():
            seen["inside"] = torch.get_num_threads()
        seen["after"] = torch.get_num_threads()

    off_gui(work)
    assert seen["inside"] == min(seen["before"], job_thread_count())
    assert seen["after"] == seen["before"]


def test_jobs_run_at_the_job_thread_count(qtbot):
    gui_threads = torch.get_num_threads()
    runner = JobRunner()
    results: list[int] = []

    def job(_token: object) -> Job[int]:
        yield Progress(0.5, "counting threads")
        return torch.get_num_threads()

    runner.run("threads", job, on_result=results.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=TIMEOUT)
    assert results == [min(gui_threads, job_thread_count())]
    assert torch.get_num_threads() == gui_threads  # the GUI thread keeps its own
