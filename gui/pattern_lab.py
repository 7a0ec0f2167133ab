"""The pattern lab: the brief's 8x8 "pruned three ways" figure, made interactive.

A seeded N x N matrix (values ~ N(0, 1) clipped to [-2, 2]) is pruned by five
methods side by side: unstructured L1, whole rows, whole columns, N:M and
blocks. Each column shows the effective weights (pruned entries are zero and
marked with a cross) above the mask, with a caption giving the sparsity that
was actually reached. Every mask comes from the engine's
``PruningMethod.compute_mask``, so the lab teaches exactly what PruneScope
does to a real layer. The figure is one pyqtgraph scene, so it (or any single
column) exports to PNG or SVG for slides.

What each column shows is worked out, without Qt, in ``core.viz.pattern_figure``;
the figure's pyqtgraph pieces are in ``gui.pattern_views``.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGraphicsItem,
    QGraphicsWidget,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.viz.pattern_figure import (
    KEYS,
    LEVELS,
    MAX_SIZE,
    MIN_SIZE,
    VALUE_TEXT_MAX_SIZE,
    ColumnResult,
    LabSettings,
    column_title,
    compute_column,
    method_tooltip,
    random_matrix,
)
from gui.colormaps import FRAME_RGB, INK, KEPT_RGB, MUTED, PRUNED_RGB, diverging_colormap, hex_color
from gui.export import FILE_FILTER, export_widget
from gui.pattern_views import (
    CAPTION_PT,
    FIGURE_TITLE_PT,
    ROW_HEADER,
    ROW_MASK,
    ROW_SPACER,
    ROW_TITLE,
    ROW_WEIGHTS,
    MethodColumn,
    scaled_font,
    set_label,
)

PRESENTATION_SCALE = 2.0
"""How much larger the text is in presentation mode."""


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
        self._secondary: list[QWidget] = []
        self._build_controls()
        self._build_figure()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(self._controls)
        layout.addWidget(self.figure, stretch=1)
        self._sync_controls()
        self._refresh()

    # -- construction ---------------------------------------------------------
    def _build_controls(self) -> None:
        self._controls = QWidget(self)
        row = QHBoxLayout(self._controls)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        self._size_spin = self._spin(MIN_SIZE, MAX_SIZE, "Matrix size (N × N)", "sizeSpin")
        self._seed_spin = self._spin(0, 999_999, "Random seed of the matrix", "seedSpin")
        self._regenerate = QPushButton("Regenerate", self)
        self._regenerate.setObjectName("regenerateButton")
        self._regenerate.setToolTip("Draw a new random seed")
        self._amount_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal, self)
        self._amount_slider.setObjectName("amountSlider")
        self._amount_slider.setRange(0.0, 100.0)
        self._amount_slider.setSingleStep(1.0)
        self._amount_slider.setDecimals(0)
        self._amount_slider.setToolTip("Fraction pruned by the amount-based methods (%)")
        self._amount_slider.setMinimumWidth(180)
        self._nm_n = self._spin(0, 16, "N: weights kept in each group", "nmNSpin")
        self._nm_m = self._spin(1, 16, "M: size of each group of consecutive inputs", "nmMSpin")
        self._block_rows = self._spin(1, 16, "Block height (rows)", "blockRowsSpin")
        self._block_cols = self._spin(1, 16, "Block width (columns)", "blockColsSpin")
        self._values_box = QCheckBox("Values", self)
        self._values_box.setObjectName("valuesBox")
        self._values_box.setChecked(True)
        self._values_box.setToolTip(f"Write weights into cells (N ≤ {VALUE_TEXT_MAX_SIZE})")
        self._presentation_button = QPushButton("Presentation", self)
        self._presentation_button.setObjectName("presentationButton")
        self._presentation_button.setCheckable(True)
        self._presentation_button.setToolTip("Large fonts, fewer controls: for projectors")
        self._export_button = self._build_export_button()
        size_label, seed_label = self._label("Size"), self._label("Seed")
        amount_label = self._label("Amount %")
        nm_label, colon = self._label("N:M"), self._label(":")
        block_label, times = self._label("Block"), self._label("×")
        widgets: list[QWidget] = [
            size_label, self._size_spin, seed_label, self._seed_spin, self._regenerate,
            amount_label, self._amount_slider, nm_label, self._nm_n, colon, self._nm_m,
            block_label, self._block_rows, times, self._block_cols, self._values_box,
        ]  # fmt: skip
        gaps_after = {self._regenerate, self._amount_slider, self._nm_m, self._block_cols}
        for widget in widgets:
            row.addWidget(widget, stretch=1 if widget is self._amount_slider else 0)
            if widget in gaps_after:
                row.addSpacing(14)
        row.addStretch(0)
        row.addWidget(self._presentation_button)
        row.addWidget(self._export_button)
        self._secondary = [
            seed_label, self._seed_spin, self._regenerate, nm_label, self._nm_n, colon,
            self._nm_m, block_label, self._block_rows, times, self._block_cols,
            self._values_box, self._export_button,
        ]  # fmt: skip
        self._connect_controls()

    def _spin(self, low: int, high: int, tip: str, name: str) -> QSpinBox:
        spin = QSpinBox(self)
        spin.setObjectName(name)
        spin.setRange(low, high)
        spin.setToolTip(tip)
        spin.setKeyboardTracking(False)
        return spin

    def _label(self, text: str) -> QLabel:
        label = QLabel(text, self)
        palette = label.palette()
        palette.setColor(label.foregroundRole(), QColor(MUTED))
        label.setPalette(palette)
        return label

    def _build_export_button(self) -> QPushButton:
        button = QPushButton("Export", self)
        button.setObjectName("exportButton")
        button.setToolTip("Save the figure or one column as PNG or SVG")
        menu = QMenu(button)
        whole = QAction("Whole figure…", menu)
        whole.triggered.connect(lambda: self._ask_export(None))
        menu.addAction(whole)
        menu.addSeparator()
        for key in KEYS:
            action = QAction(f"{column_title(key, self._settings)[0]} column…", menu)
            action.triggered.connect(lambda _=False, k=key: self._ask_export(k))
            menu.addAction(action)
        button.setMenu(menu)
        return button

    def _connect_controls(self) -> None:
        self._size_spin.valueChanged.connect(self.set_size)
        self._seed_spin.valueChanged.connect(self.set_seed)
        self._regenerate.clicked.connect(self.regenerate)
        self._amount_slider.valueChanged.connect(lambda v: self.set_amount(round(v) / 100.0))
        self._nm_n.valueChanged.connect(lambda n: self.set_nm(n, self._nm_m.value()))
        self._nm_m.valueChanged.connect(lambda m: self.set_nm(self._nm_n.value(), m))
        self._block_rows.valueChanged.connect(lambda r: self.set_block(r, self._block_cols.value()))
        self._block_cols.valueChanged.connect(lambda c: self.set_block(self._block_rows.value(), c))
        self._values_box.toggled.connect(self.set_values_visible)
        self._presentation_button.toggled.connect(self.set_presentation)

    def _build_figure(self) -> None:
        self.figure = pg.GraphicsLayoutWidget(self)
        self.figure.setBackground("w")
        self.figure.setMinimumSize(900, 480)
        grid = self.figure.ci
        grid.setContentsMargins(10, 10, 10, 10)
        grid.setSpacing(12)
        self._figure_title = pg.LabelItem("", justify="center")
        last = len(KEYS) + 1
        grid.addItem(self._figure_title, row=ROW_TITLE, col=0, colspan=last + 1)
        self._row_labels = {row: pg.LabelItem("", angle=-90) for row in (ROW_WEIGHTS, ROW_MASK)}
        for row, label in self._row_labels.items():
            grid.addItem(label, row=row, col=0)
        self._columns = {key: MethodColumn(key, grid, i + 1) for i, key in enumerate(KEYS)}
        self._build_legend(grid, last)
        for col in range(last + 1):
            grid.layout.setColumnStretchFactor(col, 1 if 0 < col < last else 0)
        spacer = QGraphicsWidget()
        grid.addItem(spacer, row=ROW_SPACER, col=0)
        # _fit_plots fixes the plots' height; the spacer row takes what is left.
        for row in range(ROW_SPACER + 1):
            grid.layout.setRowStretchFactor(row, 1 if row == ROW_SPACER else 0)
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self._fit_plots)
        self.figure.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Re-fit the plots when the figure is resized."""
        if watched is self.figure and event.type() == QEvent.Type.Resize:
            self._fit_timer.start(0)
        return super().eventFilter(watched, event)

    def _fit_plots(self) -> None:
        """Make every matrix plot the same square: as wide as a column allows, and
        small enough that weights and masks both fit the figure's height."""
        grid = self.figure.ci
        labels = (self._figure_title, *(c.title for c in self._columns.values()))
        fixed = sum(item.minimumHeight() for item in labels[:2])
        fixed += max(c.caption.minimumHeight() for c in self._columns.values())
        _, top, _, bottom = grid.layout.getContentsMargins()
        fixed += top + bottom + 5 * grid.layout.verticalSpacing()
        width = min(c.weights.plot.geometry().width() for c in self._columns.values())
        side = max(40.0, min(width, (self.figure.height() - fixed) / 2))
        for column in self._columns.values():
            for plot in (column.weights.plot, column.mask.plot):
                plot.setMinimumHeight(side)
                plot.setMaximumHeight(side)
        for item in (self._colorbar, self._mask_key, *self._row_labels.values()):
            item.setMaximumHeight(side)

    def _build_legend(self, grid: pg.GraphicsLayout, col: int) -> None:
        self._legend_header = pg.LabelItem("", justify="left")
        grid.addItem(self._legend_header, row=ROW_HEADER, col=col)
        self._colorbar = pg.ColorBarItem(
            values=LEVELS,
            colorMap=diverging_colormap(),
            interactive=False,
            width=14,
            pen=pg.mkPen(FRAME_RGB),
        )
        axis = self._colorbar.getAxis("right")
        axis.setTextPen(pg.mkPen(INK))
        axis.setPen(pg.mkPen(FRAME_RGB))
        axis.setTicks([[(v, f"{v:g}") for v in (-2, -1, 0, 1, 2)]])
        self._colorbar.setMinimumHeight(40)
        self._colorbar.setPreferredHeight(40)
        grid.addItem(self._colorbar, row=ROW_WEIGHTS, col=col)
        self._mask_key = pg.LabelItem("", justify="left")
        grid.addItem(self._mask_key, row=ROW_MASK, col=col)

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
            seed = random.randrange(self._seed_spin.maximum() + 1)
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
        column = self._columns[key]
        weights = column.weights.displayed()
        assert weights is not None
        return weights, column.mask.displayed()

    def caption(self, key: str) -> str:
        """The plain sparsity caption of column ``key`` (e.g. ``25.0% pruned: 16 of 64``)."""
        return self._columns[key].caption_text

    def note(self, key: str) -> str:
        """The second caption line of column ``key`` (what was zeroed, or why not)."""
        return self._results[key].note

    def is_column_enabled(self, key: str) -> bool:
        """Whether column ``key``'s method applies to the current matrix."""
        return self._columns[key].enabled

    def column_tooltip(self, key: str) -> str:
        """The tooltip of column ``key``'s header (the method's summary)."""
        return self._columns[key].title.toolTip()

    def set_values_visible(self, on: bool) -> None:
        """Write weight values into the cells (only for N ≤ 10)."""
        self._values_visible = bool(on)
        with QSignalBlocker(self._values_box):
            self._values_box.setChecked(self._values_visible)
        self._refresh()

    def set_presentation(self, on: bool) -> None:
        """Large fonts and only the essential controls (for projectors), or back."""
        if bool(on) == self._presentation:
            return
        self._presentation = bool(on)
        with QSignalBlocker(self._presentation_button):
            self._presentation_button.setChecked(self._presentation)
        scale = self.font_scale()
        font = QFont(self._base_font)
        font.setPointSizeF(self._base_font.pointSizeF() * scale)
        self.setFont(font)
        for child in self._controls.findChildren(QWidget):
            child.setFont(font)
        self._amount_slider.setDecimals(0)  # makes the slider's label re-measure its text
        for widget in self._secondary:
            widget.setVisible(not self._presentation)
        self._colorbar.getAxis("right").setStyle(tickFont=scaled_font(scale))
        for column in self._columns.values():
            column.set_font_scale(scale)
        self._refresh()
        self._fit_timer.start(0)
        self.presentation_changed.emit(self._presentation)

    def is_presentation(self) -> bool:
        """Whether presentation mode is on."""
        return self._presentation

    def font_scale(self) -> float:
        """How much larger than normal the text is (2.0 in presentation mode)."""
        return PRESENTATION_SCALE if self._presentation else 1.0

    def column_items(self, key: str) -> list[QGraphicsItem]:
        """The graphics items of column ``key``, top to bottom (for exporting one column)."""
        return self._columns[key].items()

    def export(self, path: str | Path, column: str | None = None, scale: float = 1.0) -> Path:
        """Save the figure (or one column) to ``path``; ``.png`` or ``.svg`` picks the format.

        The controls are not part of the picture; ``scale`` multiplies PNG pixels.
        """
        items = self.figure_items() if column is None else self.column_items(column)
        return export_widget(items, path, scale=scale)

    def figure_items(self) -> list[QGraphicsItem]:
        """Every graphics item of the figure (without the empty space below it)."""
        items: list[QGraphicsItem] = [self._figure_title, *self._row_labels.values()]
        for column in self._columns.values():
            items.extend(column.items())
        items.extend((self._legend_header, self._colorbar, self._mask_key))
        return items

    # -- internals ------------------------------------------------------------
    def _update(self, settings: LabSettings) -> None:
        if settings == self._settings and self._results:
            return
        if (settings.size, settings.seed) != (self._settings.size, self._settings.seed):
            self._matrix = random_matrix(settings.size, settings.seed)
        self._settings = settings
        self._sync_controls()
        self._refresh()
        self.settings_changed.emit()

    def _sync_controls(self) -> None:
        s = self._settings
        pairs = (
            (self._size_spin, s.size),
            (self._seed_spin, s.seed),
            (self._amount_slider, round(s.amount * 100)),
            (self._nm_n, s.nm[0]),
            (self._nm_m, s.nm[1]),
            (self._block_rows, s.block[0]),
            (self._block_cols, s.block[1]),
        )
        for widget, value in pairs:
            with QSignalBlocker(widget):
                widget.setValue(value)
        self._values_box.setEnabled(s.size <= VALUE_TEXT_MAX_SIZE)

    def _refresh(self) -> None:
        scale = self.font_scale()
        values = self._values_visible and self._settings.size <= VALUE_TEXT_MAX_SIZE
        for key, column in self._columns.items():
            result = compute_column(key, self._matrix, self._settings)
            self._results[key] = result
            column.set_title(*column_title(key, self._settings), scale)
            column.set_tooltip(method_tooltip(key, self._settings))
            column.show(self._matrix, result, values, scale)
        self._refresh_labels(scale)

    def _refresh_labels(self, scale: float) -> None:
        s = self._settings
        set_label(
            self._figure_title,
            f"Pruning a {s.size}×{s.size} random matrix (seed {s.seed}) by "
            f"{100 * s.amount:.0f}%: same weights, five patterns",
            size=f"{FIGURE_TITLE_PT * scale}pt",
            color=INK,
            bold=True,
        )
        small = f"{CAPTION_PT * scale}pt"
        set_label(self._legend_header, "weight", size=small, color=MUTED)
        for row, text in ((ROW_WEIGHTS, "pruned weights"), (ROW_MASK, "mask")):
            set_label(self._row_labels[row], text, size=small, color=MUTED)
        swatch = f"font-size:{1.5 * CAPTION_PT * scale:.1f}pt"
        set_label(
            self._mask_key,
            f"<span style='color:{hex_color(KEPT_RGB)}; {swatch}'>■</span> kept<br>"
            f"<span style='color:{hex_color(PRUNED_RGB)}; {swatch}'>■</span> pruned<br><br>"
            f"<span style='color:{MUTED}'>× = zeroed</span>",
            size=small,
            color=INK,
        )

    def _ask_export(self, column: str | None) -> None:
        name = "pattern_lab" if column is None else f"pattern_lab_{column}"
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", f"{name}.png", FILE_FILTER)
        if path:
            self.export(path, column=column, scale=2.0)
