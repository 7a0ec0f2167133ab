"""Speed advice in plain words: boxes above the benchmark, warnings in amber.

:class:`AdviceView` shows :class:`core.speed.advice.Advice` items (a title, a
sentence or two, the layers concerned) as word-wrapped boxes: ``warning``
advice (the pattern will not speed anything up) stands out, ``info`` advice
reads quietly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from core.speed.advice import Advice

WARNING_STYLE = (
    "color: #6b4200; background: #fff4d6; border: 1px solid #f0c36d;"
    "border-radius: 3px; padding: 5px 7px;"
)
INFO_STYLE = (
    "color: #1f3a5f; background: #edf4fc; border: 1px solid #bcd5ef;"
    "border-radius: 3px; padding: 5px 7px;"
)
LAYERS_SHOWN = 6
"""Layer names listed in one box before "+N more"."""


def advice_html(advice: Advice) -> str:
    """One advice item as rich text: bold title, text, the layers concerned."""
    mark = "⚠ " if advice.level == "warning" else ""
    parts = [f"<b>{mark}{html.escape(advice.title)}</b>", html.escape(advice.text)]
    if advice.layers:
        shown = ", ".join(html.escape(n) for n in advice.layers[:LAYERS_SHOWN])
        more = len(advice.layers) - LAYERS_SHOWN
        extra = f" (+{more} more)" if more > 0 else ""
        parts.append(f"<span style='font-size:small'>Layers: {shown}{extra}</span>")
    return "<br>".join(parts)


class AdviceView(QWidget):
    """A column of advice boxes (see module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self._labels: list[QLabel] = []
        self._advice: tuple[Advice, ...] = ()
        self.placeholder = QLabel("", self)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet("color: #6b6b6b;")
        self._layout.addWidget(self.placeholder)

    @property
    def advice(self) -> tuple[Advice, ...]:
        """The advice shown."""
        return self._advice

    def texts(self) -> list[str]:
        """Each box as plain text (``"title: text"``), in the order shown."""
        return [f"{a.title}: {a.text}" for a in self._advice]

    def show_advice(self, advice: Sequence[Advice], empty: str = "") -> None:
        """Show ``advice`` (warnings first); ``empty`` is said when there is none."""
        ordered = sorted(advice, key=lambda a: a.level != "warning")
        self._advice = tuple(ordered)
        while len(self._labels) < len(ordered):
            label = QLabel(self)
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._layout.addWidget(label)
            self._labels.append(label)
        for i, label in enumerate(self._labels):
            if i >= len(ordered):
                label.hide()
                continue
            item = ordered[i]
            label.setText(advice_html(item))
            label.setStyleSheet(WARNING_STYLE if item.level == "warning" else INFO_STYLE)
            label.setToolTip(", ".join(item.layers) if item.layers else "")
            label.setProperty("level", item.level)
            label.show()
        self.placeholder.setText(empty)
        self.placeholder.setVisible(not ordered and bool(empty))

    def warnings(self) -> list[Advice]:
        """The warning items shown."""
        return [a for a in self._advice if a.level == "warning"]
