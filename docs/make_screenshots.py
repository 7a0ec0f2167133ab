"""Make the README's screenshots of the real window (run under Xvfb).

    xvfb-run -a -s "-screen 0 1700x1080x24" .venv/bin/python docs/make_screenshots.py

Saves, in ``docs/``:

* ``main_window.png``: the window after opening the ResNet-18 demo, globally
  pruned to 60%, a layer selected;
* ``statistics.png``: its Statistics tab;
* ``pattern_lab.png``: the Pattern lab in the normal layout, docks open;
* ``pattern_lab_slide.png``: the lab's figure exported for a slide (2x PNG);
* ``accuracy.png``: the demo CNN pruned to 90%, evaluated, then fine-tuned
  (3 epochs, distillation), with its curves;
* ``speed.png``: ResNet-18 group-pruned by 50% and benchmarked (dense, masked,
  sparse kernels, a slim copy; 2:4 needs a GPU).
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
    from core.training import FinetuneConfig
    from gui.session.loaded import load_builtin_demo
    from gui.window.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    QCoreApplication.setOrganizationName("PruneScopeScreenshots")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    out = ROOT / "docs"

    def settle(seconds: float = 1.0) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or window.controller.busy:
            app.processEvents()
            time.sleep(0.01)

    def shot(name: str) -> None:
        settle(0.5)
        window.grab().save(str(out / name))

    # ResNet-18: the tree, the three views and the histogram of a big layer.
    window.open_demo("resnet18")
    settle()
    session = window.controller.session
    assert session is not None
    window.controller.apply(GlobalPrune(tuple(session.names), 0.6))
    settle()
    window.tree.select_param("layer2.0.conv1.weight")
    shot("main_window.png")
    window.tabs.setCurrentWidget(window.stats_panel)
    shot("statistics.png")

    # The Pattern lab as a teacher finds it, docks open; and its figure for a slide.
    window.tabs.setCurrentWidget(window.pattern_lab.parentWidget().parentWidget())
    window.pattern_lab.set_amount(0.25)
    shot("pattern_lab.png")
    window.pattern_lab.export(out / "pattern_lab_slide.png", scale=2.0)

    # Accuracy: the CNN pruned to 90%, evaluated, then fine-tuned with distillation.
    window.load_model(load_builtin_demo("cnn"))  # open_demo would ask about the pruning steps
    settle()
    session = window.controller.session
    assert session is not None
    window.controller.apply(GlobalPrune(tuple(session.names), 0.9))
    settle()
    panel = window.accuracy_panel
    window.tabs.setCurrentWidget(panel)
    panel.evaluate()
    settle()
    panel.form.set_config(FinetuneConfig(epochs=3, distill=True, schedule="cosine"))
    panel.finetune()
    settle()
    panel.evaluate()
    shot("accuracy.png")

    # Speed: ResNet-18 group-pruned by 50%, then every form timed (slim on a copy).
    window.load_model(load_builtin_demo("resnet18"))
    settle()
    speed = window.speed_panel
    window.tabs.setCurrentWidget(speed)
    speed.slim_box.amount_slider.setValue(50.0)
    speed.slim_box.group_prune()
    settle()
    speed.batch_edit.setText("1, 16")
    speed.min_time_spin.setValue(0.1)
    speed.run_benchmark()
    settle(2.0)
    speed.scroll.verticalScrollBar().setValue(420)
    shot("speed.png")

    window.close()
    print("wrote", *(p.name for p in sorted(out.glob("*.png"))))


if __name__ == "__main__":
    main()
