"""Shared form helpers and label styles of the side panels (pruning, speed, cost lab).

Every form of the panels uses :func:`make_form` and :func:`add_row`, so label
columns line up across groups; the ``*_STYLE`` strings colour status labels.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QSpinBox, QWidget
from superqt import QLabeledDoubleSlider

ERROR_STYLE = "color: #c0392b;"
PREVIEW_STYLE = "color: #1f5fa8; font-style: italic;"
WARNING_STYLE = "color: #a04000; font-weight: 600;"
INFO_STYLE = "color: #5f6368;"  # the muted ink: readable (contrast > 4.5:1), not greyed out
NOTE_STYLE = "color: #6b6b6b; font-size: 9pt;"


def make_form() -> QFormLayout:
    """A form layout with the spacing every form of the panel shares."""
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
    form.setHorizontalSpacing(10)
    form.setVerticalSpacing(6)
    form.setContentsMargins(8, 6, 8, 8)
    return form


def form_label(text: str, tip: str) -> QLabel:
    """A form row label of the width every form uses, so columns line up across groups."""
    label = QLabel(text)
    label.setToolTip(tip)
    label.setMinimumWidth(label.fontMetrics().horizontalAdvance("M" * 6))
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return label


def add_row(form: QFormLayout, text: str, field: QWidget, tip: str) -> None:
    """Add ``field`` under label ``text``, with ``tip`` on both."""
    field.setToolTip(tip)
    form.addRow(form_label(text, tip), field)


def note_label(text: str = "") -> QLabel:
    """A small grey, word-wrapped explanation line."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


def percent_slider(tip: str) -> QLabeledDoubleSlider:
    """A 0..100 slider with one decimal and an editable value box."""
    slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    slider.setRange(0.0, 100.0)
    slider.setDecimals(1)
    slider.setSingleStep(0.1)
    slider.setPageStep(5.0)
    slider.setToolTip(tip)
    return slider


def int_spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    """An integer spin box with range and tooltip."""
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setAccelerated(True)
    return spin
