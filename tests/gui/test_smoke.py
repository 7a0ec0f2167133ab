"""Smoke tests: the main window lists parameters, and the app starts and exits."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from torch import nn

from gui.app import _load_default_model, main
from gui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]


def _small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, bias=False))


def test_main_window_lists_one_row_per_parameter(qtbot):
    model = _small_model()
    window = MainWindow(model, model_name="small")
    qtbot.addWidget(window)

    table = window.parameter_model
    params = list(model.named_parameters())
    assert window.windowTitle() == "PruneScope"
    assert table.rowCount() == len(params) == 3
    for row, (name, param) in enumerate(params):
        assert table.item(row, 0).text() == name
        assert table.item(row, 1).text() == " × ".join(map(str, param.shape))
        assert table.item(row, 2).text() == f"{param.numel():,}"
    assert window.parameter_tree.model() is table
    assert "3 parameter tensors, 21 weights" in window.statusBar().currentMessage()


def test_set_model_replaces_rows(qtbot):
    window = MainWindow(_small_model())
    qtbot.addWidget(window)
    window.set_model(nn.Linear(2, 2))
    assert window.parameter_model.rowCount() == 2
    assert window.parameter_model.item(0, 0).text() == "weight"


def _fake_demos(monkeypatch, module):
    import core

    monkeypatch.setitem(sys.modules, "core.demos", module)
    if module is None:
        monkeypatch.delattr(core, "demos", raising=False)
    else:
        monkeypatch.setattr(core, "demos", module, raising=False)


def test_default_model_falls_back_without_demos(monkeypatch):
    _fake_demos(monkeypatch, None)
    model, label = _load_default_model()
    assert label == "built-in tiny CNN"
    assert isinstance(model, nn.Sequential)


@pytest.mark.parametrize("shape", ["module", "record", "tuple"])
def test_default_model_accepts_demo_result_shapes(monkeypatch, shape):
    demo_model = nn.Linear(3, 1)
    record = types.SimpleNamespace(name="cnn", model=demo_model)
    result = {"module": demo_model, "record": record, "tuple": ("x", demo_model)}[shape]
    _fake_demos(monkeypatch, types.SimpleNamespace(load_demo=lambda: result))
    model, label = _load_default_model()
    assert model is demo_model
    assert label.startswith("demo")


def test_default_model_has_parameters():
    model, label = _load_default_model()
    assert isinstance(model, nn.Module)
    assert label
    assert sum(p.numel() for p in model.parameters()) > 0


def test_screenshot_option_writes_png(qapp, tmp_path):
    out = tmp_path / "shots" / "window.png"
    assert main(["--screenshot", str(out), "--quit-after", "100"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_main_py_starts_and_quits():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, "main.py", "--quit-after", "500"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
