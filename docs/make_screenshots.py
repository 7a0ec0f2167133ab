"""Make the README's screenshots of the real window (run under Xvfb).

    xvfb-run -a -s "-screen 0 1700x1080x24" .venv/bin/python docs/make_screenshots.py

Opens the demo CNN, prunes it globally to 60% and selects a layer, then saves
``docs/main_window.png``, ``docs/statistics.png`` and ``docs/pattern_lab.png``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtWidgets import QApplication

    from core.pruning.operations import GlobalPrune
    from gui.window.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    QCoreApplication.setOrganizationName("PruneScopeScreenshots")
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    window = MainWindow()
    window.show()
    window.open_demo("cnn")

    def settle(seconds: float = 1.0) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or window.controller.busy:
            app.processEvents()
            time.sleep(0.01)

    settle()
    session = window.controller.session
    assert session is not None
    window.controller.apply(GlobalPrune(tuple(session.names), 0.6))
    settle()
    window.tree.select_param("block1.conv1.weight")
    settle()
    out = ROOT / "docs"
    window.grab().save(str(out / "main_window.png"))
    window.tabs.setCurrentIndex(1)
    settle(0.5)
    window.grab().save(str(out / "statistics.png"))
    window.tabs.setCurrentIndex(2)
    window.pattern_lab.set_amount(0.25)
    for dock in (window.tree_dock, window.history_dock, window.controls_dock):
        dock.hide()  # the lab wants the width, as a user would give it (View menu)
    settle(0.5)
    window.grab().save(str(out / "pattern_lab.png"))
    window.close()
    print("wrote", *(p.name for p in sorted(out.glob("*.png"))))


if __name__ == "__main__":
    main()
