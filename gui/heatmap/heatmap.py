"""A fast, truthful heatmap of one 2-D matrix (weights or a mask), with hover and paint.

:class:`HeatmapView` never hands pyqtgraph more pixels than the screen has:
the visible region is reduced block by block (:mod:`core.viz.display`: signed
extreme for weights, kept fraction for masks). A new matrix of up to 8192²
is reduced at once (≲ 12 ms); a bigger one first shows a strided preview (a
few ms), and a worker thread swaps the full reduction in after that paint.
Zooming or panning re-reduces only what is visible, down to one weight per
pixel or more. The image is placed in weight coordinates, so the axes read
weight indices and hover is exact.

Mouse (see :data:`gui.heatmap.mask_strokes.PAINT_HELP`): the wheel zooms, left- or
middle-drag pans. In a ``paintable`` view zoomed in to at least one pixel per
weight, left-drag prunes and right-drag (or Shift + left-drag) restores; Ctrl
paints whole rows and Alt whole columns. One stroke (press → release) emits
:attr:`HeatmapView.paint_stroke_finished` once.

The pieces live beside it: :mod:`gui.heatmap.heatmap_items` (colour maps, axis, image
item), :mod:`gui.heatmap.heatmap_reduce` (worker requests and levels) and
:mod:`gui.heatmap.mask_strokes` (paint strokes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsTextItem, QWidget
from superqt.utils import create_worker

from core.viz.display import (
    ALL,
    Tiling,
    clip_region,
    fraction_pixels,
    kernels_ready,
    preview_pixels,
    signed_pixels,
    tiling,
)
from gui.heatmap.heatmap_items import (
    FRAME_COLOR,
    LUT_SIZE,
    MASK_COLORMAP,
    MASK_TICKS,
    OUTSIDE_COLOR,
    PRUNED_CELL_COLOR,
    PRUNED_LEGEND_HTML,
    PRUNED_LEGEND_TIP,
    WEIGHTS_COLORMAP,
    IndexAxis,
    RGB32ImageItem,
    let_shrink,
    style_axis,
)
from gui.heatmap.heatmap_reduce import (
    ReduceRequest,
    ReduceResult,
    matrix_max_abs,
    pixels_max_abs,
    pruned_overlay,
    reduce_request,
    symmetric_levels,
)
from gui.heatmap.mask_strokes import PAINT_HELP, Stroke

#: Matrices up to this many elements get exact levels at once, on the GUI thread.
SYNC_LEVELS_LIMIT = 1 << 22

#: A new matrix up to this many elements (4096²) is reduced at once (≲ 16 ms here), no preview;
#: a bigger one shows a strided preview at once and its full reduction from a worker, so the
#: GUI thread never reads a whole big layer (bench_interactions: every interaction <= 50 ms).
SYNC_REDUCE_LIMIT = 1 << 24

#: On zoom/pan, visible regions up to this many elements are reduced at once (≲ 2 ms).
SYNC_REGION_LIMIT = 1 << 22

#: Start the worker this long after a preview if no paint event came first (hidden view).
START_FALLBACK_MS = 30

#: Milliseconds between re-reductions while the user zooms or pans.
RANGE_THROTTLE_MS = 50

KINDS = ("weights", "mask")

#: Names a display cell in hover text, e.g. ``lambda r, c: "w[3, 1, 0, 2]"``.
IndexFormatter = Callable[[int, int], str]

#: Width of the colour-bar axis (fixed, so views line up whatever the labels).
BAR_AXIS_WIDTH = 52
#: Width of the row-index axis (room for 5-digit indices).
ROW_AXIS_WIDTH = 58

#: Kernel-grid separators are drawn when a block spans at least this many screen pixels.
GRID_MIN_PIXELS = 5

#: ... and when there are at most this many separator lines.
GRID_MAX_LINES = 8192


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
        self._paintable = paintable
        self._matrix: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self._apply_mask = False
        self._mark_pruned = False
        self._kind = "weights"
        self._levels = (-1.0, 1.0)
        self._exact_levels = True
        self._generation = 0
        self._serial = 0
        self._shown_serial = -1
        self._shown: Tiling | None = None
        self._is_full = False
        self._wanted: Tiling | None = None
        self._running = False
        self._pending = False
        self._busy = False
        self._stroke: Stroke | None = None
        self._index_text = _default_index_text
        self._build(title)

    # ------------------------------------------------------------------ building
    def _build(self, title: str) -> None:
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        self._foreground = palette.color(QPalette.ColorRole.Text)
        self.setBackground(background)
        self.ci.layout.setContentsMargins(4, 4, 4, 4)
        self.ci.layout.setSpacing(2)
        self._plot = self.addPlot(row=0, col=0)
        self._setup_plot(title)
        self._image = RGB32ImageItem(axisOrder="row-major")
        self._plot.addItem(self._image)
        # Over the image: pixels that keep no weight, in the pruned colour.
        self._pruned_image = pg.ImageItem(axisOrder="row-major")
        self._pruned_image.setZValue(1)
        self._plot.addItem(self._pruned_image)
        self._kept: np.ndarray | None = None
        self._frame = pg.PlotCurveItem(pen=pg.mkPen(FRAME_COLOR, width=1))
        self._frame.setZValue(10)
        self._plot.addItem(self._frame)
        self._grid = pg.PlotCurveItem(pen=pg.mkPen((60, 60, 60, 150), width=1), connect="pairs")
        self._grid.setZValue(9)
        self._grid_block: tuple[int, int] | None = None
        self._plot.addItem(self._grid)
        self._bar = pg.ColorBarItem(
            values=self._levels,
            colorMap=WEIGHTS_COLORMAP,
            interactive=False,
            width=14,
            pen=self._foreground,
            colorMapMenu=False,
        )
        self._bar.setImageItem(self._image, insert_in=self._plot)
        self._image.setLookupTable(WEIGHTS_COLORMAP.getLookupTable(nPts=LUT_SIZE))
        style_axis(self._bar.axis, self._foreground)
        self._bar.axis.setStyle(hideOverlappingLabels=False)
        self._bar.axis.setWidth(BAR_AXIS_WIDTH)
        # Under the colour bar, outside any layout: the linked views keep equal boxes.
        self._pruned_legend = QGraphicsTextItem(self._bar)
        self._pruned_legend.setDefaultTextColor(self._foreground)
        self._pruned_legend.setHtml(PRUNED_LEGEND_HTML)
        self._pruned_legend.setToolTip(PRUNED_LEGEND_TIP)
        self._pruned_legend.setVisible(False)
        self._bar.geometryChanged.connect(self._place_pruned_legend)
        self._label = pg.LabelItem(justify="left", size="9pt", color=self._foreground)
        let_shrink(self._label)
        self.addItem(self._label, row=1, col=0)
        self._timer = QTimer(self, singleShot=True, interval=RANGE_THROTTLE_MS)
        self._timer.timeout.connect(self._on_range_settled)
        self._kick = QTimer(self, singleShot=True)
        self._kick.timeout.connect(self._on_kick)
        self._start_after_paint = False
        self._plot.vb.sigRangeChanged.connect(self._on_range_changed)
        # Until the user zooms or pans, the whole matrix stays fitted to the view,
        # also when the view gets its real size after the matrix was set.
        self._fitted = False
        self._plot.vb.sigRangeChangedManually.connect(self._on_user_range)
        self._plot.vb.sigResized.connect(self._on_resized)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        if self._paintable:
            self.setToolTip(PAINT_HELP)
        self._set_label_idle()

    def _place_pruned_legend(self) -> None:
        self._pruned_legend.setPos(-4, self._bar.size().height() + 2)

    def _setup_plot(self, title: str) -> None:
        plot = self._plot
        for name in ("left", "bottom"):
            plot.setAxisItems({name: IndexAxis(name)})
        let_shrink(plot.titleLabel)
        plot.setTitle(title, size="11pt", color=self._foreground)
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.hideButtons()
        plot.setMenuEnabled(False)
        plot.setDefaultPadding(0.0)
        plot.vb.setBackgroundColor(OUTSIDE_COLOR)
        for name, label in (("left", "row"), ("bottom", "column")):
            axis = plot.getAxis(name)
            axis.setLabel(label, color=self._foreground.name())
            style_axis(axis, self._foreground)
        # A fixed width, so linked views get equal view boxes whatever their tick labels.
        plot.getAxis("left").setWidth(ROW_AXIS_WIDTH)

    # ------------------------------------------------------------------ public API
    @property
    def plot_item(self) -> pg.PlotItem:
        """The PlotItem holding the image."""
        return self._plot

    @property
    def view_box(self) -> pg.ViewBox:
        """The ViewBox (link zoom/pan with ``setXLink``/``setYLink``)."""
        return self._plot.vb

    @property
    def image_item(self) -> pg.ImageItem:
        """The ImageItem showing the current pixels."""
        return self._image

    @property
    def color_bar(self) -> pg.ColorBarItem:
        """The colour bar."""
        return self._bar

    @property
    def pruned_legend(self) -> QGraphicsTextItem:
        """The "■ pruned" legend under the colour bar (visible when pruned cells are marked)."""
        return self._pruned_legend

    @property
    def marks_pruned(self) -> bool:
        """Whether pruned cells are drawn in :data:`.heatmap_items.PRUNED_CELL_COLOR`."""
        return self._mark_pruned

    @property
    def label_item(self) -> pg.LabelItem:
        """The hover / hint text under the plot."""
        return self._label

    @property
    def matrix(self) -> torch.Tensor | None:
        """The matrix shown (not a copy: do not modify)."""
        return self._matrix

    @property
    def kind(self) -> str:
        """``"weights"`` or ``"mask"``."""
        return self._kind

    @property
    def levels(self) -> tuple[float, float]:
        """The colour levels ``(low, high)``."""
        return self._levels

    @property
    def shown_tiling(self) -> Tiling | None:
        """How the pixels on screen map to the matrix (None: nothing shown)."""
        return self._shown

    @property
    def is_full(self) -> bool:
        """True when the image on screen is the full-information reduction of the view."""
        return self._is_full

    @property
    def pending(self) -> bool:
        """True while the full-information image for the current view is still coming."""
        return self._matrix is not None and not self._closed() and not self._settled()

    @property
    def paintable(self) -> bool:
        """Whether mouse strokes paint (see :data:`gui.heatmap.mask_strokes.PAINT_HELP`)."""
        return self._paintable

    def set_title(self, title: str) -> None:
        """Change the title above the plot."""
        self._plot.setTitle(title, size="11pt", color=self._foreground)

    def set_index_formatter(self, formatter: IndexFormatter | None) -> None:
        """How hover text names a cell, e.g. ``lambda r, c: "w[3, 1, 0, 2]"``."""
        self._index_text = formatter or _default_index_text

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
        if matrix.dim() != 2 or kind not in KINDS:
            raise ValueError(f"need a 2-D matrix and a kind in {KINDS}, got {tuple(matrix.shape)}")
        same_shape = self._matrix is not None and self._matrix.shape == matrix.shape
        self._matrix = matrix.detach()
        self._mask = None if mask is None else mask.detach()
        self._apply_mask = apply_mask and mask is not None and kind == "weights"
        self._mark_pruned = mark_pruned and mask is not None and kind == "weights"
        self._pruned_image.setVisible(self._mark_pruned)
        self._pruned_legend.setVisible(self._mark_pruned)
        self._generation += 1
        self._shown_serial = -1
        self._set_kind(kind)
        if not (keep_view and same_shape):
            self._reset_view()
        self._set_extent(*matrix.shape)
        self._start_levels(levels)
        self._refresh(initial=True)

    def set_block_grid(self, block: tuple[int, int] | None) -> None:
        """Draw separators every ``block = (rows, cols)`` (e.g. between conv kernels).

        They show only when a block is at least :data:`GRID_MIN_PIXELS` on screen.
        """
        self._grid_block = block
        xs: list[float] = []
        ys: list[float] = []
        if block is not None and self._matrix is not None:
            rows, cols = self._matrix.shape
            if rows // block[0] + cols // block[1] <= GRID_MAX_LINES:
                for r in range(block[0], rows, block[0]):
                    xs += [0, cols]
                    ys += [r, r]
                for c in range(block[1], cols, block[1]):
                    xs += [c, c]
                    ys += [0, rows]
        self._grid.setData(np.array(xs, dtype=float), np.array(ys, dtype=float))
        self._update_grid_visibility()

    def _update_grid_visibility(self) -> None:
        block = self._grid_block
        if block is None:
            self._grid.setVisible(False)
            return
        px_w, px_h = self._plot.vb.viewPixelSize()
        self._grid.setVisible(
            min(block[0] / max(px_h, 1e-12), block[1] / max(px_w, 1e-12)) >= GRID_MIN_PIXELS
        )

    def set_levels(self, levels: tuple[float, float]) -> None:
        """Fix the colour levels (weights views sharing one scale)."""
        self._exact_levels = True
        self._apply_levels((float(levels[0]), float(levels[1])))

    def set_busy(self, busy: bool) -> None:
        """Dim the image and pause work while someone else owns the matrix."""
        self._busy = busy
        self._image.setOpacity(0.35 if busy else 1.0)
        self._pruned_image.setOpacity(0.35 if busy else 1.0)
        if busy:
            self._stroke = None
            self._label.setText("working…")
            return
        self._set_label_idle()
        if self._pending:
            self._pending = False
            if not self._settled():
                self._request_full()

    def close(self) -> bool:
        """Stop timers and ignore late worker results (pyqtgraph clears the scene here)."""
        self._timer.stop()
        self._kick.stop()
        self._start_after_paint = False
        self._matrix = None
        return super().close()

    def _closed(self) -> bool:
        return bool(getattr(self, "closed", False))

    def export(self, path: str | Path) -> None:
        """Save the view as PNG (a grab of the widget) or SVG, chosen by suffix.

        SVG goes through pyqtgraph's SVGExporter (vector axes and text); where
        that fails (pyqtgraph 0.14 cannot parse Qt 6.12's SVG paths) the widget
        is rendered through a QSvgGenerator instead.

        Raises:
            ValueError: a suffix other than .png or .svg.
            OSError: the file could not be written.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".png":
            if not self.grab().save(str(path)):
                raise OSError(f"could not write {path}")
        elif suffix == ".svg":
            self._export_svg(path)
        else:
            raise ValueError(f"export to .png or .svg, not {path.name!r}")

    def _export_svg(self, path: Path) -> None:
        from pyqtgraph.exporters import SVGExporter

        try:
            SVGExporter(self.scene()).export(str(path))
            return
        except ValueError:
            pass
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(self.size())
        generator.setViewBox(self.rect())
        generator.setResolution(self.logicalDpiX())
        generator.setTitle(self._plot.titleLabel.text or "PruneScope heatmap")
        painter = QPainter(generator)
        try:
            self.render(painter)
        finally:
            painter.end()
        if not path.exists():
            raise OSError(f"could not write {path}")

    def describe(self, row: int, col: int) -> str:
        """Hover text for cell ``(row, col)``, e.g. ``"row 12, col 40: -0.0312 (kept)"``."""
        value, kept = self._value_at(row, col)
        if self._kind == "mask":
            text = f"{self._index_text(row, col)}: {'kept' if kept else 'pruned'}"
        else:
            text = f"{self._index_text(row, col)}: {value + 0.0:.4g}"  # + 0.0: no "-0"
            if kept is not None:
                text += " (kept)" if kept else " (pruned)"
        plan = self._shown
        if plan is not None and not plan.is_identity:
            text += self._block_text(plan, row, col)
        return text

    def show_info(self, row: int, col: int) -> None:
        """Put the hover text of ``(row, col)`` in the label (used to mirror other views)."""
        if self._contains(row, col) and not self._busy:
            self._label.setText(self.describe(row, col))

    # ------------------------------------------------------------------ kind & levels
    def _set_kind(self, kind: str) -> None:
        if kind != self._kind:
            colormap = MASK_COLORMAP if kind == "mask" else WEIGHTS_COLORMAP
            self._bar.setColorMap(colormap)
            self._image.setLookupTable(colormap.getLookupTable(nPts=LUT_SIZE))
            self._bar.axis.setTicks(MASK_TICKS if kind == "mask" else None)
        self._kind = kind

    def _start_levels(self, levels: tuple[float, float] | None) -> None:
        """Fixed, mask or exact levels now; for huge matrices a preview estimate first."""
        assert self._matrix is not None
        if self._kind == "mask":
            self._exact_levels = True
            self._apply_levels((0.0, 1.0))
        elif levels is not None:
            self.set_levels(levels)
        elif self._matrix.numel() <= SYNC_LEVELS_LIMIT:
            self._exact_levels = True
            self._apply_levels(
                symmetric_levels(matrix_max_abs(self._matrix, self._effective_mask()))
            )
        else:
            self._exact_levels = False  # the first full reduction makes them exact

    def _apply_levels(self, levels: tuple[float, float]) -> None:
        changed = levels != self._levels
        self._levels = levels
        self._bar.setLevels(levels)
        if changed:
            self.levels_changed.emit(*levels)

    def _effective_mask(self) -> torch.Tensor | None:
        return self._mask if self._apply_mask else None

    def _pruned_mask(self) -> torch.Tensor | None:
        return self._mask if self._mark_pruned else None

    # ------------------------------------------------------------------ view & plans
    def _set_extent(self, rows: int, cols: int) -> None:
        """Frame the matrix and label axis ticks only inside it."""
        self._frame.setData([0, cols, cols, 0, 0], [0, 0, rows, rows, 0])
        self._frame.setVisible(rows * cols > 0)
        self._plot.getAxis("bottom").extent = cols
        self._plot.getAxis("left").extent = rows

    def _reset_view(self) -> None:
        assert self._matrix is not None
        rows, cols = self._matrix.shape
        self._plot.vb.setRange(
            xRange=(0, max(cols, 1)), yRange=(0, max(rows, 1)), padding=0.0, update=True
        )
        self._fitted = True

    @property
    def fitted(self) -> bool:
        """Whether the whole matrix is framed (no zoom or pan by the user since it was set)."""
        return self._fitted

    def _on_user_range(self, *_args: object) -> None:
        self._fitted = False

    def _on_resized(self, *_args: object) -> None:
        if self._fitted and self._matrix is not None:
            self._reset_view()

    def _visible_plan(self) -> Tiling | None:
        """The block grid for what is visible now, one block per device pixel."""
        if self._matrix is None or self._matrix.numel() == 0:
            return None
        shape = tuple(self._matrix.shape)
        (x0, x1), (y0, y1) = self._plot.vb.viewRange()
        region = clip_region(shape, (math.floor(y0), math.ceil(y1), math.floor(x0), math.ceil(x1)))
        if region is None:
            return None
        width_px, height_px = self._pixel_budget()
        out_cols = math.ceil((region[3] - region[2]) / max(x1 - x0, 1e-9) * width_px)
        out_rows = math.ceil((region[1] - region[0]) / max(y1 - y0, 1e-9) * height_px)
        return tiling(shape, max(1, out_rows), max(1, out_cols), region, align=True)

    def _pixel_budget(self) -> tuple[float, float]:
        """The ViewBox size in device pixels (a guess before the first layout)."""
        vb = self._plot.vb
        ratio = self.devicePixelRatioF()
        width, height = vb.width() * ratio, vb.height() * ratio
        if width < 16 or height < 16:
            return (512.0, 512.0)
        return (width, height)

    def _refresh(self, *, initial: bool = False) -> None:
        """Show what is visible: at once if cheap, else a preview (initial) and a worker."""
        plan = self._visible_plan()
        if plan is None:
            self._clear()
            return
        self._wanted = plan
        limit = SYNC_REDUCE_LIMIT if initial else SYNC_REGION_LIMIT
        if _area(plan) <= limit and (plan.is_identity or kernels_ready()):
            self._serial += 1
            pixels = self._reduce_now(plan)
            if self._kind == "weights" and not self._exact_levels:
                self._finish_levels(pixels if self._covers_all(plan) else None)
            self._show(pixels, plan, full=True, serial=self._serial, kept=self._kept_now(plan))
            return
        if not initial:
            self._request_full()
            return
        assert self._matrix is not None
        preview = preview_pixels(self._matrix, plan, mask=self._effective_mask())
        pruned = self._pruned_mask()
        kept = None if pruned is None else preview_pixels(pruned, plan)
        if self._kind == "weights" and not self._exact_levels:
            self._apply_levels(symmetric_levels(pixels_max_abs(preview)))
        self._show(preview, plan, full=False, serial=self._serial, kept=kept)
        # The preview's first paint must not compete with the worker for the CPU
        # (measured: 16384² first paint 12 → 30 ms): start it right after that
        # paint (or soon anyway, e.g. when hidden).
        self._start_after_paint = True
        self._kick.start(START_FALLBACK_MS)

    def paintEvent(self, ev: QPaintEvent) -> None:
        """Paint; after a preview's first paint, start the full reduction."""
        super().paintEvent(ev)
        if self._start_after_paint:
            self._start_after_paint = False
            self._kick.start(0)

    def _on_kick(self) -> None:
        self._start_after_paint = False
        self._request_full()

    def _reduce_now(self, plan: Tiling) -> np.ndarray:
        assert self._matrix is not None
        if self._kind == "mask":
            return fraction_pixels(self._matrix, plan)
        return signed_pixels(self._matrix, plan, mask=self._effective_mask())

    def _kept_now(self, plan: Tiling) -> np.ndarray | None:
        """Kept fraction per pixel of the mask whose pruned cells are marked (None: none)."""
        pruned = self._pruned_mask()
        return None if pruned is None else fraction_pixels(pruned, plan)

    def _clear(self) -> None:
        self._image.clear()
        self._pruned_image.clear()
        self._kept = None
        self._shown = None
        self._is_full = False

    def _show(
        self,
        pixels: np.ndarray,
        plan: Tiling,
        *,
        full: bool,
        serial: int,
        kept: np.ndarray | None = None,
    ) -> None:
        self._image.setImage(pixels, autoLevels=False, levels=self._levels)
        self._image.setRect(QRectF(*plan.rect()))
        self._kept = kept
        if kept is None:
            self._pruned_image.clear()
        else:
            self._pruned_image.setImage(pruned_overlay(kept, PRUNED_CELL_COLOR), autoLevels=False)
            self._pruned_image.setRect(QRectF(*plan.rect()))
        self._shown = plan
        self._shown_serial = serial
        self._is_full = full
        if not self._busy and self._stroke is None:
            self._set_label_idle()
        if full:
            self.full_shown.emit()

    # ------------------------------------------------------------------ workers
    def _request_full(self) -> None:
        """Reduce the wanted plan in a pool thread; one worker at a time, newest wins."""
        if self._busy or self._running:
            self._pending = True
            return
        if self._closed() or self._matrix is None or self._wanted is None:
            return
        self._serial += 1
        request = ReduceRequest(
            serial=self._serial,
            generation=self._generation,
            matrix=self._matrix,
            kind=self._kind,
            plan=self._wanted,
            mask=self._effective_mask(),
            need_levels=not self._exact_levels and not self._covers_all(self._wanted),
            pruned=self._pruned_mask(),
        )
        self._running = True
        worker = create_worker(reduce_request, request, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._on_reduced)
        worker.errored.connect(self._on_reduce_failed)
        worker.start()

    def _covers_all(self, plan: Tiling) -> bool:
        assert self._matrix is not None
        rows, cols = self._matrix.shape
        return plan.region == (0, rows, 0, cols)

    def _on_reduced(self, result: ReduceResult) -> None:
        self._running = False
        if self._closed():
            return
        request = result.request
        if request.generation == self._generation and request.serial > self._shown_serial:
            if not self._exact_levels and request.kind == "weights":
                found = result.max_abs
                self._finish_levels(result.pixels if found is None else None, found)
            full = request.plan == self._wanted
            self._show(
                result.pixels, request.plan, full=full, serial=request.serial, kept=result.kept
            )
        self._pending = False
        if not self._settled():
            self._request_full()

    def _finish_levels(self, pixels: np.ndarray | None, max_abs: float | None = None) -> None:
        """Exact levels: a whole-matrix reduction keeps the global extreme (else one pass)."""
        if max_abs is None:
            if pixels is not None:
                max_abs = pixels_max_abs(pixels)
            else:
                assert self._matrix is not None
                max_abs = matrix_max_abs(self._matrix, self._effective_mask())
        self._exact_levels = True
        self._apply_levels(symmetric_levels(max_abs))

    def _settled(self) -> bool:
        return self._wanted is None or (self._is_full and self._shown == self._wanted)

    def _on_reduce_failed(self, error: BaseException) -> None:
        self._running = False
        if self._closed():
            return
        self._label.setText(f"could not reduce the matrix: {error}")
        if self._pending:
            self._pending = False
            self._request_full()

    # ------------------------------------------------------------------ zoom & pan
    def _on_range_changed(self, *_args: object) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _on_range_settled(self) -> None:
        if self._closed():
            return
        self._update_grid_visibility()
        plan = self._visible_plan()
        if plan is None or (plan == self._wanted and (self._is_full or self._running)):
            return
        self._refresh()

    # ------------------------------------------------------------------ hover
    def _cell_at_scene(self, scene_pos: QPointF) -> tuple[int, int] | None:
        vb = self._plot.vb
        if self._matrix is None or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = vb.mapSceneToView(scene_pos)
        row, col = math.floor(point.y()), math.floor(point.x())
        return (row, col) if self._contains(row, col) else None

    def _contains(self, row: int, col: int) -> bool:
        if self._matrix is None:
            return False
        rows, cols = self._matrix.shape
        return 0 <= row < rows and 0 <= col < cols

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._closed():
            return
        cell = self._cell_at_scene(scene_pos)
        if cell is None:
            if not self._busy:
                self._set_label_idle()
            return
        value, kept = self._value_at(*cell)
        self.hovered.emit(cell[0], cell[1], value, kept)
        if not self._busy:
            self._label.setText(self.describe(*cell))

    def _value_at(self, row: int, col: int) -> tuple[float, bool | None]:
        assert self._matrix is not None
        value = float(self._matrix[row, col])
        kept: bool | None = None
        if self._kind == "mask":
            kept = value != 0
            value = float(kept)
        elif self._mask is not None:
            kept = bool(self._mask[row, col])
            if self._apply_mask and not kept:
                value = 0.0
        return value, kept

    def _block_text(self, plan: Tiling, row: int, col: int) -> str:
        if not (plan.row_start <= row < plan.row_stop and plan.col_start <= col < plan.col_stop):
            return ""
        pixel = plan.pixel_of(row, col)
        r0, r1, c0, c1 = plan.block_of(*pixel)
        image = self._image.image
        if image is None or pixel[0] >= image.shape[0] or pixel[1] >= image.shape[1]:
            return ""
        shown = float(image[pixel])
        if self._kind == "mask":
            what = f"{shown:.0%} kept"
        else:
            kept = self._kept
            all_pruned = kept is not None and kept.shape == image.shape and kept[pixel] == 0
            what = "all pruned" if all_pruned else f"extreme {shown:.4g}"
        return f"   ·   pixel = rows {r0}–{r1 - 1}, cols {c0}–{c1 - 1}: {what}"

    def _set_label_idle(self) -> None:
        if self._busy:
            return
        if self._matrix is None:
            self._label.setText("")
            return
        rows, cols = self._matrix.shape
        text = f"{rows:,} × {cols:,}"
        plan = self._shown
        if plan is not None and not plan.is_identity:
            text += f"   ·   1 pixel = {plan.block_rows} × {plan.block_cols} weights"
            text += "" if self._is_full else "   ·   preview…"
        if self._paintable and not self._can_paint():
            text += "   ·   zoom in to paint"
        elif self._paintable:
            text += "   ·   drag to paint (hover for help)"
        self._label.setText(text)

    # ------------------------------------------------------------------ painting
    def _can_paint(self) -> bool:
        if not self._paintable or self._busy or self._matrix is None:
            return False
        px_w, px_h = self._plot.vb.viewPixelSize()
        return max(px_w, px_h) <= 1.0 + 1e-9

    def _stroke_for(self, event: QMouseEvent) -> Stroke | None:
        """A new stroke for this press, or None when the press is not a paint press."""
        button, mods = event.button(), event.modifiers()
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return None
        keep = button == Qt.MouseButton.RightButton or bool(
            mods & Qt.KeyboardModifier.ShiftModifier
        )
        mode = "cell"
        if mods & Qt.KeyboardModifier.ControlModifier:
            mode = "row"
        elif mods & Qt.KeyboardModifier.AltModifier:
            mode = "column"
        return Stroke(keep=keep, mode=mode)

    def _cell_at_event(self, event: QMouseEvent) -> tuple[int, int] | None:
        return self._cell_at_scene(self.mapToScene(event.position().toPoint()))

    def mousePressEvent(self, ev: QMouseEvent) -> None:
        """Start a paint stroke when painting is possible here, else pan/zoom as usual."""
        cell = self._cell_at_event(ev) if self._paintable else None
        stroke = self._stroke_for(ev) if cell is not None else None
        if stroke is not None and not self._can_paint():
            self._label.setText("zoom in until one weight is at least one pixel to paint")
            stroke = None
        if stroke is None or cell is None:
            super().mousePressEvent(ev)
            return
        self._stroke = stroke
        self._paint_feedback(stroke.add(*cell), stroke.keep)
        ev.accept()

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:
        """Extend the current stroke (clamped to the matrix), else pass on."""
        if self._stroke is None:
            super().mouseMoveEvent(ev)
            return
        cell = self._clamped_cell(self.mapToScene(ev.position().toPoint()))
        if cell is not None:
            self._paint_feedback(self._stroke.add(*cell), self._stroke.keep)
        ev.accept()

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:
        """Finish the stroke: emit ``paint_stroke_finished`` once."""
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            super().mouseReleaseEvent(ev)
            return
        ev.accept()
        self._set_label_idle()
        if stroke.cells:
            self.paint_stroke_finished.emit(list(stroke.cells), stroke.keep)

    def _clamped_cell(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if self._matrix is None:
            return None
        point = self._plot.vb.mapSceneToView(scene_pos)
        rows, cols = self._matrix.shape
        row = min(max(math.floor(point.y()), 0), rows - 1)
        col = min(max(math.floor(point.x()), 0), cols - 1)
        return (row, col)

    def _paint_feedback(self, cells: list[tuple[int, int]], keep: bool) -> None:
        """Show painted cells at once (the owner's update replaces the image later)."""
        plan, image = self._shown, self._image.image
        if not cells or self._kind != "mask" or image is None:
            return
        if plan is None or not plan.is_identity:
            return
        value = 1.0 if keep else 0.0
        for row, col in cells:
            rows = slice(None) if row == ALL else row - plan.row_start
            cols = slice(None) if col == ALL else col - plan.col_start
            if _inside(rows, image.shape[0]) and _inside(cols, image.shape[1]):
                image[rows, cols] = value
        self._image.updateImage()
        self._label.setText(f"{'restoring' if keep else 'pruning'} {len(self._stroke_cells())}…")

    def _stroke_cells(self) -> dict[tuple[int, int], None]:
        return {} if self._stroke is None else self._stroke.cells


def _area(plan: Tiling) -> int:
    """How many matrix elements a plan reads."""
    return (plan.row_stop - plan.row_start) * (plan.col_stop - plan.col_start)


def _default_index_text(row: int, col: int) -> str:
    return f"row {row}, col {col}"


def _inside(index: int | slice, size: int) -> bool:
    return isinstance(index, slice) or 0 <= index < size
