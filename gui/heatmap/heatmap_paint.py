"""Mouse painting of the mask shown in a paintable :class:`gui.heatmap.heatmap.HeatmapView`.

:class:`MaskPainter` turns one press → drags → release into one
:class:`~gui.heatmap.mask_strokes.Stroke` (see
:data:`~gui.heatmap.mask_strokes.PAINT_HELP`), shows the painted cells at once
and says in the label what is going on. The view forwards its mouse events and
emits the finished stroke.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt

from gui.heatmap.heatmap_figure import HeatmapFigure
from gui.heatmap.heatmap_readout import Readout
from gui.heatmap.heatmap_scheduler import ReductionScheduler
from gui.heatmap.mask_strokes import Stroke, paint_cells


def stroke_for_press(button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> Stroke | None:
    """The stroke a press starts; None when the button does not paint."""
    if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
        return None
    keep = button == Qt.MouseButton.RightButton or bool(
        modifiers & Qt.KeyboardModifier.ShiftModifier
    )
    mode = "cell"
    if modifiers & Qt.KeyboardModifier.ControlModifier:
        mode = "row"
    elif modifiers & Qt.KeyboardModifier.AltModifier:
        mode = "column"
    return Stroke(keep=keep, mode=mode)


class MaskPainter:
    """The paint strokes of one view: which presses paint, what they touch, feedback.

    Args:
        figure: the view's figure (cells under the mouse, the image to update).
        scheduler: the view's scheduler (the content and what is shown, busy).
        readout: the view's label writer.
        paintable: whether presses may paint at all.
    """

    def __init__(
        self,
        figure: HeatmapFigure,
        scheduler: ReductionScheduler,
        readout: Readout,
        *,
        paintable: bool,
    ) -> None:
        self._figure = figure
        self._scheduler = scheduler
        self._readout = readout
        self.paintable = paintable
        self.stroke: Stroke | None = None
        """The stroke under way (None: not painting)."""

    def can_paint(self) -> bool:
        """Whether a press would paint now: paintable, not busy, zoomed in far enough."""
        if not self.paintable or self._scheduler.busy or self._scheduler.content is None:
            return False
        return self._figure.one_weight_per_pixel()

    def hint(self) -> str:
        """What the summary line says about painting ("" in a view that does not paint)."""
        if not self.paintable:
            return ""
        return "drag to paint (hover for help)" if self.can_paint() else "zoom in to paint"

    def press(self, scene_pos: QPointF, button: Qt.MouseButton, mods: Qt.KeyboardModifier) -> bool:
        """Start a stroke at ``scene_pos``; False: not a paint press (pan or zoom instead)."""
        cell = self._figure.cell_at(scene_pos, self._scheduler.shape) if self.paintable else None
        stroke = stroke_for_press(button, mods) if cell is not None else None
        if stroke is not None and not self.can_paint():
            self._readout.say("zoom in until one weight is at least one pixel to paint")
            stroke = None
        if stroke is None or cell is None:
            return False
        self.stroke = stroke
        self._feedback(stroke, stroke.add(*cell))
        return True

    def move(self, scene_pos: QPointF) -> None:
        """Extend the stroke under way (if any) to the matrix cell nearest ``scene_pos``."""
        stroke = self.stroke
        cell = self._figure.cell_at(scene_pos, self._scheduler.shape, clamp=True)
        if stroke is not None and cell is not None:
            self._feedback(stroke, stroke.add(*cell))

    def release(self) -> Stroke | None:
        """End the stroke under way and return it (None: there was none)."""
        stroke, self.stroke = self.stroke, None
        return stroke

    def _feedback(self, stroke: Stroke, cells: list[tuple[int, int]]) -> None:
        """Show painted cells at once (the owner's update replaces the image later)."""
        content, plan = self._scheduler.content, self._scheduler.shown
        image = self._figure.image.image
        if not cells or content is None or content.kind != "mask" or image is None:
            return
        if plan is None or not plan.is_identity:
            return
        paint_cells(image, plan, cells, stroke.keep)
        self._figure.image.updateImage()
        self._readout.say(f"{'restoring' if stroke.keep else 'pruning'} {len(stroke.cells)}…")
