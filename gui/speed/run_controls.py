"""Run / Cancel, a progress bar and a status line: how a measurement is started and followed.

The Speed tab's "Benchmark" box (:mod:`gui.speed.benchmark_settings`) and the
Cost lab (:mod:`gui.speed.cost_lab`) both end their settings with the same
controls: a default Run button, Cancel, a thin progress bar taking the rest of
the row, and a word-wrapped status line under them. :class:`RunControls` makes
these widgets, lays them out and shows a job's progress, outcome and messages
in them. Above them, both ask how long to repeat each measurement
(:func:`time_per_measurement_spin`).

:class:`RunControls` is not a widget itself: :meth:`RunControls.add_to` puts the
widgets straight into the box's layout, so their parent, the layout's margins
and spacing, and the tab order are those of the box. The boxes keep the widgets
under their own names too (``run_button``, ``cancel_button``, ``progress``,
``status``).
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import (
    QBoxLayout,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from gui.widgets.forms import INFO_STYLE

PROGRESS_STEPS = 1000
"""The progress bar's maximum: a fraction of 1 is shown as this many steps."""


class RunControls:
    """Run / Cancel, a progress bar and a status line (see module docstring).

    Args:
        run_text: the Run button's text.
        run_tip: the Run button's tooltip.
        cancel_tip: the Cancel button's tooltip.
        status_name: the status line's object name ("" for none).
    """

    def __init__(self, run_text: str, run_tip: str, cancel_tip: str, status_name: str = "") -> None:
        self.run_button = QPushButton(run_text)
        self.run_button.setDefault(True)
        self.run_button.setToolTip(run_tip)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(cancel_tip)
        self.progress = QProgressBar()
        self.progress.setRange(0, PROGRESS_STEPS)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.status = QLabel()
        self.status.setWordWrap(True)
        if status_name:
            self.status.setObjectName(status_name)

    def add_to(self, layout: QBoxLayout) -> None:
        """Append the controls to ``layout``: Run, Cancel and the progress bar (which takes
        the room left) in one row, the status line under it."""
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    def set_running(
        self,
        active: bool,
        *,
        can_run: bool = True,
        starters: Iterable[QWidget] = (),
        inputs: Iterable[QWidget] = (),
    ) -> None:
        """Enable or disable the controls for a measurement that is ``active`` or not.

        Run and the other ``starters`` (buttons that start a measurement too) are
        enabled when ``can_run`` and nothing is active; Cancel while something is;
        the ``inputs`` (the settings) while nothing is. They are set in that order.
        """
        for button in (self.run_button, *starters):
            button.setEnabled(can_run and not active)
        self.cancel_button.setEnabled(active)
        for widget in inputs:
            widget.setEnabled(not active)

    def show_progress(self, fraction: float) -> None:
        """Fill the progress bar to ``fraction`` (clamped to 0..1)."""
        self.progress.setValue(round(PROGRESS_STEPS * min(max(fraction, 0.0), 1.0)))

    def set_status(self, text: str, style: str) -> None:
        """Show ``text`` in the status line, styled by ``style`` (a style sheet)."""
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def show_started(self) -> None:
        """A measurement started: an empty progress bar and "Measuring…"."""
        self.show_progress(0.0)
        self.set_status("Measuring…", INFO_STYLE)

    def show_step(self, fraction: float, message: str) -> None:
        """A measurement's progress: ``fraction`` done (0..1), ``message`` in the status line."""
        self.show_progress(fraction)
        self.set_status(message, INFO_STYLE)

    def show_ended(self, outcome: str) -> None:
        """A measurement ended: a full progress bar when ``outcome`` is "done", else empty."""
        self.show_progress(1.0 if outcome == "done" else 0.0)


def time_per_measurement_spin(maximum: float, value: float) -> QDoubleSpinBox:
    """A "Time per measurement" spin box: seconds from 0.01 to ``maximum`` in steps of 0.05,
    with two decimals, showing ``value``."""
    spin = QDoubleSpinBox()
    spin.setRange(0.01, maximum)
    spin.setDecimals(2)
    spin.setSingleStep(0.05)
    spin.setSuffix(" s")
    spin.setValue(value)
    return spin
