"""Application entry point: command line, QApplication, main window.

Heavy imports (Qt, torch) happen inside :func:`main` so that ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

APP_NAME = "PruneScope"
#: Sub-commands that run headless in :mod:`core.cli` (``core.cli.COMMANDS``).
HEADLESS_COMMANDS = ("stats", "prune", "apply", "eval", "finetune", "bench", "slim", "costlab")
DEFAULT_SCREENSHOT_DELAY_MS = 300
#: Load the compiled heatmap kernels this long after the window is up (off the startup path).
KERNEL_WARM_UP_DELAY_MS = 500
#: The built-in demos, as ``core.demos.DEMO_NAMES`` (kept here so ``--help`` needs no torch;
#: a test checks that the two agree).
DEMO_NAMES = ("cnn", "mlp", "resnet18")
#: Arguments after this one are Qt's (``python main.py -- -platform offscreen``).
QT_SEPARATOR = "--"


def _parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The window's options, and the arguments after ``--`` (handed to Qt).

    An unknown option or a wrong ``--demo`` is an error: argparse prints one line of
    usage and one of explanation, and exits with code 2.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    qt_args: list[str] = []
    if QT_SEPARATOR in given:
        split = given.index(QT_SEPARATOR)
        given, qt_args = given[:split], given[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="prunescope",
        description="PruneScope: prune a PyTorch model and look at what changed.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Headless commands (no window): stats, prune and apply; run\n"
        "`python main.py COMMAND --help` for each. `python main.py open MODEL` is the same\n"
        "as `python main.py MODEL`.\n\n"
        "Qt's own options go after `--`, e.g. `python main.py -- -platform offscreen`,\n"
        "or in Qt's environment variables, e.g. `QT_QPA_PLATFORM=offscreen`.\n"
        "Any other unknown option is an error.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        help="the model to open: a file, a model folder, a saved .prunescope session, "
        "demo:NAME, or package.module:factory with --weights",
    )
    parser.add_argument(
        "--weights", metavar="FILE", help="the state_dict file a factory MODEL is filled with"
    )
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument of a factory MODEL (repeat; values read as JSON)",
    )
    parser.add_argument(
        "--trust",
        action="store_true",
        help="open a whole pickled model without asking (unpickling runs code from the file)",
    )
    parser.add_argument(
        "--demo",
        default=DEMO_NAMES[0],
        choices=DEMO_NAMES,
        help="built-in demo to open when no model file is given (%(choices)s; default %(default)s)",
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
    args = parser.parse_args(given)
    if args.quit_after is not None and args.quit_after < 0:
        parser.error("--quit-after must be >= 0")
    try:
        args.arg = _factory_args(args.arg)
    except ValueError as exc:
        parser.error(str(exc))
    return args, qt_args


def _factory_args(pairs: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """``KEY=VALUE`` pairs, values read as JSON (plain text where they are not JSON)."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg takes KEY=VALUE, got {pair!r}")
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return tuple(sorted(parsed.items()))


def warm_up() -> None:
    """Load the compiled kernels, then take what exists so far out of the collector's way.

    With the kernels loaded, heatmaps of big layers show at once and the first
    undo does not wait for a compiler. Then :func:`gc.freeze`: the ~330,000
    objects that the imports and the window made live as long as the
    application, yet every full collection Python starts on its own walks them
    all, holding the GIL, which stalls the GUI thread (176-458 ms measured here;
    ``benchmarks/bench_interactions.py``, ``full_collection``). Frozen, they are
    skipped. What is frozen is never collected as a cycle, so what may be
    replaced later (a model and its session) must free by reference counting;
    ``tests/gui/test_memory.py`` checks that it does.
    """
    from core.pruning import scatter
    from core.viz import display

    display.warm_up()
    scatter.warm_up()
    gc.freeze()


def _warm_up_in_background() -> None:
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application (or a headless command); returns the process exit code.

    ``stats``, ``prune`` and ``apply`` go to :mod:`core.cli` without importing Qt,
    so the installed ``prunescope`` script works like ``main.py``.
    """
    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0] in HEADLESS_COMMANDS:
        from core.cli import main as run_headless

        return run_headless(given, prog="prunescope")
    if given and given[0] == "open":
        given = given[1:]
    args, qt_args = _parse_args(given)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from gui.session.loaded import OpenRequest
    from gui.window.main_window import MainWindow

    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])

    window = MainWindow()
    window.show()
    if args.model is None:
        window.open_demo(args.demo)
    else:  # if it cannot be opened, the window says why and shows the demo instead
        window.files.open_request(
            OpenRequest(args.model, args.weights, args.arg, args.trust), interactive=True
        )
    if args.print_ready:  # for benchmarks/bench_startup.py: the first frame is painted
        QTimer.singleShot(0, lambda: print("ready", flush=True))
    QTimer.singleShot(KERNEL_WARM_UP_DELAY_MS, window, _warm_up_in_background)

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
