"""Application entry point: command line, QApplication, main window.

Heavy imports (Qt, torch) happen inside :func:`main` so that ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

APP_NAME = "PruneScope"
DEFAULT_SCREENSHOT_DELAY_MS = 300
#: Load the compiled heatmap kernels this long after the window is up (off the startup path).
KERNEL_WARM_UP_DELAY_MS = 500


def _parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="prunescope",
        description="PruneScope: prune a PyTorch model and look at what changed.",
        epilog="Headless commands (no window): stats, prune and apply; run "
        "`python main.py COMMAND --help` for each. `python main.py open MODEL` is the same "
        "as `python main.py MODEL`.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        help="a model saved with torch.save(model) to open (asks first: unpickling runs code)",
    )
    parser.add_argument(
        "--demo",
        default="cnn",
        help="built-in demo to open when no model file is given (cnn, mlp, resnet18)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PATH",
        type=Path,
        help="save a PNG of the main window to PATH, then quit "
        f"(after --quit-after MS, default {DEFAULT_SCREENSHOT_DELAY_MS})",
    )
    parser.add_argument(
        "--quit-after",
        metavar="MS",
        type=int,
        help="quit after MS milliseconds of running the event loop",
    )
    parser.add_argument("--print-ready", action="store_true", help=argparse.SUPPRESS)
    # Unknown options (e.g. Qt's own -platform, -style) are handed to QApplication.
    args, rest = parser.parse_known_args(argv)
    if args.quit_after is not None and args.quit_after < 0:
        parser.error("--quit-after must be >= 0")
    return args, rest


def _warm_up_kernels() -> None:
    """Load the compiled kernels in the background: heatmaps of big layers show at once,
    and the first undo does not wait for a compiler."""
    from core.pruning import scatter
    from core.viz import display

    def warm_up() -> None:
        display.warm_up()
        scatter.warm_up()

    threading.Thread(target=warm_up, name="kernel-warm-up", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the process exit code."""
    args, qt_args = _parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])

    window = MainWindow()
    window.show()
    if args.model is None or not window.open_model_file(str(args.model)):
        window.open_demo(args.demo)
    if args.print_ready:  # for benchmarks/bench_startup.py: the first frame is painted
        QTimer.singleShot(0, lambda: print("ready", flush=True))
    QTimer.singleShot(KERNEL_WARM_UP_DELAY_MS, _warm_up_kernels)

    quit_after = args.quit_after
    if args.screenshot is not None and quit_after is None:
        quit_after = DEFAULT_SCREENSHOT_DELAY_MS

    if quit_after is not None:

        def finish() -> None:
            code = 0
            if args.screenshot is not None:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                if not window.grab().save(str(args.screenshot), "PNG"):
                    print(f"prunescope: could not write {args.screenshot}", file=sys.stderr)
                    code = 1
            window.close()
            app.exit(code)

        QTimer.singleShot(quit_after, finish)

    return app.exec()
