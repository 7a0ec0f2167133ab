"""A fast, truthful heatmap of one 2-D matrix (weights or a mask), with hover and paint.

:class:`HeatmapView` never hands pyqtgraph more pixels than the screen has:
the visible region is reduced block by block (:mod:`core.viz.display`: signed
extreme for weights, kept fraction for masks). A new matrix of up to 4096²
is reduced at once (≲ 16 ms); a bigger one first shows a strided preview (a
few ms), and a worker thread swaps the full reduction in after that paint.
Zooming or panning re-reduces only what is visible, down to one weight per
pixel or more. The image is placed in weight coordinates, so the axes read
weight indices and hover is exact.

Mouse (see :data:`gui.heatmap.mask_strokes.PAINT_HELP`): the wheel zooms, left- or
middle-drag pans. In a ``paintable`` view zoomed in to at least one pixel per
weight, left-drag prunes and right-drag (or Shift + left-drag) restores; Ctrl
paints whole rows and Alt whole columns. One stroke (press → release) emits
:attr:`HeatmapView.paint_stroke_finished` once.

The view wires together the pieces beside it, one job each:

* :mod:`gui.heatmap.heatmap_figure`: the pyqtgraph items (plot, image, overlay,
  frame, kernel grid, colour bar, label); :mod:`gui.heatmap.heatmap_items`: their
  colour maps, axis and image item;
* :mod:`gui.heatmap.heatmap_scheduler`: when and on which thread the visible
  region is reduced (preview, worker, zoom/pan throttle, levels);
  :mod:`gui.heatmap.heatmap_reduce`: the content snapshot and the reductions;
* :mod:`gui.heatmap.heatmap_readout`: the summary and hover text;
* :mod:`gui.heatmap.heatmap_paint`: mouse painting, with the strokes of
  :mod:`gui.heatmap.mask_strokes`;
* :mod:`gui.widgets.export`: PNG and SVG export, as for every figure of the app.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QMouseEvent, QPaintEvent
from PySide6.QtWidgets import QGraphicsTextItem, QWidget

from core.viz.display import Tiling
from gui.heatmap.heatmap_figure import HeatmapFigure
from gui.heatmap.heatmap_paint import MaskPainter
from gui.heatmap.heatmap_readout import IndexFormatter, Readout, default_index_text
from gui.heatmap.heatmap_reduce import HeatmapContent
from gui.heatmap.heatmap_scheduler import ReductionScheduler
from gui.heatmap.mask_strokes import PAINT_HELP
from gui.widgets.export import SUFFIXES, ExportError, export_widget


class HeatmapView(pg.GraphicsLayoutWidget):
    """One 2-D matrix as a heatmap: image in a plot, colour bar, hover label.

    Args:
        title: shown above the plot.
        paintable: let mouse strokes edit the (mask) matrix, see
            :data:`gui.heatmap.mask_strokes.PAINT_HELP`.
        parent: the parent widget.

    Signals:
        hovered(row, col, value, kept): the weight under the mouse; ``kept`` is
            a bool when known (mask kind, or a mask was given), else None.
        paint_stroke_finished(cells, keep): one per stroke; ``cells`` are
            ``(row, col)`` display cells, ``(row, ALL)`` a whole row and
            ``(ALL, col)`` a whole column (``ALL == -1``); ``keep`` False prunes.
        levels_changed(low, high): the colour levels changed.
        full_shown(): the full-information image for the current view is on screen.
    """

    hovered = Signal(int, int, float, object)
    paint_stroke_finished = Signal(list, bool)
    levels_changed = Signal(float, float)
    full_shown = Signal()

    def __init__(
        self, title: str = "", *, paintable: bool = False, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent=parent)
        self._kind = "weights"
        self._figure = HeatmapFigure(self, title)
        self._reducer = ReductionScheduler(self._figure.plot.vb, self)
        self._reducer.pixels_ready.connect(self._on_pixels)
        self._reducer.cleared.connect(self._figure.clear)
        self._reducer.levels_applied.connect(self._figure.set_levels)
        self._reducer.levels_changed.connect(self.levels_changed)
        self._reducer.range_settled.connect(self._figure.update_grid_visibility)
        self._readout = Readout(self._figure, self._reducer)
        self._reducer.failed.connect(self._readout.say)
        self._painter = MaskPainter(self._figure, self._reducer, self._readout, paintable=paintable)
        # Until the user zooms or pans, the whole matrix stays fitted to the view,
        # also when the view gets its real size after the matrix was set.
        self._fitted = False
        self._figure.plot.vb.sigRangeChangedManually.connect(self._on_user_range)
        self._figure.plot.vb.sigResized.connect(self._on_resized)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        if paintable:
            self.setToolTip(PAINT_HELP)
        self._set_label_idle()

    # ------------------------------------------------------------------ public API
    @property
    def plot_item(self) -> pg.PlotItem:
        """The PlotItem holding the image."""
        return self._figure.plot

    @property
    def view_box(self) -> pg.ViewBox:
        """The ViewBox (link zoom/pan with ``setXLink``/``setYLink``)."""
        return self._figure.plot.vb

    @property
    def image_item(self) -> pg.ImageItem:
        """The ImageItem showing the current pixels."""
        return self._figure.image

    @property
    def color_bar(self) -> pg.ColorBarItem:
        """The colour bar."""
        return self._figure.bar

    @property
    def pruned_legend(self) -> QGraphicsTextItem:
        """The "■ pruned" legend under the colour bar (visible when pruned cells are marked)."""
        return self._figure.pruned_legend

    @property
    def marks_pruned(self) -> bool:
        """Whether pruned cells are drawn in :data:`.heatmap_items.PRUNED_CELL_COLOR`."""
        return self._figure.marks_pruned

    @property
    def label_item(self) -> pg.LabelItem:
        """The hover / hint text under the plot."""
        return self._figure.label

    @property
    def matrix(self) -> torch.Tensor | None:
        """The matrix shown (not a copy: do not modify)."""
        content = self._reducer.content
        return None if content is None else content.matrix

    @property
    def kind(self) -> str:
        """``"weights"`` or ``"mask"``."""
        return self._kind

    @property
    def levels(self) -> tuple[float, float]:
        """The colour levels ``(low, high)``."""
        return self._reducer.levels

    @property
    def shown_tiling(self) -> Tiling | None:
        """How the pixels on screen map to the matrix (None: nothing shown)."""
        return self._reducer.shown

    @property
    def is_full(self) -> bool:
        """True when the image on screen is the full-information reduction of the view."""
        return self._reducer.is_full

    @property
    def pending(self) -> bool:
        """True while the full-information image for the current view is still coming."""
        return self._reducer.pending

    @property
    def paintable(self) -> bool:
        """Whether mouse strokes paint (see :data:`gui.heatmap.mask_strokes.PAINT_HELP`)."""
        return self._painter.paintable

    @property
    def fitted(self) -> bool:
        """Whether the whole matrix is framed (no zoom or pan by the user since it was set)."""
        return self._fitted

    def set_title(self, title: str) -> None:
        """Change the title above the plot."""
        self._figure.set_title(title)

    def set_index_formatter(self, formatter: IndexFormatter | None) -> None:
        """How hover text names a cell, e.g. ``lambda r, c: "w[3, 1, 0, 2]"``."""
        self._readout.index_text = formatter or default_index_text

    def set_matrix(
        self,
        matrix: torch.Tensor,
        kind: str = "weights",
        levels: tuple[float, float] | None = None,
        *,
        mask: torch.Tensor | None = None,
        apply_mask: bool = False,
        mark_pruned: bool = False,
        keep_view: bool = False,
    ) -> None:
        """Show a 2-D matrix: a preview now, the full reduction when a worker has it.

        Args:
            matrix: 2-D tensor (bool or 0/1 for ``kind="mask"``). Not copied:
                do not write to it while it is shown (show it busy instead).
            kind: ``"weights"`` (diverging map, symmetric levels) or ``"mask"``
                (kept fraction, levels 0..1).
            levels: fixed weights levels (e.g. shared by several views);
                default ``(-max|w|, max|w|)``.
            mask: bool tensor like ``matrix``: hover reports kept/pruned.
            apply_mask: show ``matrix * mask`` (pruned weights as 0).
            mark_pruned: draw pixels whose weights are all pruned (per ``mask``)
                in :data:`~gui.heatmap.heatmap_items.PRUNED_CELL_COLOR`, explained by a
                legend under the colour bar, not as the white of a zero weight.
            keep_view: keep the zoom when the shape is unchanged.

        Raises:
            ValueError: not 2-D, or unknown kind.
        """
        content = HeatmapContent.of(
            matrix, kind, mask, apply_mask=apply_mask, mark_pruned=mark_pruned
        )
        old = self._reducer.content
        self._figure.set_marks_pruned(content.mark_pruned)
        if kind != self._kind:
            self._figure.set_colormap(kind)
            self._kind = kind
        if not (keep_view and old is not None and old.shape == content.shape):
            self._fit(content.shape)
        self._figure.set_extent(*content.shape)
        self._reducer.show_content(content, levels)

    def set_block_grid(self, block: tuple[int, int] | None) -> None:
        """Draw separators every ``block = (rows, cols)`` (e.g. between conv kernels).

        They show only when a block is at least
        :data:`~gui.heatmap.heatmap_figure.GRID_MIN_PIXELS` on screen.
        """
        self._figure.set_block_grid(block, self._reducer.shape)

    def set_levels(self, levels: tuple[float, float]) -> None:
        """Fix the colour levels (weights views sharing one scale)."""
        self._reducer.set_levels(levels)

    def set_busy(self, busy: bool) -> None:
        """Dim the image and pause work while someone else owns the matrix."""
        self._figure.dim(busy)
        if busy:
            self._reducer.set_busy(True)
            self._painter.release()
            self._readout.say("working…")
            return
        self._reducer.set_busy(False)
        self._set_label_idle()

    def close(self) -> bool:
        """Stop timers and ignore late worker results (pyqtgraph clears the scene here)."""
        self._reducer.stop()
        return super().close()

    def export(self, path: str | Path) -> None:
        """Save the figure as PNG (at the screen's pixel ratio) or SVG, chosen by suffix.

        Drawn by :func:`gui.widgets.export.export_widget`, like every figure of the
        app: the plot, colour bar and label only, text crisp at any scale.

        Raises:
            ValueError: a suffix other than .png or .svg.
            OSError: the file could not be written.
        """
        path = Path(path)
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"export to .png or .svg, not {path.name!r}")
        try:
            export_widget(self, path, scale=self.devicePixelRatioF())
        except ExportError as error:
            raise OSError(str(error)) from error

    def describe(self, row: int, col: int) -> str:
        """Hover text for cell ``(row, col)``, e.g. ``"row 12, col 40: -0.0312 (kept)"``."""
        return self._readout.describe(row, col)

    def show_info(self, row: int, col: int) -> None:
        """Put the hover text of ``(row, col)`` in the label (used to mirror other views)."""
        content = self._reducer.content
        if content is not None and content.contains(row, col) and not self._reducer.busy:
            self._readout.say(self.describe(row, col))

    # ------------------------------------------------------------------ scheduler results
    def _on_pixels(
        self, pixels: np.ndarray, plan: Tiling, full: bool, kept: np.ndarray | None
    ) -> None:
        self._figure.show(pixels, plan, self._reducer.levels, kept)
        if not self._reducer.busy and self._painter.stroke is None:
            self._set_label_idle()
        if full:
            self.full_shown.emit()

    def paintEvent(self, ev: QPaintEvent) -> None:
        """Paint; after a preview's first paint, start the full reduction."""
        super().paintEvent(ev)
        self._reducer.painted()

    # ------------------------------------------------------------------ view
    def _fit(self, shape: tuple[int, int]) -> None:
        self._figure.fit(*shape)
        self._fitted = True

    def _on_user_range(self, *_args: object) -> None:
        self._fitted = False

    def _on_resized(self, *_args: object) -> None:
        content = self._reducer.content
        if self._fitted and content is not None:
            self._fit(content.shape)

    # ------------------------------------------------------------------ hover & painting
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._reducer.stopped:
            return
        content = self._reducer.content
        cell = self._figure.cell_at(scene_pos, self._reducer.shape)
        if cell is None or content is None:
            if not self._reducer.busy:
                self._set_label_idle()
            return
        value, kept = content.value_at(*cell)
        self.hovered.emit(cell[0], cell[1], value, kept)
        if not self._reducer.busy:
            self._readout.say(self.describe(*cell))

    def _set_label_idle(self) -> None:
        if not self._reducer.busy:
            self._readout.show_summary(self._painter.hint())

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        """Start a paint stroke when painting is possible here, else pan/zoom as usual."""
        scene_pos = self.mapToScene(ev.position().toPoint())
        if self._painter.press(scene_pos, ev.button(), ev.modifiers()):
            ev.accept()
        else:
            super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        """Extend the current stroke (clamped to the matrix), else pass on."""
        if self._painter.stroke is None:
            super().mouseMoveEvent(ev)
            return
        self._painter.move(self.mapToScene(ev.position().toPoint()))
        ev.accept()

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        """Finish the stroke: emit ``paint_stroke_finished`` once."""
        stroke = self._painter.release()
        if stroke is None:
            super().mouseReleaseEvent(ev)
            return
        ev.accept()
        self._set_label_idle()
        if stroke.cells:
            self.paint_stroke_finished.emit(list(stroke.cells), stroke.keep)
