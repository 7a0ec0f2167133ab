"""File > Export view: the main window's current tab as a PNG or SVG figure for slides.

Only a tab's figure is drawn, never its controls: the Layer tab's title,
heatmaps and histogram, the statistics panel, or the Pattern lab laid out for
a slide (:meth:`~gui.pattern_lab.pattern_lab.PatternLab.export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from gui.widgets.export import DEFAULT_FILTER, FILE_FILTER, Exportable, export_widget, filter_scale

if TYPE_CHECKING:
    from gui.window.main_window import MainWindow

LAYER_TAB, STATISTICS_TAB, PATTERN_LAB_TAB = 0, 1, 2  # the window's first tabs, in order


def export_target(window: MainWindow) -> Exportable:
    """What File > Export view draws: the current tab's figure, without its controls."""
    index = window.tabs.currentIndex()
    if index == LAYER_TAB:  # the layer's title, three heatmaps and the histogram
        return window.layer_tab.figure_items()
    if index == PATTERN_LAB_TAB:
        return window.pattern_lab.figure_items()
    return {STATISTICS_TAB: window.stats_panel}.get(index, window.tabs.currentWidget())


def ask_export_path(window: MainWindow) -> tuple[str, float] | None:
    """Ask for a PNG/SVG file name: the path, and the PNG scale its filter names (None: none)."""
    start = Path(str(window.settings.value("last_dir", str(Path.home()))))
    name = window.tabs.tabText(window.tabs.currentIndex()).lower().replace(" ", "_")
    path, chosen = QFileDialog.getSaveFileName(
        window, "Export view", str(start / f"{name}.png"), FILE_FILTER, DEFAULT_FILTER
    )
    return (path, filter_scale(chosen)) if path else None


def export_view(window: MainWindow, path: str, scale: float = 1.0) -> bool:
    """Export the current tab to ``path`` (.png or .svg; PNG at ``scale`` x); False: failed,
    and the window showed the error."""
    try:
        if window.tabs.currentIndex() == PATTERN_LAB_TAB:  # laid out for a slide
            written = window.pattern_lab.export(path, scale=scale)
        else:
            written = export_widget(window.export_target(), path, scale=scale)
    except Exception as exc:
        window.show_error(f"Could not export {Path(path).name}: {exc}", "")
        return False
    window.statusBar().showMessage(f"Exported {written.name}", 5000)
    return True
