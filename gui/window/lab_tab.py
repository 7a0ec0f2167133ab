"""The Pattern lab tab, built when first needed, and presentation mode.

Building the :class:`~gui.pattern_lab.pattern_lab.PatternLab` takes about
0.3 s, so the window opens without it and :class:`PatternLabTab` builds it the
first time it is shown or asked for. Presentation mode gives the lab the whole
screen: the window's docks are hidden and it goes full screen; leaving it
restores the docks and the window's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSignalBlocker, Qt
from PySide6.QtWidgets import QScrollArea

from gui.pattern_lab.pattern_lab import PatternLab

if TYPE_CHECKING:
    from gui.window.main_window import MainWindow


class PatternLabTab(QScrollArea):
    """The Pattern lab tab's page: a scroll area around the lab (see module docstring)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self._window = window
        self._lab: PatternLab | None = None
        # The window's dock layout and state before presentation mode (None: not presenting).
        self._before_presentation: tuple[QByteArray, Qt.WindowState] | None = None

    @property
    def lab(self) -> PatternLab:
        """The lab, built the first time it is needed."""
        if self._lab is None:
            lab = PatternLab(self._window)
            lab.presentation_changed.connect(self._on_presentation)
            self.setWidget(lab)
            self._lab = lab
        return self._lab

    def leave_presentation(self) -> None:
        """End presentation mode, if the lab was built (before the window saves its layout)."""
        if self._lab is not None:
            self._lab.set_presentation(False)

    def _on_presentation(self, on: bool) -> None:
        window = self._window
        with QSignalBlocker(window.presentation_action):
            window.presentation_action.setChecked(on)
        if on and self._before_presentation is None:
            self._before_presentation = (window.saveState(), window.windowState())
            for dock in (window.tree_dock, window.history_dock, window.controls_dock):
                dock.hide()
            window.tabs.setCurrentWidget(self)
            window.showFullScreen()
        elif not on and self._before_presentation is not None:
            state, window_state = self._before_presentation
            self._before_presentation = None
            window.restoreState(state)
            window.setWindowState(window_state)
