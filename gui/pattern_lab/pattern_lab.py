"""The pattern lab: the brief's 8x8 "pruned three ways" figure, made interactive.

A seeded N x N matrix (values ~ N(0, 1) clipped to [-2, 2]) is pruned by five
methods side by side: unstructured L1, whole rows, whole columns, N:M and
blocks. Each column shows the effective weights (pruned entries are zero and
marked with a cross) above the mask, with a caption giving the sparsity that
was actually reached. Every mask comes from the engine's
``PruningMethod.compute_mask``, so the lab teaches exactly what PruneScope
does to a real layer.

The lab fits any tab: its controls wrap into as many rows as the width needs,
and the figure (one pyqtgraph scene, :class:`gui.pattern_lab.pattern_views.PatternFigure`)
scales and re-flows its columns into bands. Presentation mode doubles every
font and keeps every control. The figure (or any single column) exports to
PNG (1x to 3x) or SVG for slides, without the controls.

The controls are :class:`gui.pattern_lab.lab_controls.LabControls` (laid out
by :class:`gui.pattern_lab.flow_layout.FlowLayout`); this module drives the
figure from them and exports it. What each column shows is worked out, without
Qt, in ``core.viz.pattern_figure``.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QSettings, QSignalBlocker, QSizeF, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFileDialog, QGraphicsItem, QVBoxLayout, QWidget

from core.viz.pattern_figure import (
    KEYS,
    MAX_SIZE,
    MIN_SIZE,
    VALUE_TEXT_MAX_SIZE,
    ColumnResult,
    LabSettings,
    compute_column,
    random_matrix,
)
from gui.pattern_lab.flow_layout import FlowLayout as FlowLayout
from gui.pattern_lab.lab_controls import LabControls
from gui.pattern_lab.pattern_views import FIGURE_MIN_SIZE as FIGURE_MIN_SIZE
from gui.pattern_lab.pattern_views import FigurePlan, FigureView, PatternFigure
from gui.widgets.export import DEFAULT_FILTER, FILE_FILTER, export_widget, filter_scale

PRESENTATION_SCALE = 2.0
"""How much larger the controls' text is in presentation mode."""
FIGURE_PRESENTATION_SCALE = 1.5
"""How much larger the figure's text is in presentation mode (less than the
controls', so that the matrices keep most of the room on a 1366 x 768 projector)."""
EXPORT_MIN_SIZE = QSizeF(1000, 560)
"""Exports lay the figure out at least this large (screen pixels): five columns
side by side with room for the cell values, whatever the tab's size."""


class PatternLab(QWidget):
    """Five pruning patterns of one small random matrix, side by side, driven live.

    Args:
        parent: the Qt parent.
        settings: the initial size, seed, amount, N:M and block shape.

    Signals:
        presentation_changed(bool): presentation mode was switched (by any means).
        settings_changed(): size, seed, amount, N:M or block shape changed.
    """

    presentation_changed = Signal(bool)
    settings_changed = Signal()

    def __init__(self, parent: QWidget | None = None, settings: LabSettings | None = None) -> None:
        super().__init__(parent)
        self._settings = settings or LabSettings()
        self._matrix = random_matrix(self._settings.size, self._settings.seed)
        self._results: dict[str, ColumnResult] = {}
        self._presentation = False
        self._values_visible = True
        self._base_font = QFont(self.font())
        self._build_controls()
        self._build_figure()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(self.controls)
        layout.addWidget(self.figure, stretch=1)
        self.controls.sync(self._settings)
        self._refresh()

    # -- construction ---------------------------------------------------------
    def _build_controls(self) -> None:
        self.controls = LabControls(self, self._settings)
        self._connect_controls()

    def _connect_controls(self) -> None:
        c = self.controls
        c.size_spin.valueChanged.connect(self.set_size)
        c.seed_spin.valueChanged.connect(self.set_seed)
        c.regenerate_button.clicked.connect(self.regenerate)
        c.amount_slider.valueChanged.connect(lambda v: self.set_amount(round(v) / 100.0))
        c.nm_n_spin.valueChanged.connect(lambda n: self.set_nm(n, c.nm_m_spin.value()))
        c.nm_m_spin.valueChanged.connect(lambda m: self.set_nm(c.nm_n_spin.value(), m))
        c.block_rows_spin.valueChanged.connect(
            lambda r: self.set_block(r, c.block_cols_spin.value())
        )
        c.block_cols_spin.valueChanged.connect(
            lambda col: self.set_block(c.block_rows_spin.value(), col)
        )
        c.values_box.toggled.connect(self.set_values_visible)
        c.presentation_button.toggled.connect(self.set_presentation)
        c.export_requested.connect(self._ask_export)

    def _build_figure(self) -> None:
        self.figure = FigureView(self)
        self.figure.setObjectName("labFigure")
        self._figure = PatternFigure()
        self.figure.setCentralItem(self._figure)

    # -- public API -----------------------------------------------------------
    @property
    def settings(self) -> LabSettings:
        """The current settings (size, seed, amount, N:M, block)."""
        return self._settings

    def set_amount(self, fraction: float) -> None:
        """Prune ``fraction`` (0..1) with the amount-based methods."""
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"amount {fraction} is outside [0, 1]")
        self._update(replace(self._settings, amount=fraction))

    def amount(self) -> float:
        """The current amount as a fraction."""
        return self._settings.amount

    def set_seed(self, seed: int) -> None:
        """Draw the matrix from ``seed``."""
        self._update(replace(self._settings, seed=int(seed)))

    def regenerate(self) -> int:
        """Draw a new random seed (different from the current one); returns it."""
        seed = self._settings.seed
        while seed == self._settings.seed:
            seed = random.randrange(self.controls.seed_spin.maximum() + 1)
        self.set_seed(seed)
        return seed

    def set_size(self, size: int) -> None:
        """Use a ``size`` x ``size`` matrix (4..32)."""
        if not MIN_SIZE <= int(size) <= MAX_SIZE:
            raise ValueError(f"size {size} is outside {MIN_SIZE}..{MAX_SIZE}")
        self._update(replace(self._settings, size=int(size)))

    def set_nm(self, n: int, m: int) -> None:
        """Use N:M sparsity with ``n`` kept of every ``m``."""
        self._update(replace(self._settings, nm=(int(n), int(m))))

    def set_block(self, rows: int, cols: int) -> None:
        """Use ``rows`` x ``cols`` blocks for block sparsity."""
        self._update(replace(self._settings, block=(int(rows), int(cols))))

    def matrix(self) -> torch.Tensor:
        """A copy of the matrix being pruned."""
        return self._matrix.clone()

    def masks(self) -> dict[str, torch.Tensor]:
        """The engine's mask of each applicable column (True = kept), by key."""
        return {k: r.mask.clone() for k, r in self._results.items() if r.mask is not None}

    def image_data(self, key: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The arrays shown in column ``key``: (weights image, mask image or None)."""
        column = self._figure.columns[key]
        weights = column.weights.displayed()
        assert weights is not None
        return weights, column.mask.displayed()

    def caption(self, key: str) -> str:
        """The plain sparsity caption of column ``key`` (e.g. ``25.0% pruned: 16 of 64``)."""
        return self._figure.columns[key].caption_text

    def note(self, key: str) -> str:
        """The second caption line of column ``key`` (what was zeroed, or why not)."""
        return self._results[key].note

    def is_column_enabled(self, key: str) -> bool:
        """Whether column ``key``'s method applies to the current matrix."""
        return self._figure.columns[key].enabled

    def column_tooltip(self, key: str) -> str:
        """The tooltip of column ``key``'s header (the method's summary)."""
        return self._figure.columns[key].title.toolTip()

    def values_shown(self, key: str) -> bool:
        """Whether column ``key`` writes weight values into its cells now."""
        return self._figure.columns[key].weights.values_shown()

    def set_values_visible(self, on: bool) -> None:
        """Write weight values into the cells (only up to ``VALUE_TEXT_MAX_SIZE`` rows)."""
        self._values_visible = bool(on)
        with QSignalBlocker(self.controls.values_box):
            self.controls.values_box.setChecked(self._values_visible)
        self._refresh()

    def set_presentation(self, on: bool) -> None:
        """Large text for projectors, or back to normal.

        Every control stays; the controls' text is :data:`PRESENTATION_SCALE`
        times normal, the figure's :data:`FIGURE_PRESENTATION_SCALE` times.
        """
        if bool(on) == self._presentation:
            return
        self._presentation = bool(on)
        with QSignalBlocker(self.controls.presentation_button):
            self.controls.presentation_button.setChecked(self._presentation)
        font = QFont(self._base_font)
        font.setPointSizeF(self._base_font.pointSizeF() * self.font_scale())
        self.setFont(font)
        self.controls.apply_font(font)
        self._refresh()
        self.presentation_changed.emit(self._presentation)

    def is_presentation(self) -> bool:
        """Whether presentation mode is on."""
        return self._presentation

    def font_scale(self) -> float:
        """How much larger than normal the controls' text is (2.0 in presentation mode)."""
        return PRESENTATION_SCALE if self._presentation else 1.0

    def figure_plan(self) -> FigurePlan | None:
        """How the figure is laid out now: columns per band, matrix side (pixels)."""
        return self._figure.plan

    def column_items(self, key: str) -> list[QGraphicsItem]:
        """The graphics items of column ``key``, top to bottom (for exporting one column)."""
        return self._figure.columns[key].items()

    def figure_items(self) -> list[QGraphicsItem]:
        """Every graphics item of the figure (without the controls or empty space)."""
        return self._figure.items()

    def export(self, path: str | Path, column: str | None = None, scale: float = 1.0) -> Path:
        """Save the figure (or one column) to ``path``; ``.png`` or ``.svg`` picks the format.

        Only the figure is drawn, not the controls, laid out at least
        :data:`EXPORT_MIN_SIZE` large (a figure shown larger is exported as
        shown); ``scale`` multiplies PNG pixels (1x, 2x, 3x).
        """
        with self._figure.laid_out_at_least(EXPORT_MIN_SIZE):
            items = self.figure_items() if column is None else self.column_items(column)
            return export_widget(items, path, scale=scale)

    # -- internals ------------------------------------------------------------
    def _update(self, settings: LabSettings) -> None:
        if settings == self._settings and self._results:
            return
        if (settings.size, settings.seed) != (self._settings.size, self._settings.seed):
            self._matrix = random_matrix(settings.size, settings.seed)
        self._settings = settings
        self.controls.sync(self._settings)
        self._refresh()
        self.settings_changed.emit()

    def _refresh(self) -> None:
        self._results = {key: compute_column(key, self._matrix, self._settings) for key in KEYS}
        values = self._values_visible and self._settings.size <= VALUE_TEXT_MAX_SIZE
        scale = FIGURE_PRESENTATION_SCALE if self._presentation else 1.0
        self._figure.show(self._matrix, self._results, self._settings, values, scale)

    def _ask_export(self, column: str | None) -> None:
        settings = QSettings()
        start = Path(str(settings.value("last_dir", str(Path.home()))))
        name = "pattern_lab" if column is None else f"pattern_lab_{column}"
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export figure", str(start / f"{name}.png"), FILE_FILTER, DEFAULT_FILTER
        )
        if not path:
            return
        try:
            written = self.export(path, column=column, scale=filter_scale(chosen))
        except (OSError, RuntimeError) as exc:
            self.controls.show_message(f"Could not export {Path(path).name}: {exc}", error=True)
            return
        settings.setValue("last_dir", str(written.resolve().parent))
        self.controls.show_message(f"Saved {written.name}", error=False)
