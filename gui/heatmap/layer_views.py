"""Three linked heatmaps of one layer: original weights, mask, effective weights.

:class:`LayerViews` shows a layer's original weights, its mask and the
effective (masked) weights side by side, zoom and pan linked, the two weights
views on one symmetric colour scale. The mask view is paintable; strokes are
forwarded as :attr:`LayerViews.paint_stroke_finished`. A previewed mask (a
pruning method's result before it is applied) is shown with a "Preview" badge
until the next :meth:`LayerViews.show_layer`.

A big layer is handed to the views one per event-loop turn (each view reduces
its first picture at once), so the window never freezes for all three at a
time; :attr:`LayerViews.pending` stays True until every view has its layer.

Example:
    >>> views = LayerViews()
    >>> views.show_layer(session.original(name), session.mask(name), session.effective(name))
    >>> views.paint_stroke_finished.connect(on_stroke)  # cells are display cells
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.viz.display import cells_to_flat_index, display_matrix, display_shape, display_to_index
from gui.heatmap.heatmap import HeatmapView
from gui.session.disposal import dispose

TITLES = ("Original weights", "Mask", "Effective weights")
PREVIEW_SUFFIX = " (preview)"
LAYOUT_LABELS = {"matrix": "Matrix", "kernels": "Kernel grid"}

_BADGE_STYLE = (
    "QLabel { background: #f2b84b; color: #2b1d00; border-radius: 4px;"
    " padding: 1px 8px; font-weight: 600; }"
)
_BUSY_STYLE = "QLabel { color: palette(mid); font-style: italic; }"

#: Pixels of a heatmap view that are not matrix: axes, colour bar, title, label.
VIEW_CHROME = (150, 95)

#: Smallest size of one view (pixels).
VIEW_MIN_SIZE = 220

#: Grid cells (row, column, row span, column span) of the three views, by column count.
#: Views must stay the same size (their zoom is linked): with two columns each
#: spans two grid columns, and the effective weights sit centred below.
ARRANGEMENTS = {
    3: ((0, 0, 1, 1), (0, 1, 1, 1), (0, 2, 1, 1)),
    2: ((0, 0, 1, 2), (0, 2, 1, 2), (1, 1, 1, 2)),
    1: ((0, 0, 1, 1), (1, 0, 1, 1), (2, 0, 1, 1)),
}

#: Grid columns used by each arrangement.
_GRID_COLUMNS = {3: 3, 2: 4, 1: 1}
GRID_SPACING = 6

#: Layers of at least this many weights are given to the views one per event-loop turn.
STAGGER_ELEMENTS = 1 << 20


def view_columns(area: tuple[int, int], shape: tuple[int, int]) -> int:
    """How many columns (3, 2 or 1) show a ``shape`` matrix largest in ``area`` pixels.

    Each view keeps at least :data:`VIEW_MIN_SIZE`; ties keep more columns
    (three side by side is the familiar arrangement).
    """
    width, height = area
    rows_m, cols_m = max(shape[0], 1), max(shape[1], 1)
    best, best_scale = 3, -1.0
    for columns in (3, 2, 1):
        rows = math.ceil(3 / columns)
        cell_w = (width - GRID_SPACING * (columns - 1)) / columns
        cell_h = (height - GRID_SPACING * (rows - 1)) / rows
        if min(cell_w, cell_h) < VIEW_MIN_SIZE:
            continue
        scale = min((cell_w - VIEW_CHROME[0]) / cols_m, (cell_h - VIEW_CHROME[1]) / rows_m)
        if scale > best_scale * 1.05:  # a clear gain only, so it does not flip back and forth
            best, best_scale = columns, scale
    return best


@dataclass
class _Layer:
    """The tensors shown, weight-shaped (not copied)."""

    original: torch.Tensor
    mask: torch.Tensor
    effective: torch.Tensor


class LayerViews(QWidget):
    """Original weights, mask and effective weights of one layer, side by side.

    Signals:
        paint_stroke_finished(cells, keep): one per mask-view stroke. ``cells``
            are display cells ``(row, col)`` of the current layout, with
            ``(row, -1)`` a whole row and ``(-1, col)`` a whole column; turn them
            into flat weight indices with :meth:`flat_indices`.
        layout_changed(layout): the user switched between matrix and kernel grid.
    """

    paint_stroke_finished = Signal(list, bool)
    layout_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layer: _Layer | None = None
        self._layout = "matrix"
        self._preview = False
        self._columns = 0
        # Views still to be given the current layer (or preview), one per event-loop turn.
        self._steps: list[Callable[[], None]] = []
        self._step_timer = QTimer(self)
        self._step_timer.setSingleShot(True)
        self._step_timer.setInterval(0)
        self._step_timer.timeout.connect(self._next_step)
        self.original_view = HeatmapView(TITLES[0])
        self.mask_view = HeatmapView(TITLES[1], paintable=True)
        self.effective_view = HeatmapView(TITLES[2])
        self._build()
        self._link()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(4)
        root.addLayout(self._header())
        self._area = QWidget(self)
        self._grid = QGridLayout(self._area)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(GRID_SPACING)
        for view in self.views:
            view.setMinimumSize(VIEW_MIN_SIZE, VIEW_MIN_SIZE)
        self._arrange(3)
        root.addWidget(self._area, 1)

    def _header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        header.setContentsMargins(6, 4, 6, 0)
        self._layout_buttons = QButtonGroup(self)
        self._layout_buttons.setExclusive(True)
        header.addWidget(QLabel("Layout:"))
        for layout, text in LAYOUT_LABELS.items():
            button = QToolButton(text=text, checkable=True, autoRaise=False)
            button.setChecked(layout == self._layout)
            button.setToolTip(_layout_tip(layout))
            button.setProperty("layout", layout)
            self._layout_buttons.addButton(button)
            header.addWidget(button)
        self._layout_buttons.buttonClicked.connect(self._on_layout_clicked)
        header.addStretch(1)
        self.badge = QLabel("Preview: not applied yet")
        self.badge.setStyleSheet(_BADGE_STYLE)
        self.badge.setVisible(False)
        header.addWidget(self.badge)
        self.busy_label = QLabel("working…")
        self.busy_label.setStyleSheet(_BUSY_STYLE)
        self.busy_label.setVisible(False)
        header.addWidget(self.busy_label)
        self._set_layout_enabled(False)
        return header

    def _link(self) -> None:
        first = self.original_view.view_box
        for view in (self.mask_view, self.effective_view):
            view.view_box.setXLink(first)
            view.view_box.setYLink(first)
        self.original_view.levels_changed.connect(self._share_levels)
        self.mask_view.paint_stroke_finished.connect(self.paint_stroke_finished)
        for view in self.views:
            view.hovered.connect(self._mirror_hover)

    # ------------------------------------------------------------------ public API
    @property
    def views(self) -> tuple[HeatmapView, HeatmapView, HeatmapView]:
        """The original, mask and effective views."""
        return (self.original_view, self.mask_view, self.effective_view)

    @property
    def layout_name(self) -> str:
        """``"matrix"`` or ``"kernels"`` (the display layout in use)."""
        return self._layout

    @property
    def in_preview(self) -> bool:
        """True while a previewed mask is shown."""
        return self._preview

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The weight shape of the layer shown."""
        return None if self._layer is None else tuple(self._layer.original.shape)

    @property
    def pending(self) -> bool:
        """True while any view still waits for its layer or its full-information image."""
        return bool(self._steps) or any(view.pending for view in self.views)

    def flat_indices(self, shape: tuple[int, ...], cells: list[tuple[int, int]]) -> torch.Tensor:
        """Flat weight indices (for ``mask.view(-1)[index] = keep``) of painted cells.

        ``cells`` come from :attr:`paint_stroke_finished`, in the current layout.
        """
        return cells_to_flat_index(cells, tuple(shape), self._layout)

    def show_layer(
        self,
        original: torch.Tensor,
        mask_bool: torch.Tensor,
        effective: torch.Tensor,
        layout: str | None = None,
    ) -> None:
        """Show a layer (weight-shaped tensors); ends any preview.

        The zoom is kept when the display shape is unchanged (e.g. after a
        paint stroke was applied). Tensors are read, not copied: keep them
        unchanged while shown, or call :meth:`busy` while a job writes them.
        """
        dispose(self._layer)  # its memory is freed off the GUI thread
        self._layer = _Layer(original.detach(), mask_bool.detach(), effective.detach())
        if layout is not None:
            self._layout = layout
        if original.dim() < 4:
            self._layout = "matrix"
        self._set_layout_enabled(original.dim() >= 4)
        self._set_preview(False)
        self._show_all()

    def show_preview_mask(self, mask_bool: torch.Tensor) -> None:
        """Show a proposed mask and the effective weights it would give (original × mask).

        Raises:
            RuntimeError: no layer shown yet.
            ValueError: the mask shape differs from the layer's.
        """
        if self._layer is None:
            raise RuntimeError("show_layer() first")
        if tuple(mask_bool.shape) != tuple(self._layer.original.shape):
            raise ValueError(f"mask shape {tuple(mask_bool.shape)} != layer {self.shape}")
        self._set_preview(True)
        mask = self._display(mask_bool.detach())
        original = self._display(self._layer.original)
        block = _kernel_block(tuple(self._layer.original.shape), self._layout)

        def show_mask() -> None:
            self.mask_view.set_matrix(mask, "mask", keep_view=True)
            self.mask_view.set_block_grid(block)

        def show_effective() -> None:
            self.effective_view.set_matrix(
                original,
                "weights",
                self.original_view.levels,
                mask=mask,
                apply_mask=True,
                mark_pruned=True,
                keep_view=True,
            )
            self.effective_view.set_block_grid(block)

        self._run_steps([show_mask, show_effective], original.numel() >= STAGGER_ELEMENTS)

    def set_layout(self, layout: str) -> None:
        """Switch between ``"matrix"`` and ``"kernels"`` (conv weights only)."""
        if layout not in LAYOUT_LABELS:
            raise ValueError(f"unknown layout {layout!r}")
        if layout == self._layout:
            return
        self._layout = layout
        for button in self._layout_buttons.buttons():
            button.setChecked(button.property("layout") == layout)
        if self._layer is not None:
            self._set_preview(False)
            self._show_all()
        self.layout_changed.emit(layout)

    def busy(self, flag: bool) -> None:
        """Dim the views and show "working…" while a worker owns the layer."""
        self.busy_label.setVisible(flag)
        for view in self.views:
            view.set_busy(flag)

    @property
    def columns(self) -> int:
        """How many columns the views are arranged in now (3, 2 or 1)."""
        return self._columns

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-arrange the views when another column count would show the matrix larger."""
        super().resizeEvent(event)
        self._rearrange()

    # ------------------------------------------------------------------ internals
    def _rearrange(self) -> None:
        if self._layer is None:
            return
        shape = display_shape(tuple(self._layer.original.shape), self._layout)
        size = self._area.size()
        self._arrange(view_columns((size.width(), size.height()), shape))

    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for view in self.views:
            self._grid.removeWidget(view)
        for view, cell in zip(self.views, ARRANGEMENTS[columns], strict=True):
            self._grid.addWidget(view, *cell)
        rows = math.ceil(3 / columns)
        for i in range(4):
            self._grid.setColumnStretch(i, int(i < _GRID_COLUMNS[columns]))
            self._grid.setRowStretch(i, int(i < rows))

    def _display(self, tensor: torch.Tensor) -> torch.Tensor:
        return display_matrix(tensor, self._layout)

    def _show_all(self) -> None:
        assert self._layer is not None
        original = self._display(self._layer.original)
        mask = self._display(self._layer.mask)
        effective = self._display(self._layer.effective)
        keep = self.original_view.matrix is not None and (
            self.original_view.matrix.shape == original.shape
        )
        self._set_formatters()
        self._rearrange()
        block = _kernel_block(tuple(self._layer.original.shape), self._layout)

        def show_original() -> None:
            self.original_view.set_matrix(original, "weights", mask=mask, keep_view=keep)
            self.original_view.set_block_grid(block)

        def show_mask() -> None:
            self.mask_view.set_matrix(mask, "mask", keep_view=keep)
            self.mask_view.set_block_grid(block)

        def show_effective() -> None:
            # After the original view: the weights views share its levels.
            self.effective_view.set_matrix(
                effective,
                "weights",
                self.original_view.levels,
                mask=mask,
                mark_pruned=True,
                keep_view=keep,
            )
            self.effective_view.set_block_grid(block)

        self._run_steps(
            [show_original, show_mask, show_effective],
            stagger=original.numel() >= STAGGER_ELEMENTS,
        )

    def _run_steps(self, steps: list[Callable[[], None]], stagger: bool) -> None:
        """Run ``steps`` (each gives one view its matrix) now, or the first now and the
        others one per event-loop turn; steps still queued from before are dropped."""
        self._steps = list(steps)
        self._step_timer.stop()
        while self._steps:
            self._steps.pop(0)()
            if stagger and self._steps:
                self._step_timer.start()
                return

    def _next_step(self) -> None:
        if self._steps:
            self._steps.pop(0)()
        if self._steps:
            self._step_timer.start()

    def _share_levels(self, low: float, high: float) -> None:
        """The effective weights use the original's scale (they are a subset)."""
        if self.effective_view.matrix is not None:
            self.effective_view.set_levels((low, high))

    def _mirror_hover(self, row: int, col: int, _value: float, _kept: object) -> None:
        for view in self.views:
            if view is not self.sender():
                view.show_info(row, col)

    def _set_preview(self, preview: bool) -> None:
        self._preview = preview
        self.badge.setVisible(preview)
        suffix = PREVIEW_SUFFIX if preview else ""
        self.mask_view.set_title(TITLES[1] + suffix)
        self.effective_view.set_title(TITLES[2] + suffix)

    def _set_formatters(self) -> None:
        assert self._layer is not None
        shape = tuple(self._layer.original.shape)
        formatter = None
        if len(shape) != 2:

            def formatter(row: int, col: int) -> str:
                index = ", ".join(map(str, display_to_index(row, col, shape, self._layout)))
                return f"row {row}, col {col} = w[{index}]"

        for view in self.views:
            view.set_index_formatter(formatter)

    def _set_layout_enabled(self, enabled: bool) -> None:
        for button in self._layout_buttons.buttons():
            button.setEnabled(enabled)
            button.setChecked(button.property("layout") == self._layout)

    def _on_layout_clicked(self, button: QToolButton) -> None:
        self.set_layout(str(button.property("layout")))


def _kernel_block(shape: tuple[int, ...], layout: str) -> tuple[int, int] | None:
    """The size of one kernel in the kernel-grid layout (None: no grid)."""
    if layout != "kernels" or len(shape) < 4:
        return None
    kh = shape[-2]
    return (kh, math.prod(shape[2:]) // kh)


def _layout_tip(layout: str) -> str:
    if layout == "matrix":
        return "One row per output channel; each row is the flattened input × kernel."
    return "Conv weights as a grid of kernels: kernel (out, in) at block (out, in)."
