"""GUI responsiveness while the window globally prunes a 251.7M-parameter model.

Opens the main window (offscreen unless QT_QPA_PLATFORM is set) on the model of
bench_global_prune.py (15 x Linear(4096, 4096)), with the compiled kernels loaded
as the application does at startup, waits until it is idle, then
starts a global L1 50% pruning from the controller, exactly as the Global
panel's Apply does, and runs a 5 ms QTimer probe until the pruning, the
statistics refresh and the redraw of the selected layer have finished.
With ``--runs N`` the pruning is undone (unmeasured) and done again N times.
Prints one JSON line per run: max_stall_ms (the longest gap beyond the 5 ms
period during the job), gui_cpu_ms (CPU time the GUI thread itself used in that
gap: near the gap it was busy, far below it waited for the GIL or a core),
idle_max_stall_ms (the same probe for as long on an
idle window, the baseline measured in the same run), the job's wall seconds and
load_avg (the 1-minute load average: stalls are noisy on a loaded machine);
then a summary line with the worst run.

    python benchmarks/bench_gui_stall.py --runs 10
    python benchmarks/bench_gui_stall.py --why 30   # stacks of the stalls over 30 ms
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PERIOD_MS = 5

#: The goal for every run (ms).
GOAL_MS = 50.0


class Probe:
    """Records when a 5 ms timer actually fires, and the GUI thread's CPU time then.

    After :meth:`run_until`, :attr:`worst_cpu_ms` is the CPU time the GUI thread
    itself used during the worst gap: close to the gap, the GUI thread was busy
    (work to move off it); far below, it waited (for the GIL or a core).
    """

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.stamps: list[float] = []
        self.cpu: list[float] = []
        self.worst_cpu_ms = 0.0
        self.running = False
        self.timer = QTimer()
        self.timer.setInterval(PERIOD_MS)
        self.timer.timeout.connect(self._stamp)

    def _stamp(self) -> None:
        self.cpu.append(time.thread_time())
        self.stamps.append(time.perf_counter())

    def run_until(self, app: object, done: object, limit_s: float = 600.0) -> float:
        """Spin the event loop until ``done()``; return the worst gap beyond the period."""
        self.stamps.clear()
        self.cpu.clear()
        self.timer.start()
        self._stamp()  # opens the first gap: work done before the timer first fires counts
        self.running = True
        deadline = time.perf_counter() + limit_s
        while not done() and time.perf_counter() < deadline:  # type: ignore[operator]
            app.processEvents()  # type: ignore[attr-defined]
            time.sleep(0.001)
        self._stamp()  # closes the last gap: a stall just before done() counts too
        self.running = False
        self.timer.stop()
        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
        if not gaps:
            self.worst_cpu_ms = 0.0
            return 0.0
        worst = max(range(len(gaps)), key=gaps.__getitem__)
        self.worst_cpu_ms = (self.cpu[worst + 1] - self.cpu[worst]) * 1000
        return max(0.0, gaps[worst] * 1000 - PERIOD_MS)


class StallWatch:
    """Prints every thread's stack to stderr whenever the probe lags more than ``limit_ms``
    (and again every ``limit_ms`` while the stall lasts).

    A diagnosis aid: the GUI thread's stack shows what it was doing (or waiting
    for the GIL in), the others what competed with it.
    """

    def __init__(self, probe: Probe, limit_ms: float) -> None:
        self.probe, self.limit = probe, limit_ms / 1000.0
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        stall, report_at = None, self.limit
        while True:
            time.sleep(0.004)
            stamps = self.probe.stamps
            if not stamps or not self.probe.running:
                continue
            last = stamps[-1]
            if last != stall:  # the probe fired: a new gap starts
                stall, report_at = last, self.limit
            lag = time.perf_counter() - last
            if lag > report_at:  # again every limit_ms while the same stall lasts
                report_at += self.limit
                self._report(lag)

    def _report(self, lag: float) -> None:
        lines = [f"--- GUI thread lags {lag * 1000:.0f} ms ---"]
        for ident, frame in sys._current_frames().items():
            if ident == threading.get_ident():
                continue
            stack = [
                f"    {entry.filename.removeprefix(str(ROOT) + '/')}:{entry.lineno} {entry.name}"
                for entry in traceback.extract_stack(frame)[-6:]
            ]
            if ident != self.main and all("threading.py" in line for line in stack[-2:]):
                continue  # an idle thread
            lines.append("  [GUI]" if ident == self.main else f"  [thread {ident}]")
            lines.extend(stack)
        print("\n".join(lines), file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="prune (and undo) this many times")
    parser.add_argument("--params", type=float, default=251.7e6, help="model size")
    parser.add_argument("--why", type=float, default=0.0, help="print stacks of stalls over ms")
    args = parser.parse_args()

    from bench_global_prune import build_model
    from PySide6.QtWidgets import QApplication

    from core.pruning import scatter
    from core.pruning.operations import GlobalPrune
    from core.viz import display
    from gui.session.loaded import LoadedModel
    from gui.window.main_window import MainWindow

    display.warm_up()  # as gui/app.py does in the background at startup
    scatter.warm_up()
    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.show()
    window.controller.load(LoadedModel(build_model(args.params), "Linear(4096, 4096) layers"))
    controller = window.controller

    def idle() -> bool:
        return not controller.busy and not window.layer_views_pending()

    probe = Probe()
    if args.why:
        StallWatch(probe, args.why)
    probe.run_until(app, idle)
    session = controller.session
    assert session is not None
    stalls = []
    for run in range(args.runs):
        if run:
            controller.undo()
            probe.run_until(app, idle)
        start = time.perf_counter()
        controller.apply(GlobalPrune(tuple(session.names), 0.5))
        stall = probe.run_until(app, idle)
        gui_cpu = probe.worst_cpu_ms
        job_s = time.perf_counter() - start
        deadline = time.perf_counter() + min(job_s, 10.0)
        idle_stall = probe.run_until(app, lambda end=deadline: time.perf_counter() > end)
        stalls.append(stall)
        print(
            json.dumps(
                {
                    "run": run + 1,
                    "max_stall_ms": round(stall, 1),
                    "gui_cpu_ms": round(gui_cpu, 1),
                    "idle_max_stall_ms": round(idle_stall, 1),
                    "job_s": round(job_s, 2),
                    "sparsity": round(session.sparsity(session.names[0]), 4),
                    "load_avg": round(os.getloadavg()[0], 2),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "runs": args.runs,
                "max_stall_ms": round(max(stalls), 1),
                "max_stall_ms_each": [round(s, 1) for s in stalls],
                "goal_ms": GOAL_MS,
                "within_goal": sum(s <= GOAL_MS for s in stalls),
            }
        )
    )
    window.close()


if __name__ == "__main__":
    main()
