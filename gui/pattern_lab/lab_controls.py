"""The pattern lab's controls: size, seed, amount, N:M, block, values, presentation, export.

:class:`LabControls` holds the lab's control widgets in a
:class:`~gui.pattern_lab.flow_layout.FlowLayout` (as many rows as the width
needs; widgets that belong together stay on one row) and a message line for
the outcome of an export. It shows settings (:meth:`LabControls.sync`) and
asks for exports (:attr:`LabControls.export_requested`); the lab connects the
widgets to what they change.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSpinBox,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.viz.pattern_figure import (
    KEYS,
    MAX_SIZE,
    MIN_SIZE,
    VALUE_TEXT_MAX_SIZE,
    LabSettings,
    column_title,
)
from gui.pattern_lab.flow_layout import FlowLayout
from gui.widgets.colormaps import ALARM_RGB, MUTED, hex_color


class LabControls(QWidget):
    """The lab's control widgets, wrapping into rows (see the module docstring).

    The widgets are attributes (``size_spin``, ``seed_spin``, ``regenerate_button``,
    ``amount_slider``, ``nm_n_spin``, ``nm_m_spin``, ``block_rows_spin``,
    ``block_cols_spin``, ``values_box``, ``presentation_button``, ``export_button``)
    for the lab to connect.

    Args:
        parent: the Qt parent (the lab).
        settings: the settings that name the export menu's columns.

    Signals:
        export_requested(object): export the column with this key, or the whole
            figure for None.
    """

    export_requested = Signal(object)

    def __init__(self, parent: QWidget, settings: LabSettings) -> None:
        super().__init__(parent)
        self.setObjectName("labControls")
        self._column_actions: dict[str, QAction] = {}  # the export menu's, by column
        flow = FlowLayout(self)
        flow.setContentsMargins(0, 0, 0, 0)
        self._flow = flow
        self.size_spin = self._spin(MIN_SIZE, MAX_SIZE, "Matrix size (N × N)", "sizeSpin")
        self.seed_spin = self._spin(
            0,
            999_999,
            "Random seed of the matrix: the same seed draws the same weights",
            "seedSpin",
        )
        self.regenerate_button = QPushButton("Regenerate", self)
        self.regenerate_button.setObjectName("regenerateButton")
        self.regenerate_button.setToolTip("Draw a new random seed")
        self.amount_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal, self)
        self.amount_slider.setObjectName("amountSlider")
        self.amount_slider.setRange(0.0, 100.0)
        self.amount_slider.setSingleStep(1.0)
        self.amount_slider.setDecimals(0)
        self.amount_slider.setToolTip(
            "Fraction pruned by the amount-based methods (%); N:M keeps N of every M instead"
        )
        self.amount_slider.setMinimumWidth(200)
        self.nm_n_spin = self._spin(0, 16, "N: weights kept in each group", "nmNSpin")
        self.nm_m_spin = self._spin(1, 16, "M: size of each group of consecutive inputs", "nmMSpin")
        self.block_rows_spin = self._spin(1, 16, "Block height (rows)", "blockRowsSpin")
        self.block_cols_spin = self._spin(1, 16, "Block width (columns)", "blockColsSpin")
        self.values_box = QCheckBox("Values", self)
        self.values_box.setObjectName("valuesBox")
        self.values_box.setChecked(True)
        self.values_box.setToolTip(
            f"Write weights into cells (N ≤ {VALUE_TEXT_MAX_SIZE}, when the cells are large enough)"
        )
        self.presentation_button = QPushButton("Presentation", self)
        self.presentation_button.setObjectName("presentationButton")
        self.presentation_button.setCheckable(True)
        self.presentation_button.setToolTip(
            "Double-size text for projectors, every control kept (F11 in the window: full screen)"
        )
        self.export_button = self._build_export_button(settings)
        self._message = QLabel("", self)
        self._message.setObjectName("labMessage")
        self._message.setWordWrap(True)
        groups: list[list[QWidget]] = [
            [self._label("Size"), self.size_spin],
            [self._label("Seed"), self.seed_spin, self.regenerate_button],
            [self._label("Amount %"), self.amount_slider],
            [self._label("N:M"), self.nm_n_spin, self._label(":"), self.nm_m_spin],
            [self._label("Block"), self.block_rows_spin, self._label("×"), self.block_cols_spin],
            [self.values_box],
            [self.presentation_button, self.export_button],
        ]
        for group in groups:
            flow.addWidget(self._group(group))
        flow.addWidget(self._message)
        self._message.hide()

    # -- construction ---------------------------------------------------------
    def _group(self, widgets: list[QWidget]) -> QWidget:
        """Widgets that stay together on one row of the controls."""
        box = QWidget(self)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        for widget in widgets:
            row.addWidget(widget, stretch=1 if widget is self.amount_slider else 0)
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

    def _build_export_button(self, settings: LabSettings) -> QPushButton:
        button = QPushButton("Export", self)
        button.setObjectName("exportButton")
        button.setToolTip(
            "Save the figure or one column, without the controls, as PNG (1x–3x) or SVG"
        )
        menu = QMenu(button)
        whole = QAction("Whole figure…", menu)
        whole.triggered.connect(lambda: self.export_requested.emit(None))
        menu.addAction(whole)
        menu.addSeparator()
        for key in KEYS:
            action = QAction(_export_text(key, settings), menu)
            action.triggered.connect(lambda _=False, k=key: self.export_requested.emit(k))
            menu.addAction(action)
            self._column_actions[key] = action
        button.setMenu(menu)
        return button

    # -- showing --------------------------------------------------------------
    def sync(self, settings: LabSettings) -> None:
        """Show ``settings`` in the widgets, without their signals."""
        s = settings
        pairs = (
            (self.size_spin, s.size),
            (self.seed_spin, s.seed),
            (self.amount_slider, round(s.amount * 100)),
            (self.nm_n_spin, s.nm[0]),
            (self.nm_m_spin, s.nm[1]),
            (self.block_rows_spin, s.block[0]),
            (self.block_cols_spin, s.block[1]),
        )
        for widget, value in pairs:
            with QSignalBlocker(widget):
                widget.setValue(value)
        self.values_box.setEnabled(s.size <= VALUE_TEXT_MAX_SIZE)
        for key, action in self._column_actions.items():  # "N:M (2:4)" follows the spins
            action.setText(_export_text(key, s))

    def apply_font(self, font: QFont) -> None:
        """Use ``font`` in every control and re-flow the rows (presentation mode)."""
        for child in self.findChildren(QWidget):
            child.setFont(font)
        self.amount_slider.setDecimals(0)  # makes the slider's label re-measure its text
        self._flow.invalidate()

    def show_message(self, text: str, error: bool) -> None:
        """Show ``text`` on the message line (hidden when empty), in red for an ``error``."""
        color = hex_color(ALARM_RGB) if error else MUTED
        self._message.setStyleSheet(f"color: {color};")
        self._message.setText(text)
        self._message.setVisible(bool(text))


def _export_text(key: str, settings: LabSettings) -> str:
    """The export menu's entry for column ``key``, titled as the column is now."""
    return f"{column_title(key, settings)[0]} column…"
