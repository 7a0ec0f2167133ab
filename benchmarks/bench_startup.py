"""Startup time: from starting ``python main.py`` to the window shown on the demo.

Launches the app several times (the first run warms the OS file cache and is
discarded), each time waiting for the line "ready" that main.py prints once
the window is shown with the demo model loaded, then quits it. Prints one
JSON line: startup_s (median of the warm launches), the baseline (a bare
``python -c "import torch, PySide6.QtWidgets"``) and their ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5


def _time_until_ready(command: list[str], marker: str | None) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    if marker is None:
        process.wait(timeout=120)
        return time.perf_counter() - start
    for line in process.stdout:
        if line.strip() == marker:
            elapsed = time.perf_counter() - start
            break
    else:
        raise RuntimeError(f"{command} ended without printing {marker!r}")
    process.terminate()
    process.wait(timeout=30)
    return elapsed


def main() -> None:
    app = [sys.executable, "main.py", "--print-ready", "--quit-after", "3000"]
    bare = [sys.executable, "-c", "import torch, PySide6.QtWidgets, pyqtgraph"]
    ours = [_time_until_ready(app, "ready") for _ in range(RUNS + 1)][1:]
    baseline = [_time_until_ready(bare, None) for _ in range(RUNS + 1)][1:]
    startup, imports = statistics.median(ours), statistics.median(baseline)
    print(
        json.dumps(
            {
                "startup_s": round(startup, 3),
                "imports_only_s": round(imports, 3),
                "ratio": round(startup / imports, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
