"""Application entry point: command line, QApplication, main window.

Heavy imports (Qt, torch) happen inside :func:`main` so that ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

APP_NAME = "PruneScope"
DEFAULT_SCREENSHOT_DELAY_MS = 300


def _parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="prunescope",
        description="PruneScope: prune a PyTorch model and look at what changed.",
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
    # Unknown options (e.g. Qt's own -platform, -style) are handed to QApplication.
    args, rest = parser.parse_known_args(argv)
    if args.quit_after is not None and args.quit_after < 0:
        parser.error("--quit-after must be >= 0")
    return args, rest


def _fallback_model() -> nn.Module:
    """A tiny CNN built in code, used when no demo model is available."""
    import torch
    from torch import nn

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, 10),
        )


def _load_default_model() -> tuple[nn.Module, str]:
    """The model the window opens on: the shipped demo, else a tiny built-in CNN.

    Uses ``core.demos.load_demo`` (or ``load_demo_model``), called with no
    arguments. Its result may be a module, an object with a ``model`` attribute
    (such as ``core.demos.DemoModel``) or a tuple whose first module element is
    the model. Only the *absence* of the demo code leads to the fallback: errors
    raised while loading a present demo propagate.
    """
    from torch import nn

    try:
        import core.demos as demos
    except ModuleNotFoundError as exc:
        if exc.name not in ("core", "core.demos"):
            raise
        return _fallback_model(), "built-in tiny CNN"

    loader = getattr(demos, "load_demo", None) or getattr(demos, "load_demo_model", None)
    if loader is None:
        return _fallback_model(), "built-in tiny CNN"
    result = loader()
    label = f"demo {getattr(result, 'name', '')}".strip()
    if isinstance(result, nn.Module):
        return result, label
    if isinstance(getattr(result, "model", None), nn.Module):
        return result.model, label
    for item in result if isinstance(result, tuple) else ():
        if isinstance(item, nn.Module):
            return item, label
    raise TypeError(f"{loader.__qualname__}() returned no torch.nn.Module: {type(result)!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns the process exit code."""
    args, qt_args = _parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    QApplication.setApplicationName(APP_NAME)
    QApplication.setOrganizationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME, *qt_args])

    model, model_name = _load_default_model()
    window = MainWindow(model, model_name=model_name)
    window.show()

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
