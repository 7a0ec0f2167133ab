"""GUI responsiveness while the window globally prunes a 251.7M-parameter model.

Opens the main window (offscreen unless QT_QPA_PLATFORM is set) on the model of
bench_global_prune.py (15 x Linear(4096, 4096)), waits until it is idle, then
starts a global L1 50% pruning from the controller, exactly as the Global
panel's Apply does, and runs a 5 ms QTimer probe until the pruning, the
statistics refresh and the redraw of the selected layer have finished.
Prints one JSON line: max_stall_ms (the longest gap beyond the 5 ms period
during the job), idle_max_stall_ms (the same probe for as long on an idle
window, the baseline measured in the same run), and the job's wall seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PERIOD_MS = 5


class Probe:
    """Records when a 5 ms timer actually fires."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.stamps: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(PERIOD_MS)
        self.timer.timeout.connect(lambda: self.stamps.append(time.perf_counter()))

    def run_until(self, app: object, done: object, limit_s: float = 600.0) -> float:
        """Spin the event loop until ``done()``; return the worst gap beyond the period."""
        self.stamps.clear()
        self.timer.start()
        deadline = time.perf_counter() + limit_s
        while not done() and time.perf_counter() < deadline:
            app.processEvents()  # type: ignore[attr-defined]
            time.sleep(0.001)
        self.timer.stop()
        gaps = [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]
        return max(0.0, max(gaps, default=0.0) * 1000 - PERIOD_MS)


def main() -> None:
    from bench_global_prune import build_model
    from PySide6.QtWidgets import QApplication

    from core.pruning.operations import GlobalPrune
    from gui.controller import LoadedModel
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    window.show()
    window._load(LoadedModel(build_model(251.7e6), "15 x Linear(4096, 4096)"))
    controller = window.controller

    def idle() -> bool:
        return not controller.busy and not window.layer_views_pending()

    probe = Probe()
    probe.run_until(app, idle)
    session = controller.session
    assert session is not None
    start = time.perf_counter()
    controller.apply(GlobalPrune(tuple(session.names), 0.5))
    stall = probe.run_until(app, idle)
    job_s = time.perf_counter() - start
    deadline = time.perf_counter() + min(job_s, 10.0)
    idle_stall = probe.run_until(app, lambda: time.perf_counter() > deadline)
    print(
        json.dumps(
            {
                "max_stall_ms": round(stall, 1),
                "idle_max_stall_ms": round(idle_stall, 1),
                "job_s": round(job_s, 2),
                "sparsity": round(session.sparsity(session.names[0]), 4),
            }
        )
    )
    window.close()


if __name__ == "__main__":
    main()
