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

What each column shows is worked out, without Qt, in ``core.viz.pattern_figure``.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPoint, QRect, QSettings, QSignalBlocker, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.viz.pattern_figure import (
    KEYS,
    MAX_SIZE,
    MIN_SIZE,
    VALUE_TEXT_MAX_SIZE,
    ColumnResult,
    LabSettings,
    column_title,
    compute_column,
    random_matrix,
)
from gui.pattern_lab.pattern_views import FigurePlan, PatternFigure
from gui.widgets.colormaps import ALARM_RGB, MUTED, hex_color
from gui.widgets.export import DEFAULT_FILTER, FILE_FILTER, export_widget, filter_scale

PRESENTATION_SCALE = 2.0
"""How much larger the controls' text is in presentation mode."""
FIGURE_PRESENTATION_SCALE = 1.5
"""How much larger the figure's text is in presentation mode (less than the
controls', so that the matrices keep most of the room on a 1366 x 768 projector)."""
FIGURE_MIN_SIZE = QSize(360, 300)
"""The figure never gets smaller than this (the tab scrolls instead)."""
EXPORT_MIN_SIZE = QSizeF(1000, 560)
"""Exports lay the figure out at least this large (screen pixels): five columns
side by side with room for the cell values, whatever the tab's size."""


class FlowLayout(QLayout):
    """Lays widgets out left to right, wrapping into a new row when the width runs out.

    Each row's widgets are centred vertically; hidden widgets take no room.
    The height follows the width (``heightForWidth``), so a parent layout
    gives the controls as many rows as they need.
    """

    def __init__(self, parent: QWidget | None = None, spacing: int = 12, row_gap: int = 6) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._spacing = spacing
        self._row_gap = row_gap

    def addItem(self, item: QLayoutItem) -> None:
        """Append ``item`` (``addWidget`` ends here)."""
        self._items.append(item)

    def count(self) -> int:
        """How many items the layout holds."""
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        """The item at ``index``, or None."""
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        """Remove and return the item at ``index``, or None."""
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        """Only the height grows (with the number of rows)."""
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        """The height depends on the width."""
        return True

    def heightForWidth(self, width: int) -> int:
        """The height the rows take at ``width``."""
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        """Place the items in ``rect``."""
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        """One row of everything."""
        visible = [item.sizeHint() for item in self._items if not item.isEmpty()]
        width = sum(s.width() for s in visible) + self._spacing * max(0, len(visible) - 1)
        height = max((s.height() for s in visible), default=0)
        return QSize(width, height) + self._margins()

    def minimumSize(self) -> QSize:
        """As wide as the widest item."""
        size = QSize()
        for item in self._items:
            if not item.isEmpty():
                size = size.expandedTo(item.minimumSize())
        return size + self._margins()

    def _margins(self) -> QSize:
        m = self.contentsMargins()
        return QSize(m.left() + m.right(), m.top() + m.bottom())

    def _arrange(self, rect: QRect, move: bool) -> int:
        area = rect.marginsRemoved(self.contentsMargins())
        rows: list[list[QLayoutItem]] = [[]]
        x = 0
        for item in (i for i in self._items if not i.isEmpty()):
            width = item.sizeHint().width()
            if rows[-1] and x + self._spacing + width > area.width():
                rows.append([])
                x = 0
            x += (self._spacing if rows[-1] else 0) + width
            rows[-1].append(item)
        y = area.y()
        for row in rows:
            height = max((i.sizeHint().height() for i in row), default=0)
            x = area.x()
            for item in row:
                hint = item.sizeHint()
                if move:
                    top = y + (height - hint.height()) // 2
                    item.setGeometry(
                        QRect(QPoint(x, top), QSize(min(hint.width(), area.width()), hint.height()))
                    )
                x += hint.width() + self._spacing
            y += height + self._row_gap
        margins = self.contentsMargins()
        return y - self._row_gap - rect.y() + margins.bottom()


class FigureView(pg.GraphicsView):
    """The view of the figure: white, and asking for no more than its minimum size.

    A ``QGraphicsView`` asks for the size of its scene, which here is its own
    last size; the tab would then never let it shrink (the controls' rows
    follow the width, so the tab sizes the lab from what it asks for).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMinimumSize(FIGURE_MIN_SIZE)

    def sizeHint(self) -> QSize:
        """The minimum size: the figure fits whatever room it gets."""
        return self.minimumSize()


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
        self._sync_controls()
        self._refresh()

    # -- construction ---------------------------------------------------------
    def _build_controls(self) -> None:
        self.controls = QWidget(self)
        self.controls.setObjectName("labControls")
        flow = FlowLayout(self.controls)
        flow.setContentsMargins(0, 0, 0, 0)
        self._flow = flow
        self._size_spin = self._spin(MIN_SIZE, MAX_SIZE, "Matrix size (N × N)", "sizeSpin")
        self._seed_spin = self._spin(
            0,
            999_999,
            "Random seed of the matrix: the same seed draws the same weights",
            "seedSpin",
        )
        self._regenerate = QPushButton("Regenerate", self)
        self._regenerate.setObjectName("regenerateButton")
        self._regenerate.setToolTip("Draw a new random seed")
        self._amount_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal, self)
        self._amount_slider.setObjectName("amountSlider")
        self._amount_slider.setRange(0.0, 100.0)
        self._amount_slider.setSingleStep(1.0)
        self._amount_slider.setDecimals(0)
        self._amount_slider.setToolTip(
            "Fraction pruned by the amount-based methods (%); N:M keeps N of every M instead"
        )
        self._amount_slider.setMinimumWidth(200)
        self._nm_n = self._spin(0, 16, "N: weights kept in each group", "nmNSpin")
        self._nm_m = self._spin(1, 16, "M: size of each group of consecutive inputs", "nmMSpin")
        self._block_rows = self._spin(1, 16, "Block height (rows)", "blockRowsSpin")
        self._block_cols = self._spin(1, 16, "Block width (columns)", "blockColsSpin")
        self._values_box = QCheckBox("Values", self)
        self._values_box.setObjectName("valuesBox")
        self._values_box.setChecked(True)
        self._values_box.setToolTip(
            f"Write weights into cells (N ≤ {VALUE_TEXT_MAX_SIZE}, when the cells are large enough)"
        )
        self._presentation_button = QPushButton("Presentation", self)
        self._presentation_button.setObjectName("presentationButton")
        self._presentation_button.setCheckable(True)
        self._presentation_button.setToolTip(
            "Double-size text for projectors, every control kept (F11 in the window: full screen)"
        )
        self._export_button = self._build_export_button()
        self._message = QLabel("", self)
        self._message.setObjectName("labMessage")
        self._message.setWordWrap(True)
        groups: list[list[QWidget]] = [
            [self._label("Size"), self._size_spin],
            [self._label("Seed"), self._seed_spin, self._regenerate],
            [self._label("Amount %"), self._amount_slider],
            [self._label("N:M"), self._nm_n, self._label(":"), self._nm_m],
            [self._label("Block"), self._block_rows, self._label("×"), self._block_cols],
            [self._values_box],
            [self._presentation_button, self._export_button],
        ]
        for group in groups:
            flow.addWidget(self._group(group))
        flow.addWidget(self._message)
        self._message.hide()
        self._connect_controls()

    def _group(self, widgets: list[QWidget]) -> QWidget:
        """Widgets that stay together on one row of the controls."""
        box = QWidget(self.controls)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for widget in widgets:
            row.addWidget(widget, stretch=1 if widget is self._amount_slider else 0)
        return box

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
        button.setToolTip(
            "Save the figure or one column, without the controls, as PNG (1x–3x) or SVG"
        )
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
        """Write weight values into the cells (only for N ≤ 10)."""
        self._values_visible = bool(on)
        with QSignalBlocker(self._values_box):
            self._values_box.setChecked(self._values_visible)
        self._refresh()

    def set_presentation(self, on: bool) -> None:
        """Large text for projectors, or back to normal.

        Every control stays; the controls' text is :data:`PRESENTATION_SCALE`
        times normal, the figure's :data:`FIGURE_PRESENTATION_SCALE` times.
        """
        if bool(on) == self._presentation:
            return
        self._presentation = bool(on)
        with QSignalBlocker(self._presentation_button):
            self._presentation_button.setChecked(self._presentation)
        font = QFont(self._base_font)
        font.setPointSizeF(self._base_font.pointSizeF() * self.font_scale())
        self.setFont(font)
        for child in self.controls.findChildren(QWidget):
            child.setFont(font)
        self._amount_slider.setDecimals(0)  # makes the slider's label re-measure its text
        self._flow.invalidate()
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
            self._show_message(f"Could not export {Path(path).name}: {exc}", error=True)
            return
        settings.setValue("last_dir", str(written.resolve().parent))
        self._show_message(f"Saved {written.name}", error=False)

    def _show_message(self, text: str, error: bool) -> None:
        color = hex_color(ALARM_RGB) if error else MUTED
        self._message.setStyleSheet(f"color: {color};")
        self._message.setText(text)
        self._message.setVisible(bool(text))
