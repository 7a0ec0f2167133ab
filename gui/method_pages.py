"""Parameter pages of the pruning methods, and the amount box, for the layer controls.

One :class:`ParamPage` per method holds that method's parameters (norm, dim,
seed, N:M, block size, threshold, quantile), knows what a "count" means for
it (weights, channels or blocks) and checks whether it can prune a layer.
:class:`AmountBox` is the percent / count choice shared by the methods.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.common.errors import PruningError
from core.pruning.methods import METHODS

if TYPE_CHECKING:
    from PySide6.QtCore import QSize

    from core.pruning.masks import PackedMask
    from core.pruning.session import PruningSession
    from core.pruning.targets import TargetInfo

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
        # The scale needs a pass over the weights: only do it while this page is shown.
        self._targets = (infos, session)
        if self.isVisible():
            self._update_scale()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._update_scale()

    def _update_scale(self) -> None:
        targets = getattr(self, "_targets", None)
        if targets is None:
            return
        infos, session = targets
        # max |w| as a reduction: no |w| copy of the layer is allocated.
        top = max(
            (
                float(torch.linalg.vector_norm(session.effective(i.name), float("inf")))
                for i in infos
                if i.numel
            ),
            default=0.0,
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
