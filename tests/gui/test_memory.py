"""The window lets go of a replaced model at once.

A model can be gigabytes. Once another model is open, nothing in the window
may keep the old one alive, and its memory must come back by reference
counting alone, not at Python's next full collection (which may be far off,
and which costs the GUI thread hundreds of milliseconds on a large heap).
"""

from __future__ import annotations

import gc
import weakref

from gui.session.loaded import load_builtin_demo
from tests.gui.window_helpers import select, wait_idle


def test_a_replaced_model_is_freed_without_the_cycle_collector(qtbot, window):
    controller = window.controller
    old = weakref.ref(controller.session.model)
    # Work that leaves requests, history, figures and a loaded dataset behind.
    select(qtbot, window, window.tree.first_match() or controller.session.names[0])
    window.layer_controls.set_method("l1_unstructured")
    window.layer_controls.set_amount_percent(30.0)
    window.layer_controls.apply()
    wait_idle(qtbot, window)
    assert window.accuracy_panel.load_data()
    qtbot.waitUntil(lambda: window.accuracy_panel.data is not None, timeout=20_000)
    wait_idle(qtbot, window)

    gc.collect()
    gc.disable()
    try:
        controller.load(load_builtin_demo("mlp"))
        wait_idle(qtbot, window)
        assert old() is None
    finally:
        gc.enable()
