"""Fixtures of the window tests: settings in a temporary folder, a window on the demo CNN."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QSettings
from pytestqt.exceptions import TimeoutError as QtTimeoutError

from gui.window.main_window import MainWindow
from tests.gui.window_helpers import close_error_dialogs, make_window, wait_idle


@pytest.fixture
def settings_dir(tmp_path: Path) -> Iterator[Path]:
    """Settings go to a temporary folder under test-only names."""
    folder = tmp_path / "settings"
    folder.mkdir()
    old = (QCoreApplication.organizationName(), QCoreApplication.applicationName())
    QCoreApplication.setOrganizationName("PruneScopeTests")
    QCoreApplication.setApplicationName("test_main_window")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    yield folder
    QCoreApplication.setOrganizationName(old[0])
    QCoreApplication.setApplicationName(old[1])


@pytest.fixture
def window(qtbot, settings_dir) -> Iterator[MainWindow]:
    win = make_window(qtbot)
    assert str(settings_dir) in win.settings.fileName()
    win.open_demo("cnn")
    wait_idle(qtbot, win)
    yield win
    close_error_dialogs()
    if not shiboken6.isValid(win):  # pytest-qt already closed and deleted it
        return
    if win.controller.busy:
        win.controller.cancel()
    # A test already failed on a stuck job: do not hide that failure here.
    with contextlib.suppress(QtTimeoutError):
        qtbot.waitUntil(lambda: not win.controller.busy, timeout=1_000)
    if not shiboken6.isValid(win):
        return
    win.close()
    if win.controller.session is not None:
        win.controller.session.close()
