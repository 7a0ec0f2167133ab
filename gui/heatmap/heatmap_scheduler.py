"""When and where a :class:`gui.heatmap.heatmap.HeatmapView` reduces its matrix to pixels.

:class:`ReductionScheduler` decides, for what the view box shows, between a
reduction on the GUI thread (cheap regions), a strided preview followed by a
worker reduction (a big new matrix), or a worker alone (a big zoom or pan
region). It keeps one worker at a time (the newest request wins), drops stale
results, throttles re-reduction while the user zooms or pans, and turns
estimated colour levels into exact ones. It says what to draw through signals;
the view draws (:class:`gui.heatmap.heatmap_figure.HeatmapFigure`).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget
from superqt.utils import create_worker

from core.viz.display import Tiling, kernels_ready, preview_pixels
from gui.heatmap.heatmap_reduce import (
    HeatmapContent,
    ReduceRequest,
    ReduceResult,
    kept_pixels,
    matrix_max_abs,
    pixels_max_abs,
    plan_area,
    reduce_pixels,
    reduce_request,
    start_levels,
    symmetric_levels,
    visible_tiling,
)
from gui.session.disposal import dispose

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


class ReductionScheduler(QObject):
    """Reduces what ``view_box`` shows of the current content, on time and off the GUI thread.

    Args:
        view_box: the view box whose visible region is reduced (one block per device pixel).
        parent: the view widget (its device pixel ratio counts; it owns this object).

    Signals:
        pixels_ready(pixels, plan, full, kept): show ``pixels`` for ``plan``; ``full``
            says they are the full-information reduction of the wanted view; ``kept``
            is the kept fraction per pixel of the marked mask, or None.
        cleared(): nothing to show.
        levels_applied(low, high): the colour levels to use (sent again when unchanged).
        levels_changed(low, high): they differ from the previous ones (after levels_applied).
        failed(message): a worker could not reduce the matrix.
        range_settled(): the view range has settled after a zoom or pan (throttled).
    """

    pixels_ready = Signal(object, object, bool, object)
    cleared = Signal()
    levels_applied = Signal(float, float)
    levels_changed = Signal(float, float)
    failed = Signal(str)
    range_settled = Signal()

    def __init__(self, view_box: pg.ViewBox, parent: QWidget) -> None:
        super().__init__(parent)
        self._widget = parent
        self._view_box = view_box
        self._content: HeatmapContent | None = None
        self._levels = (-1.0, 1.0)
        self._exact_levels = True
        self._generation = 0  # one per content: results of older ones are dropped
        self._serial = 0  # one per reduction: an older one never replaces a newer one
        self._shown_serial = -1
        self._shown: Tiling | None = None
        self._is_full = False
        self._wanted: Tiling | None = None
        self._running = False
        self._pending = False
        self._busy = False
        self._stopped = False
        self._throttle = QTimer(self, singleShot=True, interval=RANGE_THROTTLE_MS)
        self._throttle.timeout.connect(self._on_range_settled)
        self._kick = QTimer(self, singleShot=True)
        self._kick.timeout.connect(self._on_kick)
        self._start_after_paint = False
        view_box.sigRangeChanged.connect(self._on_range_changed)

    # ------------------------------------------------------------------ state
    @property
    def content(self) -> HeatmapContent | None:
        """What is shown (None: nothing yet, or stopped)."""
        return self._content

    @property
    def shape(self) -> tuple[int, int] | None:
        """The matrix shape (None: no content)."""
        return None if self._content is None else self._content.shape

    @property
    def levels(self) -> tuple[float, float]:
        """The colour levels ``(low, high)``."""
        return self._levels

    @property
    def shown(self) -> Tiling | None:
        """How the pixels on screen map to the matrix (None: nothing shown)."""
        return self._shown

    @property
    def is_full(self) -> bool:
        """True when the pixels on screen are the full-information reduction of the view."""
        return self._is_full

    @property
    def pending(self) -> bool:
        """True while the full-information pixels for the current view are still coming."""
        return self._content is not None and not self._stopped and not self._settled()

    @property
    def busy(self) -> bool:
        """Whether work is paused (someone else owns the matrix)."""
        return self._busy

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called (the view is closed)."""
        return self._stopped

    # ------------------------------------------------------------------ commands
    def show_content(self, content: HeatmapContent, levels: tuple[float, float] | None) -> None:
        """Show new content: at once if cheap, else a preview now and a worker after its paint.

        ``levels``: fixed weights levels; None: exact ones (estimated first for huge matrices).
        """
        dispose(self._content)  # the layer shown before: freed off the GUI thread
        self._content = content
        self._generation += 1
        self._shown_serial = -1
        found = start_levels(content, levels, SYNC_LEVELS_LIMIT)
        self._exact_levels = found is not None  # else the first full reduction makes them exact
        if found is not None:
            self._apply_levels(found)
        self._refresh(initial=True)

    def set_levels(self, levels: tuple[float, float]) -> None:
        """Fix the colour levels."""
        self._exact_levels = True
        self._apply_levels((float(levels[0]), float(levels[1])))

    def set_busy(self, busy: bool) -> None:
        """Pause work (busy) or resume it, catching up on what was asked meanwhile."""
        self._busy = busy
        if not busy and self._pending:
            self._pending = False
            if not self._settled():
                self._request_full()

    def painted(self) -> None:
        """The view painted: after a preview's first paint, start the full reduction."""
        if self._start_after_paint:
            self._start_after_paint = False
            self._kick.start(0)

    def stop(self) -> None:
        """Stop the timers, forget the content and ignore late worker results."""
        self._throttle.stop()
        self._kick.stop()
        self._start_after_paint = False
        dispose(self._content)
        self._content = None
        self._stopped = True

    # ------------------------------------------------------------------ levels
    def _finish_levels(self, pixels: np.ndarray | None, max_abs: float | None = None) -> None:
        """Exact levels: a whole-matrix reduction keeps the global extreme (else one pass)."""
        if max_abs is None:
            if pixels is not None:
                max_abs = pixels_max_abs(pixels)
            else:
                assert self._content is not None
                max_abs = matrix_max_abs(self._content.matrix, self._content.effective_mask)
        self._exact_levels = True
        self._apply_levels(symmetric_levels(max_abs))

    def _apply_levels(self, levels: tuple[float, float]) -> None:
        changed = levels != self._levels
        self._levels = levels
        self.levels_applied.emit(*levels)
        if changed:
            self.levels_changed.emit(*levels)

    # ------------------------------------------------------------------ plans
    def _visible_plan(self) -> Tiling | None:
        """The block grid for what is visible now, one block per device pixel."""
        if self._content is None:
            return None
        return visible_tiling(self._content.shape, self._view_box.viewRange(), self._pixel_budget())

    def _pixel_budget(self) -> tuple[float, float]:
        """The ViewBox size in device pixels (a guess before the first layout)."""
        vb = self._view_box
        ratio = self._widget.devicePixelRatioF()
        width, height = vb.width() * ratio, vb.height() * ratio
        if width < 16 or height < 16:
            return (512.0, 512.0)
        return (width, height)

    def _settled(self) -> bool:
        return self._wanted is None or (self._is_full and self._shown == self._wanted)

    # ------------------------------------------------------------------ reducing
    def _refresh(self, *, initial: bool = False) -> None:
        """Show what is visible: at once if cheap, else a preview (initial) and a worker."""
        plan = self._visible_plan()
        if plan is None:
            self._clear()
            return
        content = self._content
        assert content is not None
        self._wanted = plan
        limit = SYNC_REDUCE_LIMIT if initial else SYNC_REGION_LIMIT
        if plan_area(plan) <= limit and (plan.is_identity or kernels_ready()):
            self._serial += 1
            pixels = reduce_pixels(content, plan)
            if content.kind == "weights" and not self._exact_levels:
                self._finish_levels(pixels if content.covers_all(plan) else None)
            self._show(
                pixels, plan, full=True, serial=self._serial, kept=kept_pixels(content, plan)
            )
            return
        if not initial:
            self._request_full()
            return
        preview = preview_pixels(content.matrix, plan, mask=content.effective_mask)
        kept = kept_pixels(content, plan, preview=True)
        if content.kind == "weights" and not self._exact_levels:
            self._apply_levels(symmetric_levels(pixels_max_abs(preview)))
        self._show(preview, plan, full=False, serial=self._serial, kept=kept)
        # The preview's first paint must not compete with the worker for the CPU
        # (measured: 16384² first paint 12 → 30 ms): start it right after that
        # paint (or soon anyway, e.g. when hidden).
        self._start_after_paint = True
        self._kick.start(START_FALLBACK_MS)

    def _on_kick(self) -> None:
        self._start_after_paint = False
        self._request_full()

    def _clear(self) -> None:
        self._shown = None
        self._is_full = False
        self.cleared.emit()

    def _show(
        self, pixels: np.ndarray, plan: Tiling, *, full: bool, serial: int, kept: np.ndarray | None
    ) -> None:
        self._shown = plan
        self._shown_serial = serial
        self._is_full = full
        self.pixels_ready.emit(pixels, plan, full, kept)

    def _request_full(self) -> None:
        """Reduce the wanted plan in a pool thread; one worker at a time, newest wins."""
        if self._busy or self._running:
            self._pending = True
            return
        content, wanted = self._content, self._wanted
        if self._stopped or content is None or wanted is None:
            return
        self._serial += 1
        request = ReduceRequest(
            serial=self._serial,
            generation=self._generation,
            content=content,
            plan=wanted,
            need_levels=not self._exact_levels and not content.covers_all(wanted),
        )
        self._running = True
        worker = create_worker(reduce_request, request, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._on_reduced)
        worker.errored.connect(self._on_reduce_failed)
        worker.start()

    def _on_reduced(self, result: ReduceResult) -> None:
        self._running = False
        if self._stopped:
            return
        request = result.request
        if request.generation == self._generation and request.serial > self._shown_serial:
            if not self._exact_levels and request.content.kind == "weights":
                found = result.max_abs
                self._finish_levels(result.pixels if found is None else None, found)
            full = request.plan == self._wanted
            self._show(
                result.pixels, request.plan, full=full, serial=request.serial, kept=result.kept
            )
        self._pending = False
        if not self._settled():
            self._request_full()

    def _on_reduce_failed(self, error: BaseException) -> None:
        self._running = False
        if self._stopped:
            return
        self.failed.emit(f"could not reduce the matrix: {error}")
        if self._pending:
            self._pending = False
            self._request_full()

    # ------------------------------------------------------------------ zoom & pan
    def _on_range_changed(self, *_args: object) -> None:
        if not self._throttle.isActive():
            self._throttle.start()

    def _on_range_settled(self) -> None:
        if self._stopped:
            return
        self.range_settled.emit()
        plan = self._visible_plan()
        if plan is None or (plan == self._wanted and (self._is_full or self._running)):
            return
        self._refresh()
