"""Controls for pruning the layers selected in the model tree.

:class:`LayerControls` lets the user pick a pruning method, its parameters and
an amount, previews the resulting masks live (throttled, never piling up
jobs) and applies, resets or makes permanent the pruning of the selected
layers. Everything goes through the :class:`~gui.controller.SessionController`.

Invalid combinations (a count above the layer's unit count, an N:M width that
does not divide, a structured ``dim`` out of range, a 1-D target for a
structured method, ...) never raise out of the widget: they are shown in a red
status line and Apply stays disabled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.errors import PruningError
from core.methods import METHODS, make_method
from core.operations import LayerPrune, Mode, Reset

if TYPE_CHECKING:
    from PySide6.QtCore import QSize

    from core.masks import PackedMask
    from core.methods.base import PruningMethod
    from core.session import PruningSession
    from core.targets import TargetInfo
    from gui.controller import SessionController

#: Display names of the methods offered here (custom masks come from painting).
METHOD_LABELS: dict[str, str] = {
    "l1_unstructured": "L1 unstructured",
    "random_unstructured": "Random unstructured",
    "ln_structured": "Ln structured",
    "random_structured": "Random structured",
    "n_m": "N:M semi-structured",
    "block": "Block",
    "threshold": "Threshold |w| ≤",
    "quantile": "Quantile rule",
}
#: Registry names that are not offered in the method combo.
HIDDEN_METHODS: frozenset[str] = frozenset({"custom_mask"})
#: Delay between the last change and the preview it triggers.
PREVIEW_DELAY_MS = 120
#: Norms offered for Ln structured pruning: (label, value for the method).
LN_NORMS: tuple[tuple[str, Any], ...] = (
    ("L1  (sum |w|)", 1),
    ("L2  (Euclidean)", 2),
    ("L∞  (max |w|)", float("inf")),
    ("L−∞  (min |w|)", float("-inf")),
    ("Frobenius", "fro"),
)
MAX_SEED = 2**31 - 1

ERROR_STYLE = "color: #c0392b;"
PREVIEW_STYLE = "color: #1f5fa8; font-style: italic;"
INFO_STYLE = "color: palette(mid);"
NOTE_STYLE = "color: #6b6b6b; font-size: 9pt;"


# -- small widget helpers -------------------------------------------------------------


def method_label(name: str) -> str:
    """The display name of a registry method name."""
    return METHOD_LABELS.get(name, name.replace("_", " ").capitalize())


def offered_methods() -> list[str]:
    """Registry names offered in the combo, in registry order."""
    return [name for name in METHODS if name not in HIDDEN_METHODS]


def make_form() -> QFormLayout:
    """A form layout with the spacing every form of the panel shares."""
    form = QFormLayout()
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
    form.setHorizontalSpacing(10)
    form.setVerticalSpacing(6)
    form.setContentsMargins(8, 6, 8, 8)
    return form


def form_label(text: str, tip: str) -> QLabel:
    """A form row label of the width every form uses, so columns line up across groups."""
    label = QLabel(text)
    label.setToolTip(tip)
    label.setMinimumWidth(label.fontMetrics().horizontalAdvance("M" * 6))
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return label


def add_row(form: QFormLayout, text: str, field: QWidget, tip: str) -> None:
    """Add ``field`` under label ``text``, with ``tip`` on both."""
    field.setToolTip(tip)
    form.addRow(form_label(text, tip), field)


def note_label(text: str = "") -> QLabel:
    """A small grey, word-wrapped explanation line."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


def percent_slider(tip: str) -> QLabeledDoubleSlider:
    """A 0..100 slider with one decimal and an editable value box."""
    slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    slider.setRange(0.0, 100.0)
    slider.setDecimals(1)
    slider.setSingleStep(0.1)
    slider.setPageStep(5.0)
    slider.setToolTip(tip)
    return slider


def int_spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    """An integer spin box with range and tooltip."""
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setAccelerated(True)
    return spin


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """A weight of 2+ dimensions viewed as ``(shape[0], prod(shape[1:]))``."""
    return shape[0], math.prod(shape[1:])


def require_matrix(info: TargetInfo, what: str) -> None:
    """Raise when ``info`` has fewer than two dimensions."""
    if len(info.shape) < 2:
        raise PruningError(
            f"{info.name}: {what} needs a weight with at least 2 dimensions, "
            f"this one has shape {info.shape}"
        )


def check_dim(info: TargetInfo, dim: int) -> int:
    """``dim`` made non-negative for ``info``'s shape; raises when out of range."""
    ndim = len(info.shape)
    if not -ndim <= dim < ndim:
        raise PruningError(f"{info.name}: dim {dim} is out of range for a {ndim}-D weight")
    return dim % ndim


# -- parameter pages --------------------------------------------------------------------


class ParamPage(QWidget):
    """The parameters of one method besides the shared amount.

    Subclasses add their fields to :attr:`form`, say what a "unit" of a count
    is for a shape (:meth:`units`) and check a target (:meth:`check`).
    """

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.form = make_form()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(self.form)

    @property
    def empty(self) -> bool:
        """Whether the page has no fields (its group box is hidden then)."""
        return self.form.rowCount() == 0

    def params(self) -> dict[str, Any]:
        """The method's keyword arguments (without ``amount`` unless the page owns it)."""
        return {}

    def set_targets(self, infos: list[TargetInfo], session: PruningSession) -> None:
        """Adapt ranges to the selected layers."""

    def units(self, shape: tuple[int, ...]) -> tuple[int, str]:
        """How many units a count refers to in a weight of ``shape``, and their noun."""
        return math.prod(shape), "weights"

    def remaining(self, shape: tuple[int, ...], mask: PackedMask) -> int:
        """How many units of a weight pruned by ``mask`` are still (partly) kept."""
        return mask.kept

    def check(self, info: TargetInfo) -> None:
        """Raise :class:`PruningError` when the method cannot prune ``info``."""

    def owns_amount(self) -> bool:
        """Whether the page holds the method's amount itself (the quantile does)."""
        return False

    def set_percent(self, percent: float) -> None:
        """Set a page-owned amount (only meaningful where :meth:`owns_amount`)."""


class UnstructuredPage(ParamPage):
    """L1 / random unstructured: a seed for the random one."""

    def __init__(self, seeded: bool) -> None:
        super().__init__()
        self.seed: QSpinBox | None = None
        if seeded:
            self.seed = int_spin(
                0, MAX_SEED, 0, "Random seed: the same seed picks the same weights."
            )
            self.seed.valueChanged.connect(self.changed)
            add_row(self.form, "Seed", self.seed, self.seed.toolTip())

    def params(self) -> dict[str, Any]:
        return {} if self.seed is None else {"seed": self.seed.value()}


class StructuredPage(ParamPage):
    """Ln / random structured: the channel dimension, and a norm or a seed."""

    def __init__(self, seeded: bool) -> None:
        super().__init__()
        self.dim = int_spin(-2, 1, 0, "")
        self.dim.valueChanged.connect(self.changed)
        add_row(
            self.form,
            "Dim",
            self.dim,
            "Dimension whose slices are pruned whole: 0 = output channels / rows, "
            "1 = input channels / columns; negative counts from the end.",
        )
        self.norm: QComboBox | None = None
        self.seed: QSpinBox | None = None
        if seeded:
            self.seed = int_spin(
                0, MAX_SEED, 0, "Random seed: the same seed picks the same channels."
            )
            self.seed.valueChanged.connect(self.changed)
            add_row(self.form, "Seed", self.seed, self.seed.toolTip())
        else:
            self.norm = QComboBox()
            for text, value in LN_NORMS:
                self.norm.addItem(text, value)
            self.norm.setCurrentIndex(1)
            self.norm.currentIndexChanged.connect(self.changed)
            add_row(
                self.form, "Norm", self.norm, "Norm ranking the channels: the smallest go first."
            )

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dim": self.dim.value()}
        if self.norm is not None:
            out["n"] = self.norm.currentData()
        if self.seed is not None:
            out["seed"] = self.seed.value()
        return out

    def set_targets(self, infos: list[TargetInfo], session: PruningSession) -> None:
        ndim = max(2, min(len(info.shape) for info in infos))
        self.dim.setRange(-ndim, ndim - 1)

    def units(self, shape: tuple[int, ...]) -> tuple[int, str]:
        dim = self.dim.value()
        if len(shape) < 2 or not -len(shape) <= dim < len(shape):
            return 0, "channels"
        return shape[dim], "channels"

    def remaining(self, shape: tuple[int, ...], mask: PackedMask) -> int:
        dim = self.dim.value() % len(shape)
        kept = mask.to_bool()
        other = [d for d in range(kept.dim()) if d != dim]
        return int((kept.sum(dim=other) != 0).sum())

    def check(self, info: TargetInfo) -> None:
        require_matrix(info, "structured pruning")
        check_dim(info, self.dim.value())


class NMPage(ParamPage):
    """N:M semi-structured: keep N of every M consecutive inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.n = int_spin(0, 4, 2, "N: how many weights to keep in each group of M.")
        self.m = int_spin(1, 64, 4, "M: the size of each group of consecutive input weights.")
        self.m.valueChanged.connect(self._m_changed)
        self.n.valueChanged.connect(self.changed)
        add_row(self.form, "Keep N", self.n, self.n.toolTip())
        add_row(self.form, "Of M", self.m, self.m.toolTip())

    def _m_changed(self, m: int) -> None:
        with QSignalBlocker(self.n):
            self.n.setMaximum(m)
        self.changed.emit()

    def params(self) -> dict[str, Any]:
        return {"n": self.n.value(), "m": self.m.value()}

    def check(self, info: TargetInfo) -> None:
        require_matrix(info, "N:M sparsity")
        width = matrix_shape(info.shape)[1]
        m = self.m.value()
        if width % m:
            raise PruningError(
                f"{info.name}: {self.n.value()}:{m} needs an input width divisible by {m}, "
                f"this weight has {width} inputs per row"
            )


class BlockPage(ParamPage):
    """Block sparsity: block size and the norm ranking blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = int_spin(1, 1024, 4, "Block height, in rows of the weight matrix.")
        self.cols = int_spin(1, 1024, 4, "Block width, in (flattened) input columns.")
        self.norm = QComboBox()
        self.norm.addItem("L1  (sum |w|)", 1)
        self.norm.addItem("L2  (sum w²)", 2)
        self.norm.setCurrentIndex(1)
        for spin in (self.rows, self.cols):
            spin.valueChanged.connect(self.changed)
        self.norm.currentIndexChanged.connect(self.changed)
        add_row(self.form, "Block rows", self.rows, self.rows.toolTip())
        add_row(self.form, "Block cols", self.cols, self.cols.toolTip())
        add_row(self.form, "Norm", self.norm, "Norm ranking the blocks: the smallest go first.")

    def params(self) -> dict[str, Any]:
        return {
            "block_rows": self.rows.value(),
            "block_cols": self.cols.value(),
            "n": self.norm.currentData(),
        }

    def units(self, shape: tuple[int, ...]) -> tuple[int, str]:
        if len(shape) < 2:
            return 0, "blocks"
        rows, cols = matrix_shape(shape)
        return math.ceil(rows / self.rows.value()) * math.ceil(cols / self.cols.value()), "blocks"

    def remaining(self, shape: tuple[int, ...], mask: PackedMask) -> int:
        rows, cols = matrix_shape(shape)
        br, bc = self.rows.value(), self.cols.value()
        kept = mask.to_numpy().reshape(rows, cols)
        padded = np.zeros((math.ceil(rows / br) * br, math.ceil(cols / bc) * bc), dtype=bool)
        padded[:rows, :cols] = kept
        grid = padded.reshape(padded.shape[0] // br, br, padded.shape[1] // bc, bc)
        return int(grid.any(axis=(1, 3)).sum())

    def check(self, info: TargetInfo) -> None:
        require_matrix(info, "block sparsity")


class ThresholdPage(ParamPage):
    """Magnitude threshold: prune every |w| at or below a value."""

    def __init__(self) -> None:
        super().__init__()
        self.value = QDoubleSpinBox()
        self.value.setRange(0.0, 1e9)
        self.value.setDecimals(4)
        self.value.setSingleStep(0.001)
        self.value.setAccelerated(True)
        self.value.setStepType(QAbstractSpinBox.StepType.DefaultStepType)
        self.value.valueChanged.connect(self.changed)
        add_row(
            self.form, "|w| ≤", self.value, "Every weight whose magnitude is at or below this goes."
        )
        self.scale = note_label()
        self.scale.setWordWrap(False)
        self.form.addRow("", self.scale)

    def params(self) -> dict[str, Any]:
        return {"value": float(self.value.value())}

    def set_targets(self, infos: list[TargetInfo], session: PruningSession) -> None:
        top = max(
            (float(session.effective(i.name).abs().max()) for i in infos if i.numel), default=0.0
        )
        step = 10.0 ** math.floor(math.log10(top / 100.0)) if top > 0 else 0.001
        self.value.setDecimals(max(3, 1 - math.floor(math.log10(step))))
        self.value.setSingleStep(step)
        self.scale.setText(f"Largest |w| in the selection: {top:.4g}")


class QuantilePage(ParamPage):
    """The quantile rule: prune |w| at or below the q-quantile of |w|."""

    def __init__(self) -> None:
        super().__init__()
        self.quantile = percent_slider(
            "Quantile q in percent: weights with |w| at or below the q-quantile of |w| go."
        )
        self.quantile.setValue(50.0)
        self.quantile.valueChanged.connect(lambda _value: self.changed.emit())
        add_row(self.form, "Quantile %", self.quantile, self.quantile.toolTip())

    def params(self) -> dict[str, Any]:
        return {"amount": round(float(self.quantile.value()) / 100.0, 6)}

    def owns_amount(self) -> bool:
        return True

    def set_percent(self, percent: float) -> None:
        self.quantile.setValue(percent)


def make_page(name: str) -> ParamPage:
    """The parameter page of registry method ``name``."""
    pages = {
        "l1_unstructured": lambda: UnstructuredPage(seeded=False),
        "random_unstructured": lambda: UnstructuredPage(seeded=True),
        "ln_structured": lambda: StructuredPage(seeded=False),
        "random_structured": lambda: StructuredPage(seeded=True),
        "n_m": NMPage,
        "block": BlockPage,
        "threshold": ThresholdPage,
        "quantile": QuantilePage,
    }
    factory = pages.get(name, lambda: UnstructuredPage(seeded=False))
    return factory()


class CurrentPageStack(QStackedWidget):
    """A stacked widget sized by its current page, not by its largest one."""

    def sizeHint(self) -> QSize:
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()


# -- the amount box -----------------------------------------------------------------------


class AmountBox(QGroupBox):
    """The shared amount: a percent slider, or a count of units (weights, channels, blocks)."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__("Amount")
        self._units = 0
        self._noun = "weights"
        self.percent_radio = QRadioButton("Percent")
        self.count_radio = QRadioButton("Count")
        self.percent_radio.setChecked(True)
        self.percent_radio.setToolTip("Give the amount as a percentage of the units.")
        self.count_radio.setToolTip("Give the amount as an exact number of units.")
        self.slider = percent_slider("How much to prune, in percent (see the mode below).")
        self.slider.setValue(50.0)
        self.count = int_spin(0, 0, 0, "How many units to prune (see the mode below).")
        self.value_stack = CurrentPageStack()
        self.value_stack.addWidget(self.slider)
        self.value_stack.addWidget(self.count)
        self._build_layout()
        self.percent_radio.toggled.connect(self._unit_toggled)
        self.slider.valueChanged.connect(lambda _value: self.changed.emit())
        self.count.valueChanged.connect(self.changed)

    def _build_layout(self) -> None:
        units = QWidget()
        row = QHBoxLayout(units)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(12)
        group = QButtonGroup(self)
        for radio in (self.percent_radio, self.count_radio):
            group.addButton(radio)
            row.addWidget(radio)
        row.addStretch(1)
        form = make_form()
        add_row(form, "Unit", units, "Percent of the units, or an exact count of them.")
        form.addRow(form_label("Amount", self.slider.toolTip()), self.value_stack)
        self.setLayout(form)

    def _unit_toggled(self, percent: bool) -> None:
        if percent:
            value = 100.0 * self.count.value() / self._units if self._units else 0.0
            with QSignalBlocker(self.slider):
                self.slider.setValue(round(value, 1))
        else:
            with QSignalBlocker(self.count):
                self.count.setValue(round(self.percent() / 100.0 * self._units))
        self.value_stack.setCurrentIndex(0 if percent else 1)
        self.value_stack.updateGeometry()
        self.changed.emit()

    def is_count(self) -> bool:
        """Whether the amount is a count."""
        return self.count_radio.isChecked()

    def percent(self) -> float:
        """The slider's value in percent (one decimal)."""
        return round(float(self.slider.value()), 1)

    def set_percent(self, percent: float) -> None:
        """Switch to percent and set the slider."""
        self.percent_radio.setChecked(True)
        self.slider.setValue(percent)

    def set_count(self, count: int) -> None:
        """Switch to count and set the spin box (clamped to the unit count)."""
        self.count_radio.setChecked(True)
        self.count.setValue(count)

    def amount(self) -> float | int:
        """The amount as the methods take it: a fraction, or an int count."""
        if self.is_count():
            return int(self.count.value())
        return round(self.percent() / 100.0, 6)

    def amount_text(self) -> str:
        """The amount for humans: ``50.0%`` or ``12 channels``."""
        return f"{self.count.value()} {self._noun}" if self.is_count() else f"{self.percent():.1f}%"

    def set_units(self, units: int, noun: str) -> None:
        """Bound the count by ``units`` (of the first target) and name them."""
        self._units, self._noun = units, noun
        with QSignalBlocker(self.count):
            self.count.setMaximum(units)
            self.count.setSuffix(f" of {units:,} {noun}")
        self.count.setToolTip(f"How many {noun} to prune (at most {units:,}; see the mode below).")


# -- the panel ------------------------------------------------------------------------------


class LayerControls(QWidget):
    """Prune the selected layers with one method (see module docstring).

    Signals:
        op_changed(op): the current :class:`LayerPrune`, or None when the
            controls are invalid or nothing is selected.
    """

    op_changed = Signal(object)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._targets: tuple[str, ...] = ()
        self._op: LayerPrune | None = None
        self._error = ""
        self._pending_apply = ""
        self._awaiting_preview = False
        self._updating = False
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._request_preview)
        self._build_widgets()
        self._build_layout()
        self._connect()
        self.set_targets(())

    # -- construction ---------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.hint = QLabel("Select one or more layers in the model tree to prune them.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #6b6b6b; padding: 6px;")
        self.target_label = QLabel()
        self.target_label.setWordWrap(True)
        self.target_label.setStyleSheet("font-weight: 600;")
        self.target_label.setToolTip("The layers the controls below act on.")
        self.method_combo = QComboBox()
        self.method_combo.setToolTip("The pruning method: which weights are chosen to be zeroed.")
        self.summary = note_label()
        self.pages: dict[str, ParamPage] = {}
        self.param_stack = CurrentPageStack()
        for name in offered_methods():
            self._add_method(name)
        self.amount_box = AmountBox()
        self.further_radio = QRadioButton()
        self.set_radio = QRadioButton()
        self.set_radio.setChecked(True)
        self.further_radio.setToolTip(
            "Prune on top of the current mask: the amount is taken from what still remains."
        )
        self.set_radio.setToolTip(
            "Recompute from the original weights, so the layer ends at exactly this sparsity."
        )
        self._build_buttons()

    def _add_method(self, name: str) -> None:
        method = METHODS[name]
        self.method_combo.addItem(method_label(name), name)
        index = self.method_combo.count() - 1
        self.method_combo.setItemData(index, method.summary, Qt.ItemDataRole.ToolTipRole)
        page = make_page(name)
        page.changed.connect(self._on_changed)
        self.pages[name] = page
        self.param_stack.addWidget(page)

    def _build_buttons(self) -> None:
        self.live_check = QCheckBox("Live preview")
        self.live_check.setChecked(True)
        self.live_check.setToolTip(
            "Show the masks the current settings would produce while you adjust them."
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("What the controls would do, or why they cannot.")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.setToolTip("Prune the selected layers with these settings (undoable).")
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Restore the selected layers' original weights (undoable).")
        self.permanent_button = QPushButton("Make permanent…")
        self.permanent_button.setToolTip(
            "Bake the zeros into the selected layers and drop their originals (cannot be undone)."
        )

    def _build_layout(self) -> None:
        self.body = QWidget()
        column = QVBoxLayout(self.body)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(8)
        column.addWidget(self.target_label)
        column.addWidget(self._method_group())
        column.addWidget(self.amount_box)
        self.param_group = self._param_group()
        column.addWidget(self.param_group)
        column.addWidget(self._mode_group())
        column.addWidget(self.live_check)
        column.addWidget(self.status)
        column.addLayout(self._button_row())
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)
        outer.addWidget(self.hint)
        outer.addWidget(scroll)

    def _method_group(self) -> QGroupBox:
        group = QGroupBox("Method")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.method_combo)
        layout.addWidget(self.summary)
        return group

    def _param_group(self) -> QGroupBox:
        group = QGroupBox("Parameters")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addWidget(self.param_stack)
        return group

    def _mode_group(self) -> QGroupBox:
        group = QGroupBox("Mode")
        group.setToolTip("How the amount relates to what is already pruned.")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(4)
        buttons = QButtonGroup(self)
        for radio in (self.set_radio, self.further_radio):
            buttons.addButton(radio)
            layout.addWidget(radio)
        return group

    def _button_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.apply_button)
        row.addWidget(self.reset_button)
        row.addStretch(1)
        row.addWidget(self.permanent_button)
        return row

    def _connect(self) -> None:
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.amount_box.changed.connect(self._on_changed)
        self.set_radio.toggled.connect(self._on_changed)
        self.live_check.toggled.connect(self._on_live_toggled)
        self.apply_button.clicked.connect(self.apply)
        self.reset_button.clicked.connect(self.reset)
        self.permanent_button.clicked.connect(self.make_permanent)
        c = self.controller
        c.mutating_changed.connect(self._on_busy)
        c.preview_ready.connect(self._on_preview_ready)
        c.model_loaded.connect(self._on_model_loaded)
        c.masks_changed.connect(self._on_masks_changed)
        c.error.connect(self._on_controller_error)
        self._on_method_changed()

    # -- public API -------------------------------------------------------------------------
    @property
    def targets(self) -> tuple[str, ...]:
        """The layers the controls act on."""
        return self._targets

    def set_targets(self, names: tuple[str, ...]) -> None:
        """Act on ``names`` (the model tree's selection); empty disables the controls."""
        self._targets = tuple(names)
        self.hint.setVisible(not self._targets)
        self.body.setEnabled(bool(self._targets))
        self._update_target_label()
        infos = self._infos()
        if infos:
            self._updating = True
            try:
                for page in self.pages.values():
                    page.set_targets(infos, self._session())
            finally:
                self._updating = False
        # A new selection shows the layer as it is; previews start when a control moves.
        self._revalidate(preview=False)

    def method_name(self) -> str:
        """The registry name of the selected method."""
        return str(self.method_combo.currentData())

    def set_method(self, name: str) -> None:
        """Select method ``name`` (a registry name)."""
        index = self.method_combo.findData(name)
        if index < 0:
            raise PruningError(f"method {name!r} is not offered here")
        self.method_combo.setCurrentIndex(index)

    def page(self, name: str | None = None) -> ParamPage:
        """The parameter page of ``name`` (default: the selected method)."""
        return self.pages[name or self.method_name()]

    def set_amount_percent(self, percent: float) -> None:
        """Set the amount in percent (the quantile for the quantile rule)."""
        page = self.page()
        if page.owns_amount():
            page.set_percent(percent)
        else:
            self.amount_box.set_percent(percent)

    def set_amount_count(self, count: int) -> None:
        """Set the amount as a count of units (clamped to the first target's units)."""
        self.amount_box.set_count(count)

    def mode(self) -> Mode:
        """``"set"`` or ``"further"``."""
        return "set" if self.set_radio.isChecked() else "further"

    def set_mode(self, mode: str) -> None:
        """Select ``"further"`` or ``"set"``."""
        if mode not in ("further", "set"):
            raise PruningError(f"mode must be 'further' or 'set', got {mode!r}")
        (self.set_radio if mode == "set" else self.further_radio).setChecked(True)

    def build_op(self) -> LayerPrune:
        """The operation the controls describe.

        Raises:
            PruningError: nothing selected, or an invalid combination.
        """
        session = self._session()
        if not self._targets:
            raise PruningError("select one or more layers first")
        method = self._build_method()
        infos = [session.info(name) for name in self._targets]
        for info in infos:
            self._check_target(session, info, method)
        return LayerPrune(self._targets, method, self.mode())

    def current_op(self) -> LayerPrune | None:
        """The last valid operation (None when the controls are invalid)."""
        return self._op

    def status_text(self) -> str:
        """The status line's text."""
        return self.status.text()

    def apply(self) -> bool:
        """Apply the current operation; False when it is invalid."""
        op = self._valid_op()
        if op is None:
            return False
        self._preview_timer.stop()
        self._pending_apply = op.label
        self._set_status(f"Applying — {op.label}…", PREVIEW_STYLE)
        return self.controller.apply(op)

    def reset(self) -> bool:
        """Restore the selected layers' original weights (undoable)."""
        if not self._targets or self.controller.session is None:
            return False
        op = Reset(self._targets)
        self._pending_apply = op.label
        return self.controller.apply(op)

    def make_permanent(self) -> bool:
        """After confirmation, bake the selected layers' zeros in (clears the undo history)."""
        if not self._targets or self.controller.session is None:
            return False
        if not self._confirm_permanent():
            return False
        self._pending_apply = f"Make permanent {self._target_summary()}"
        return self.controller.make_permanent(self._targets)

    # -- building -----------------------------------------------------------------------------
    def _session(self) -> PruningSession:
        session = self.controller.session
        if session is None:
            raise PruningError("no model is loaded")
        return session

    def _infos(self) -> list[TargetInfo]:
        session = self.controller.session
        if session is None:
            return []
        try:
            return [session.info(name) for name in self._targets]
        except PruningError:
            return []

    def _build_method(self) -> PruningMethod:
        name = self.method_name()
        page = self.page(name)
        params = page.params()
        if METHODS[name].uses_amount and not page.owns_amount():
            params["amount"] = self.amount_box.amount()
        return make_method(name, **params)

    def _check_target(self, session: PruningSession, info: TargetInfo, method: Any) -> None:
        page = self.page()
        page.check(info)
        amount = getattr(method, "amount", None)
        if not isinstance(amount, int) or not METHODS[method.name].uses_amount:
            return
        units, noun = page.units(info.shape)
        if amount > units:
            raise PruningError(f"{info.name}: cannot prune {amount} {noun}, it has {units:,}")
        mask = session.packed_mask(info.name)
        if self.mode() != "further" or mask is None:
            return
        remaining = page.remaining(info.shape, mask)
        if amount > remaining:
            raise PruningError(
                f"{info.name}: cannot prune {amount} more {noun}, only {remaining:,} remain"
            )

    def _valid_op(self) -> LayerPrune | None:
        try:
            return self.build_op()
        except PruningError:
            return None

    # -- reactions ------------------------------------------------------------------------------
    def _on_method_changed(self, _index: int = -1) -> None:
        name = self.method_name()
        method = METHODS[name]
        page = self.page(name)
        self.summary.setText(method.summary)
        self.param_stack.setCurrentWidget(page)
        self.param_stack.updateGeometry()
        self.param_group.setVisible(not page.empty)
        self.amount_box.setVisible(method.uses_amount and not page.owns_amount())
        self.amount_box.count_radio.setEnabled(method.uses_amount)
        self._on_changed()

    def _on_changed(self, *_args: object) -> None:
        self._revalidate(preview=True)

    def _revalidate(self, preview: bool) -> None:
        """Rebuild the op from the controls; schedule a preview when asked and live."""
        if self._updating:
            return
        self._update_units()
        self._update_mode_texts()
        try:
            op: LayerPrune | None = self.build_op()
            self._error = ""
        except PruningError as exc:
            op, self._error = None, str(exc)
        self._op = op
        self._update_status()
        self._update_buttons()
        self.op_changed.emit(op)
        if preview and op is not None and self.live_check.isChecked():
            self._set_status("Preview — not applied", PREVIEW_STYLE)
            self._preview_timer.start()
        else:
            self._preview_timer.stop()

    def _update_units(self) -> None:
        infos = self._infos()
        if infos:
            units, noun = self.page().units(infos[0].shape)
            self.amount_box.set_units(units, noun)

    def _update_mode_texts(self) -> None:
        page = self.page()
        if METHODS[self.method_name()].uses_amount and not page.owns_amount():
            amount = self.amount_box.amount_text()
            self.set_radio.setText(f"Set sparsity to {amount}")
            self.further_radio.setText(f"Prune a further {amount} of what remains")
        else:
            self.set_radio.setText("Recompute from the original weights")
            self.further_radio.setText("Apply on top of the current mask")

    def _update_status(self) -> None:
        if not self._targets:
            self._set_status("", "")
        elif self._error:
            self._set_status(self._error, ERROR_STYLE)
        else:
            self._set_status("Ready to apply", INFO_STYLE)

    def _update_buttons(self) -> None:
        has_session = self.controller.session is not None and bool(self._targets)
        self.apply_button.setEnabled(self._op is not None and not self.controller.mutating)
        self.reset_button.setEnabled(has_session)
        self.permanent_button.setEnabled(has_session)

    def _update_target_label(self) -> None:
        infos = self._infos()
        if not infos:
            self.target_label.setText("")
            return
        if len(infos) == 1:
            shape = " × ".join(str(d) for d in infos[0].shape)
            text = f"{infos[0].name}\n{infos[0].module_type}  {shape}  ({infos[0].numel:,} weights)"
        else:
            total = sum(info.numel for info in infos)
            text = f"{len(infos)} layers, {total:,} weights"
        self.target_label.setText(text)
        self.target_label.setToolTip("\n".join(info.name for info in infos))

    def _target_summary(self) -> str:
        return self._targets[0] if len(self._targets) == 1 else f"{len(self._targets)} layers"

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def _request_preview(self) -> None:
        if self._op is None or not self.live_check.isChecked() or self.controller.session is None:
            return
        self._awaiting_preview = True
        self.controller.preview(self._op)

    def _on_preview_ready(self, masks: dict[str, PackedMask | None]) -> None:
        if self._op is None or set(masks) != set(self._op.targets) or self._error:
            return
        self._awaiting_preview = False
        session = self._session()
        total = sum(session.info(name).numel for name in masks)
        pruned = sum(0 if mask is None else mask.pruned for mask in masks.values())
        share = pruned / total if total else 0.0
        self._set_status(
            f"Preview — not applied: {share:.1%} of {total:,} weights would be pruned",
            PREVIEW_STYLE,
        )

    def _on_live_toggled(self, on: bool) -> None:
        if not on:
            self._preview_timer.stop()
        self._on_changed()

    def _on_busy(self, busy: bool) -> None:
        self.apply_button.setEnabled(self._op is not None and not busy)
        if not busy and self._pending_apply:
            self._set_status(f"Applied — {self._pending_apply}", INFO_STYLE)
            self._pending_apply = ""

    def _on_model_loaded(self) -> None:
        session = self.controller.session
        known = set(session.names) if session is not None else set()
        self.set_targets(tuple(name for name in self._targets if name in known))

    def _on_masks_changed(self, names: tuple[str, ...]) -> None:
        if set(names) & set(self._targets):
            self._revalidate(preview=False)

    def _on_controller_error(self, message: str, _details: str) -> None:
        if self._pending_apply or self._awaiting_preview:
            self._pending_apply = ""
            self._awaiting_preview = False
            self._set_status(message, ERROR_STYLE)

    def _confirm_permanent(self) -> bool:
        answer = QMessageBox.warning(
            self,
            "Make pruning permanent?",
            f"Make the pruning of {self._target_summary()} permanent?\n\n"
            "This bakes the zeros in, drops the original weights and clears the undo "
            "history; it cannot be undone.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes
