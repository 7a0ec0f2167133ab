"""Helpers for tests that drive the main window: waiting, dialogs, applying, opening one."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.exceptions import TimeoutError as QtTimeoutError

from gui.window.main_window import MainWindow

CONV = "block1.conv1.weight"  # (16, 16, 3, 3): 2,304 weights
FC = "classifier.weight"  # (10, 32): 320 weights
TIMEOUT = 20_000
STUCK_TIMEOUT = 3_000  # where a bug would leave the window busy for ever


def wait_idle(qtbot, window: MainWindow, timeout: int = TIMEOUT) -> None:
    """Until no job runs or is about to start and every heatmap shows its full image."""

    def idle() -> bool:
        return (
            not window.controller.busy
            and not window.layer_views.pending
            and not window.layer_controls.preview_scheduled
            and not window.global_panel.plan_scheduled
        )

    try:
        qtbot.waitUntil(idle, timeout=timeout)
    except QtTimeoutError:
        views = window.layer_views.views
        raise AssertionError(
            f"not idle: busy={window.controller.busy} ({window.controller.running!r}), "
            f"pending={[v.pending for v in views]}, "
            f"previews={window.layer_controls.preview_scheduled}, "
            f"plans={window.global_panel.plan_scheduled}"
        ) from None


def on_details(window: MainWindow, handler: Callable[[object], None]) -> None:
    """Call ``handler`` with every ``Progress.detail`` of every request the window runs."""
    window.controller.request_started.connect(lambda request: request.detail.connect(handler))


def make_window(qtbot) -> MainWindow:
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def select(qtbot, window: MainWindow, name: str) -> None:
    window.tree.select_param(name)
    wait_idle(qtbot, window)
    assert window.tree.selected_params() == (name,)
    assert window.layer_controls.targets == (name,)
    assert name in window.layer_title.text()


def error_dialogs() -> list[QMessageBox]:
    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, QMessageBox) and w.objectName() == "errorDialog" and w.isVisible()
    ]


def close_error_dialogs() -> None:
    for box in error_dialogs():
        box.done(0)


def apply_l1(qtbot, window: MainWindow, name: str, percent: float) -> None:
    """Select ``name``, set L1 unstructured ``percent`` (mode set) and click Apply."""
    select(qtbot, window, name)
    controls = window.layer_controls
    controls.set_method("l1_unstructured")
    controls.set_amount_percent(percent)
    controls.set_mode("set")
    wait_idle(qtbot, window)
    assert controls.apply_button.isEnabled()
    qtbot.mouseClick(controls.apply_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
