"""The window lets go of a replaced model at once.

A model can be gigabytes. Once another model is open, nothing in the window
may keep the old one alive, and its memory must come back by reference
counting alone, not at Python's next full collection (which may be far off,
and which costs the GUI thread hundreds of milliseconds on a large heap).
"""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import torch

from gui.heatmap.layer_views import LayerViews
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

    freed_in: list[str] = []
    weakref.finalize(old(), lambda: freed_in.append(threading.current_thread().name))
    gc.collect()
    gc.disable()
    try:
        controller.load(load_builtin_demo("mlp"))
        wait_idle(qtbot, window)
        qtbot.waitUntil(lambda: old() is None, timeout=5_000)
    finally:
        gc.enable()
    # Dropped by the disposal thread, not the GUI thread (a big model takes a while).
    assert freed_in and freed_in != [threading.main_thread().name]


def test_a_layer_the_views_replace_is_freed_off_the_gui_thread(qtbot):
    """Freeing a big layer costs ~20 ms of whichever thread drops it last: not the GUI's."""
    views = LayerViews()
    qtbot.addWidget(views)
    views.resize(900, 400)
    views.show()
    freed_in: list[str] = []
    # Tensors over numpy arrays: an array dies when the last tensor storage using it does.
    arrays = [np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)]
    arrays += [np.abs(arrays[0]) > 0.5, arrays[0] * (np.abs(arrays[0]) > 0.5)]
    for array in arrays:
        weakref.finalize(array, lambda: freed_in.append(threading.current_thread().name))
    views.show_layer(*(torch.from_numpy(array) for array in arrays))
    qtbot.waitUntil(lambda: not views.pending, timeout=20_000)
    del arrays, array

    views.show_layer(*(torch.from_numpy(array) for array in np.zeros((3, 512, 512), np.float32)))
    qtbot.waitUntil(lambda: len(freed_in) == 3, timeout=5_000)
    assert threading.main_thread().name not in freed_in, freed_in
