"""Settings fields remembered in :class:`QSettings`, one group per box.

The Speed tab's "Benchmark" box and the Cost lab remember what was typed in
their settings (line edits, spin boxes, a combo box) across sessions.
:class:`SavedFields` ties each field to a key of one :class:`QSettings` group:
it saves them all, restores them, and tells when one changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeAlias

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

Field: TypeAlias = QLineEdit | QSpinBox | QDoubleSpinBox | QComboBox
"""A widget :class:`SavedFields` can remember: its text, number or chosen item."""


class SavedFields:
    """Settings fields remembered under keys of one :class:`QSettings` group.

    Args:
        settings: where the values are kept.
        group: the settings group (e.g. ``"speed"``).
        fields: each key's widget, in the order they are saved and restored.
    """

    def __init__(self, settings: QSettings, group: str, fields: Mapping[str, Field]) -> None:
        self.settings = settings
        self.group = group
        self.fields = dict(fields)

    def save(self, **extra: object) -> None:
        """Remember every field's value as it is now, then each of ``extra`` under its key."""
        s = self.settings
        s.beginGroup(self.group)
        for key, field in self.fields.items():
            s.setValue(key, _value(field))
        for key, value in extra.items():
            s.setValue(key, value)
        s.endGroup()

    def restore(self) -> None:
        """Show the remembered values; a field with none, or one that cannot be read (not a
        number, not one of a combo box's items), keeps what it shows."""
        s = self.settings
        s.beginGroup(self.group)
        try:
            for key, field in self.fields.items():
                value = s.value(key)
                if value is not None:
                    _show(field, str(value))
        finally:
            s.endGroup()

    def value(self, key: str, default: object = None) -> object:
        """The value remembered under ``key`` of the group (``default`` when there is none)."""
        return self.settings.value(f"{self.group}/{key}", default)

    def on_change(self, slot: Callable[[], None]) -> None:
        """Call ``slot`` whenever a field's value changes (typed, stepped or chosen)."""
        for field in self.fields.values():
            if isinstance(field, QLineEdit):
                field.textChanged.connect(lambda _text: slot())
            elif isinstance(field, QComboBox):
                field.currentTextChanged.connect(lambda _text: slot())
            else:
                field.valueChanged.connect(lambda _value: slot())


def _value(field: Field) -> str | int | float:
    if isinstance(field, QLineEdit):
        return field.text()
    if isinstance(field, QComboBox):
        return field.currentText()
    return field.value()


def _show(field: Field, text: str) -> None:
    try:
        if isinstance(field, QLineEdit):
            field.setText(text)
        elif isinstance(field, QComboBox):
            if field.findText(text) >= 0:
                field.setCurrentText(text)
        elif isinstance(field, QDoubleSpinBox):
            field.setValue(float(text))
        else:
            field.setValue(int(text))
    except ValueError:
        pass  # not a number (edited by hand?): keep the field's own value
