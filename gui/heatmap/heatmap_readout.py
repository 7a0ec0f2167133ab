"""The text line under a :class:`gui.heatmap.heatmap.HeatmapView`: summary and hover text.

:class:`Readout` writes into the figure's label: the matrix size and how many
weights one pixel shows (with a paint hint), or, for a hovered cell, its index,
value, kept/pruned state and what its pixel shows.
"""

from __future__ import annotations

from collections.abc import Callable

from core.viz.display import Tiling
from gui.heatmap.heatmap_figure import HeatmapFigure
from gui.heatmap.heatmap_scheduler import ReductionScheduler

#: Names a display cell in hover text, e.g. ``lambda r, c: "w[3, 1, 0, 2]"``.
IndexFormatter = Callable[[int, int], str]


def default_index_text(row: int, col: int) -> str:
    """``"row 3, col 4"``."""
    return f"row {row}, col {col}"


class Readout:
    """Composes the label text from what ``figure`` draws and ``scheduler`` shows."""

    def __init__(self, figure: HeatmapFigure, scheduler: ReductionScheduler) -> None:
        self._figure = figure
        self._scheduler = scheduler
        self.index_text: IndexFormatter = default_index_text

    def say(self, text: str) -> None:
        """Put ``text`` in the label."""
        self._figure.label.setText(text)

    def describe(self, row: int, col: int) -> str:
        """Hover text for cell ``(row, col)``, e.g. ``"row 12, col 40: -0.0312 (kept)"``."""
        content = self._scheduler.content
        assert content is not None
        value, kept = content.value_at(row, col)
        if content.kind == "mask":
            text = f"{self.index_text(row, col)}: {'kept' if kept else 'pruned'}"
        else:
            text = f"{self.index_text(row, col)}: {value + 0.0:.4g}"  # + 0.0: no "-0"
            if kept is not None:
                text += " (kept)" if kept else " (pruned)"
        plan = self._scheduler.shown
        if plan is not None and not plan.is_identity:
            text += self._block_text(plan, row, col, content.kind)
        return text

    def _block_text(self, plan: Tiling, row: int, col: int, kind: str) -> str:
        if not (plan.row_start <= row < plan.row_stop and plan.col_start <= col < plan.col_stop):
            return ""
        pixel = plan.pixel_of(row, col)
        r0, r1, c0, c1 = plan.block_of(*pixel)
        image = self._figure.image.image
        if image is None or pixel[0] >= image.shape[0] or pixel[1] >= image.shape[1]:
            return ""
        shown = float(image[pixel])
        if kind == "mask":
            what = f"{shown:.0%} kept"
        else:
            kept = self._figure.kept
            all_pruned = kept is not None and kept.shape == image.shape and kept[pixel] == 0
            what = "all pruned" if all_pruned else f"extreme {shown:.4g}"
        return f"   ·   pixel = rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1}: {what}"

    def show_summary(self, paint_hint: str = "") -> None:
        """The matrix size, the weights per pixel (and "preview…"), then ``paint_hint``."""
        content = self._scheduler.content
        if content is None:
            self.say("")
            return
        rows, cols = content.shape
        text = f"{rows:,} × {cols:,}"
        plan = self._scheduler.shown
        if plan is not None and not plan.is_identity:
            text += f"   ·   1 pixel = {plan.block_rows} × {plan.block_cols} weights"
            text += "" if self._scheduler.is_full else "   ·   preview…"
        if paint_hint:
            text += f"   ·   {paint_hint}"
        self.say(text)
