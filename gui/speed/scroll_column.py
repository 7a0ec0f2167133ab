"""A tab page's parts in one scrolling column, as the Speed tab and the Cost lab lay theirs out.

:func:`scroll_column` stacks the parts (an intro line, group boxes) in a column
with the room left below them, puts the column in a frameless scroll area, and
makes that area fill the page.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget

MARGIN = 8
"""Pixels between the column and the page's edges."""
SPACING = 10
"""Pixels between two parts of the column."""


def scroll_column(page: QWidget, parts: Iterable[QWidget]) -> QScrollArea:
    """Lay ``parts`` out on ``page`` in one column, top to bottom, inside a scroll area.

    The column keeps :data:`MARGIN` pixels from the edges and :data:`SPACING`
    between parts; the room left is below the last part. The scroll area has no
    frame, resizes the column with it and fills ``page`` (which must have no
    layout yet).

    Returns:
        The scroll area (a child of ``page``).
    """
    content = QWidget()
    column = QVBoxLayout(content)
    column.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
    column.setSpacing(SPACING)
    for part in parts:
        column.addWidget(part)
    column.addStretch(1)
    scroll = QScrollArea(page)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll
