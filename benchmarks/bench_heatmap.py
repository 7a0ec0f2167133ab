"""How fast does a big weight matrix appear in a HeatmapView? Prints one JSON line per size.

For each n in SIZES, an n × n float32 matrix (torch.randn, seeded) is shown in a
1024 × 1024-pixel :class:`gui.heatmap.heatmap.HeatmapView` (offscreen Qt):

* ``first_ms``: ``set_matrix`` → first painted image (``processEvents`` + ``grab``);
* ``full_ms``: ``set_matrix`` → the full-information image painted (worker done,
  ``processEvents`` + ``grab``);
* ``naive_ms``: a plain ImageItem ``setImage`` of the whole matrix in the same
  kind of view + ``processEvents`` + ``grab`` (the baseline);
* ``limit_ms``: one ``torch.amax`` pass over the matrix (a read-speed yardstick).

All are medians of REPEATS runs after a warm-up. Goals: ``first_ms <= 20`` and
``full_ms <= max(20, 3 * limit_ms)``; ``goal_met`` says whether both hold.

Run: ``.venv/bin/python benchmarks/bench_heatmap.py [--sizes 512 4096] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyqtgraph as pg
import torch
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from core.viz import display
from gui.heatmap.heatmap import HeatmapView

SIZES = (512, 4096, 8192, 16384)
REPEATS = 5
VIEW_PIXELS = 1024
TIMEOUT_S = 30.0


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _paint(app: QApplication, widget: pg.GraphicsLayoutWidget) -> None:
    app.processEvents()
    widget.grab()


def _median(measure: Callable[[], float], repeats: int) -> float:
    measure()  # warm-up
    return statistics.median(measure() for _ in range(repeats))


def _view(app: QApplication) -> HeatmapView:
    view = HeatmapView("benchmark")
    view.resize(VIEW_PIXELS, VIEW_PIXELS)
    view.show()
    _paint(app, view)
    return view


def _wait_until_full(view: HeatmapView) -> None:
    """Idle in an event loop (as the app would) until the full image is on screen."""
    if view.is_full:
        return
    loop = QEventLoop()
    view.full_shown.connect(loop.quit)
    QTimer.singleShot(int(TIMEOUT_S * 1000), loop.quit)
    loop.exec()
    view.full_shown.disconnect(loop.quit)
    if not view.is_full:
        raise TimeoutError("the full reduction never arrived")


def time_heatmap(app: QApplication, view: HeatmapView, matrix: torch.Tensor) -> tuple[float, float]:
    """``(first_ms, full_ms)`` for one ``set_matrix`` call."""
    view.set_matrix(torch.zeros(2, 2))  # start from a different matrix each time
    _paint(app, view)
    start = time.perf_counter()
    view.set_matrix(matrix)
    _paint(app, view)
    first = _ms(start)
    if view.is_full:  # small matrices are shown in full at once
        return first, first
    _wait_until_full(view)
    _paint(app, view)
    return first, _ms(start)


def time_naive(app: QApplication, plot: pg.GraphicsLayoutWidget, matrix: torch.Tensor) -> float:
    """A plain ImageItem showing the whole matrix (levels given, no auto-levels)."""
    data = matrix.numpy()
    item = plot.getItem(0, 0).items[0]
    item.setImage(data[:2, :2], autoLevels=False, levels=(-4, 4))
    _paint(app, plot)
    start = time.perf_counter()
    item.setImage(data, autoLevels=False, levels=(-4, 4))
    _paint(app, plot)
    return _ms(start)


def _naive_view(app: QApplication) -> pg.GraphicsLayoutWidget:
    widget = pg.GraphicsLayoutWidget()
    widget.resize(VIEW_PIXELS, VIEW_PIXELS)
    plot = widget.addPlot(row=0, col=0)
    plot.invertY(True)
    plot.setAspectLocked(True)
    image = pg.ImageItem(axisOrder="row-major")
    image.setColorMap(pg.colormap.get("CET-D1A"))
    plot.addItem(image)
    widget.show()
    _paint(app, widget)
    return widget


def measure(app: QApplication, size: int, repeats: int) -> dict[str, float | int | bool]:
    """All figures for one ``size × size`` matrix."""
    generator = torch.Generator().manual_seed(size)
    matrix = torch.randn(size, size, generator=generator)
    view, naive = _view(app), _naive_view(app)
    runs = [time_heatmap(app, view, matrix) for _ in range(repeats + 1)][1:]
    first = statistics.median(r[0] for r in runs)
    full = statistics.median(r[1] for r in runs)
    naive_ms = _median(lambda: time_naive(app, naive, matrix), repeats)

    def amax_ms() -> float:
        start = time.perf_counter()
        torch.amax(matrix)
        return _ms(start)

    limit = _median(amax_ms, max(repeats, 5))
    view.close()
    naive.close()
    return {
        "size": size,
        "first_ms": round(first, 2),
        "full_ms": round(full, 2),
        "naive_ms": round(naive_ms, 2),
        "limit_ms": round(limit, 2),
        "full_over_limit": round(full / limit, 2),
        "goal_met": first <= 20 and full <= max(20.0, 3 * limit),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    display.warm_up()  # as the app does in the background at startup
    for size in args.sizes:
        print(json.dumps(measure(app, size, args.repeats)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
