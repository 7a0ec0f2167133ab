"""GUI responsiveness of everyday interactions on one 8192 x 8192 Linear layer (67M weights).

Opens the main window (offscreen unless QT_QPA_PLATFORM is set) on a model made
of one Linear(8192, 8192) and a small Linear(8192, 16) to select in between,
warms up as the application does at startup (compiled kernels, then
``gc.freeze``), waits until it is idle, then performs each interaction the way a
user does (tree selection, the controls' widgets, a paint stroke through the
mask view's signal, Edit > Undo; then saving a 251.7M-parameter model as a
session and opening that file; last, a full garbage collection such as Python
starts on its own now and then, on the frozen heap and, as the baseline
``full_collection_unfrozen``, after ``gc.unfreeze``). A 5 ms QTimer probe runs
until every job it started has finished and every view shows its full image.
The action itself runs inside the probed event loop, so its own cost counts.
Prints one JSON line per interaction:
max_stall_ms (the longest gap beyond the 5 ms period), gui_cpu_ms (CPU time
the GUI thread itself used in that gap: near the gap it was busy, far below it
waited for the GIL or a core), idle_max_stall_ms (the same probe on the idle
window just before: the baseline of the same run), wall_s,
main_thread_unpacked (mask entries the GUI thread unpacked: should be 0) and
load_avg (1-minute load average at the end; stalls are noisy on a loaded
machine); then a summary line with the worst interaction.

    python benchmarks/bench_interactions.py                 # 8192 x 8192
    python benchmarks/bench_interactions.py --size 4096     # a smaller layer
    python benchmarks/bench_interactions.py --why 30        # stacks of stalls over 30 ms
    python benchmarks/bench_interactions.py --file-params 0 # skip saving and opening 251.7M
    python benchmarks/bench_interactions.py --heatmap-sync-limit 4194304   # a what-if
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_gui_stall import Probe, StallWatch  # noqa: E402

#: Goal of every interaction (ms).
GOAL_MS = 50.0


class UnpackCounter:
    """Counts mask entries unpacked on the GUI thread (PackedMask.chunk is the one way in)."""

    def __init__(self) -> None:
        from core.pruning.masks import PackedMask

        self.entries = 0
        self._main = threading.main_thread()
        original = PackedMask.chunk

        def chunk(mask: PackedMask, start: int, stop: int):  # type: ignore[no-untyped-def]
            if threading.current_thread() is self._main:
                self.entries += max(0, min(stop, mask.numel) - start)
            return original(mask, start, stop)

        PackedMask.chunk = chunk  # type: ignore[method-assign]

    def take(self) -> int:
        entries, self.entries = self.entries, 0
        return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="rows = columns of the layer")
    parser.add_argument("--why", type=float, default=0.0, help="print stacks of stalls over ms")
    parser.add_argument(
        "--file-params",
        type=float,
        default=251.7e6,
        help="parameters of the model saved and opened at the end (0: skip)",
    )
    parser.add_argument(
        "--heatmap-sync-limit",
        type=int,
        default=None,
        help="what if gui/heatmap/heatmap_scheduler.py's SYNC_REDUCE_LIMIT were this (elements)",
    )
    args = parser.parse_args()

    import torch
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from torch import nn

    from gui.app import warm_up
    from gui.pruning.layer_controls import LayerControls
    from gui.session.loaded import LoadedModel
    from gui.window.main_window import MainWindow

    torch.manual_seed(0)
    # A small second layer to select in between (biases are not prunable, not in the tree).
    model = nn.Sequential(nn.Linear(args.size, args.size), nn.ReLU(), nn.Linear(args.size, 16))
    if args.heatmap_sync_limit is not None:
        import gui.heatmap.heatmap_scheduler

        gui.heatmap.heatmap_scheduler.SYNC_REDUCE_LIMIT = args.heatmap_sync_limit
    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.show()
    counter = UnpackCounter()
    window.controller.load(LoadedModel(model, f"Linear({args.size}, {args.size})"))
    # As gui/app.py does once the window is up: load the kernels, then freeze what exists.
    warm_up()
    controller = window.controller
    controls: LayerControls = window.layer_controls
    weight, other = "0.weight", "2.weight"
    probe = Probe()
    if args.why:
        StallWatch(probe, args.why)

    def idle() -> bool:
        return (
            not controller.busy
            and not window.layer_views_pending()
            and not controls.preview_scheduled
        )

    stalls: dict[str, float] = {}

    def measure(name: str, action: Callable[[], None]) -> None:
        probe.run_until(app, idle)
        quiet = time.perf_counter() + 0.3
        idle_stall = probe.run_until(app, lambda: time.perf_counter() > quiet)
        counter.take()
        start = time.perf_counter()
        QTimer.singleShot(0, action)
        # The action has run once the probe saw at least one more period after it.
        ran: list[bool] = []
        QTimer.singleShot(0, lambda: ran.append(True))
        stall = probe.run_until(app, lambda: bool(ran) and idle())
        gui_cpu = probe.worst_cpu_ms
        wall = time.perf_counter() - start
        stalls[name] = stall
        print(
            json.dumps(
                {
                    "interaction": name,
                    "max_stall_ms": round(stall, 1),
                    "gui_cpu_ms": round(gui_cpu, 1),
                    "idle_max_stall_ms": round(idle_stall, 1),
                    "goal_ms": GOAL_MS,
                    "wall_s": round(wall, 2),
                    "main_thread_unpacked": counter.take(),
                    "load_avg": round(os.getloadavg()[0], 2),
                }
            ),
            flush=True,
        )

    def select(name: str) -> Callable[[], None]:
        return lambda: window.tree.select_param(name)

    def settle(action: Callable[[], None]) -> None:
        """An unmeasured step: do it and wait until idle."""
        action()
        probe.run_until(app, idle)

    settle(lambda: window.tree.select_param(weight))
    controls.live_check.setChecked(True)

    # A pruned layer first, so "further" has something to take from.
    settle(lambda: controls.set_method("l1_unstructured"))
    measure("preview", lambda: controls.set_amount_percent(40.0))
    measure("apply", controls.apply_button.click)

    for method, label in (
        ("threshold", "threshold"),
        ("ln_structured", "structured"),
        ("block", "block"),
    ):
        settle(select(other))
        settle(lambda method=method: controls.set_method(method))
        measure(f"select_{label}", select(weight))

    for method, label, count in (("ln_structured", "structured", 1000), ("block", "block", 5000)):
        settle(lambda method=method: controls.set_method(method))
        settle(lambda: controls.set_mode("further"))
        settle(lambda count=count: controls.set_amount_count(count // 2))
        measure(f"count_further_{label}", lambda count=count: controls.set_amount_count(count))
        settle(lambda: controls.set_mode("set"))

    settle(lambda: controls.set_method("l1_unstructured"))
    cells = [(10, col) for col in range(100, 140)]
    measure("paint_stroke", lambda: window.layer_views.paint_stroke_finished.emit(cells, False))
    measure("undo_stroke", window.undo_action.trigger)

    if args.file_params:  # save a big model as a session, then open that file
        from bench_global_prune import build_model

        from core.io.references import ModelReference

        folder = Path(tempfile.mkdtemp(prefix="bench_interactions_"))
        path = folder / "big.prunescope"
        reference = ModelReference(
            "factory", "bench_global_prune:build_model", args=(("params", args.file_params),)
        )
        big = LoadedModel(build_model(args.file_params), "big", reference=reference)
        settle(lambda: window.load_model(big))
        label = f"{args.file_params / 1e6:.0f}M"
        measure(f"save_{label}", lambda: window.save_to(str(path)))
        measure(f"open_{label}", lambda: window.open_model_file(str(path), confirm=False))
        shutil.rmtree(folder, ignore_errors=True)
    # A full collection, which Python starts on its own now and then: on the heap as
    # the application leaves it (startup frozen), then as it was before (the baseline).
    measure("full_collection", gc.collect)
    gc.unfreeze()
    measure("full_collection_unfrozen", gc.collect)
    stalls.pop("full_collection_unfrozen")  # the baseline, not one of ours
    worst = max(stalls, key=lambda name: stalls[name])
    summary = {
        "interactions": len(stalls),
        "max_stall_ms": round(stalls[worst], 1),
        "worst": worst,
        "goal_ms": GOAL_MS,
        "within_goal": sum(stall <= GOAL_MS for stall in stalls.values()),
    }
    print(json.dumps(summary), flush=True)
    window.close()


if __name__ == "__main__":
    main()
