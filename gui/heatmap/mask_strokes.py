"""Mask-painting strokes for :class:`gui.heatmap.heatmap.HeatmapView`: help text and cell tracking.

A :class:`Stroke` collects the cells (or whole rows/columns) one press → release
touches, in order and without repeats, filling the gaps a fast drag leaves;
:func:`paint_cells` shows painted cells in a one-weight-per-pixel image at once.
The mouse glue is :class:`gui.heatmap.heatmap_paint.MaskPainter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.viz.display import ALL, Tiling

PAINT_HELP = (
    "Paint the mask (zoom in until one weight is at least one pixel):\n"
    "  left-drag: prune    right-drag or Shift+left-drag: restore\n"
    "  hold Ctrl: whole rows    hold Alt: whole columns\n"
    "Wheel zooms; middle-drag (or drag in another view) pans."
)


@dataclass
class Stroke:
    """Cells touched by one paint stroke, in order, without repeats."""

    keep: bool
    mode: str  # "cell", "row" or "column"
    cells: dict[tuple[int, int], None] = field(default_factory=dict)
    last: tuple[int, int] | None = None

    def add(self, row: int, col: int) -> list[tuple[int, int]]:
        """Add the cells on the line from the last point to ``(row, col)``; return new ones."""
        start = self.last or (row, col)
        self.last = (row, col)
        new = []
        for r, c in cells_on_line(start, (row, col)):
            cell = (r, ALL) if self.mode == "row" else (ALL, c) if self.mode == "column" else (r, c)
            if cell not in self.cells:
                self.cells[cell] = None
                new.append(cell)
        return new


def cells_on_line(start: tuple[int, int], stop: tuple[int, int]) -> list[tuple[int, int]]:
    """Integer cells on the segment ``start`` → ``stop`` (so fast drags leave no gaps)."""
    steps = max(abs(stop[0] - start[0]), abs(stop[1] - start[1]))
    if steps == 0:
        return [start]
    return [
        (
            round(start[0] + (stop[0] - start[0]) * i / steps),
            round(start[1] + (stop[1] - start[1]) * i / steps),
        )
        for i in range(steps + 1)
    ]


def paint_cells(image: np.ndarray, plan: Tiling, cells: list[tuple[int, int]], keep: bool) -> None:
    """Set ``cells`` (``ALL`` for a whole row or column) to 1 (keep) or 0 in ``image``,
    a one-weight-per-pixel image of ``plan``; cells outside it are skipped."""
    value = 1.0 if keep else 0.0
    for row, col in cells:
        rows = slice(None) if row == ALL else row - plan.row_start
        cols = slice(None) if col == ALL else col - plan.col_start
        if _inside(rows, image.shape[0]) and _inside(cols, image.shape[1]):
            image[rows, cols] = value


def _inside(index: int | slice, size: int) -> bool:
    return isinstance(index, slice) or 0 <= index < size
