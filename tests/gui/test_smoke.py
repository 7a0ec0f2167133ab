"""Smoke tests: the application starts, shows the demo, screenshots itself and quits.

Settings never touch the user's: in process they go to a temporary folder,
and the subprocess gets its own ``XDG_CONFIG_HOME``.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings

from gui.app import main, warm_up

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def isolated_app(qapp, tmp_path: Path) -> Iterator[Path]:
    """Run ``main()`` in this process without leaking into later tests.

    ``main()`` renames the application: its settings go to ``tmp_path``.
    It also closes its window inside ``app.exec()``; if that quit the
    application (quit on last window closed), superqt workers started later in
    this process would never deliver their signals and every later window
    would stay busy for ever. The real application quits there anyway.
    """
    folder = tmp_path / "settings"
    folder.mkdir()
    old = (QCoreApplication.organizationName(), QCoreApplication.applicationName())
    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    yield folder
    qapp.setQuitOnLastWindowClosed(quit_on_close)
    QCoreApplication.setOrganizationName(old[0])
    QCoreApplication.setApplicationName(old[1])


def test_screenshot_option_writes_png(isolated_app, tmp_path):
    out = tmp_path / "shots" / "window.png"
    assert main(["--screenshot", str(out), "--quit-after", "300"]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.stat().st_size > 10_000  # a real window, not an empty image
    # closing the window saved its settings, and only in the test folder
    assert any(isolated_app.rglob("*")), "the window did not save its settings"


@pytest.mark.slow
def test_main_py_starts_and_quits(tmp_path):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    proc = subprocess.run(
        [sys.executable, "main.py", "--quit-after", "1500"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_warm_up_takes_the_startup_heap_out_of_the_collectors_way():
    """After the warm-up, a full collection does not walk what startup made."""
    gc.unfreeze()
    try:
        warm_up()
        assert gc.get_freeze_count() > 10_000  # torch, Qt and the kernels' modules at least
    finally:
        gc.unfreeze()
