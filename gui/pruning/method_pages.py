"""Parameter pages of the pruning methods, and the amount box, for the layer controls.

Pages are built from each method's parameter schema (``param_specs``): one
field per :class:`~core.pruning.methods.spec.ParamSpec`, a spin box for
integers and dims, a decimal box for floats, a combo for choices, a percent
slider for fractions. The amount (a fraction or a count) lives in the shared
:class:`AmountBox` unless the schema makes it a fraction of its own (the
quantile). Units, remaining units and checks come from the method itself.
Small extensions add what a schema cannot say (the threshold's scale note).
Pages never read weights or masks: figures of whole layers (the largest |w|,
the units that remain) are measured in a worker and handed to them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from core.common.errors import InvalidAmountError, PruningError
from core.pruning.amounts import Amount
from core.pruning.methods import METHODS, PruningMethod, make_method, method_class
from gui.widgets.forms import add_row, form_label, int_spin, make_form, note_label, percent_slider

if TYPE_CHECKING:
    from PySide6.QtCore import QSize

    from core.pruning.masks import PackedMask
    from core.pruning.methods.spec import ParamSpec
    from core.pruning.session import PruningSession
    from core.pruning.targets import TargetInfo

#: The upper bound of float fields whose schema gives none.
FLOAT_MAX = 1e9

#: Delay between the last change and the preview it triggers (layer and global panels).
PREVIEW_DELAY_MS = 120


# -- methods --------------------------------------------------------------------------------


def offered_methods() -> list[str]:
    """Registry names offered in the combo, in registry order (not the painted custom mask)."""
    return [name for name, cls in METHODS.items() if cls.from_schema]


def check_target(method: PruningMethod, info: TargetInfo, current: PackedMask | None) -> None:
    """Raise a :class:`PruningError` naming the layer when ``method`` cannot prune it.

    ``current`` is the layer's mask when the amount is taken from what remains.
    """
    try:
        method.check(info.shape, current)
    except PruningError as exc:
        raise type(exc)(f"{info.name}: {exc}") from exc


def counts_remaining(method: PruningMethod) -> bool:
    """Whether ``method``'s amount is a count of units, which "further" takes from what remains."""
    counted = any(spec.name == "amount" and spec.type == "amount" for spec in method.param_specs)
    amount = getattr(method, "amount", None)
    return counted and isinstance(amount, int) and not isinstance(amount, bool)


def check_remaining(method: PruningMethod, info: TargetInfo, remaining: int) -> None:
    """Raise :class:`InvalidAmountError` (naming the layer) when ``method`` would prune more
    units than the ``remaining`` ones (counted in a worker: see ``LayerFigures``)."""
    amount = getattr(method, "amount", 0)
    if counts_remaining(method) and amount > remaining:
        raise InvalidAmountError(
            f"{info.name}: cannot prune {amount} more {method.unit}, only {remaining:,} remain"
        )


# -- small helpers -------------------------------------------------------------------


def _int_bound(value: float | None, default: int) -> int:
    """A spin box bound: the schema's, clamped to what a QSpinBox holds."""
    return default if value is None else max(-(2**31), min(2**31 - 1, int(value)))


# -- parameter pages --------------------------------------------------------------------


class ParamPage(QWidget):
    """The parameters of one method besides the shared amount, built from its schema.

    :attr:`fields` maps each parameter name to its widget. Raises
    :class:`PruningError` for a method name the registry does not know.
    """

    changed = Signal()

    #: Whether the page shows the largest |w| of the selection (see :meth:`show_largest`).
    needs_largest: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.method_type = method_class(name)
        self.name = name
        self.form = make_form()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.setLayout(self.form)
        self.specs: dict[str, ParamSpec] = {}
        self.fields: dict[str, QWidget] = {}
        for spec in self.method_type.param_specs:
            if spec.type == "amount":
                continue  # the shared amount box holds it
            self.specs[spec.name] = spec
            self.fields[spec.name] = self._make_field(spec)
            label = f"{spec.label} %" if spec.type == "fraction" else spec.label
            add_row(self.form, label, self.fields[spec.name], spec.help)
        for spec in self.specs.values():
            if spec.high_from is not None:
                self._bound_by(spec, self.fields[spec.high_from])

    # -- fields ----------------------------------------------------------------------------
    def _make_field(self, spec: ParamSpec) -> QWidget:
        if spec.type in ("int", "dim"):
            low = _int_bound(spec.low, -2 if spec.type == "dim" else 0)
            high = _int_bound(spec.high, 1 if spec.type == "dim" else 2**31 - 1)
            spin = int_spin(low, high, int(spec.default), spec.help)
            spin.valueChanged.connect(self.changed)
            return spin
        if spec.type == "float":
            box = QDoubleSpinBox()
            box.setRange(spec.low or 0.0, FLOAT_MAX if spec.high is None else spec.high)
            box.setDecimals(4)
            box.setSingleStep(0.001)
            box.setAccelerated(True)
            box.setStepType(QAbstractSpinBox.StepType.DefaultStepType)
            box.setValue(float(spec.default))
            box.valueChanged.connect(self.changed)
            return box
        if spec.type == "choice":
            combo = QComboBox()
            for text, value in spec.choices:
                combo.addItem(text, value)
            combo.setCurrentIndex(combo.findText(spec.choice_label(spec.default)))
            combo.currentIndexChanged.connect(self.changed)
            return combo
        if spec.type == "fraction":
            slider = percent_slider(spec.help)
            slider.setValue(100.0 * float(spec.default))
            slider.valueChanged.connect(lambda _value: self.changed.emit())
            return slider
        raise PruningError(f"{self.name}: no field for parameters of type {spec.type!r}")

    def _bound_by(self, spec: ParamSpec, other: QWidget) -> None:
        """Keep ``spec``'s maximum at ``other``'s value (N <= M)."""
        field, limit = self.fields[spec.name], other
        assert isinstance(field, QSpinBox) and isinstance(limit, QSpinBox)

        def follow(value: int) -> None:
            with QSignalBlocker(field):
                field.setMaximum(min(value, _int_bound(spec.high, value)))

        follow(limit.value())
        limit.valueChanged.connect(follow)

    def value(self, name: str) -> Any:
        """The current value of parameter ``name``, as the method takes it."""
        spec, field = self.specs[name], self.fields[name]
        if isinstance(field, QComboBox):
            return field.currentData()
        if isinstance(field, QLabeledDoubleSlider):
            return round(float(field.value()) / 100.0, 6)
        if isinstance(field, QDoubleSpinBox):
            return float(field.value())
        if isinstance(field, QSpinBox):
            return int(field.value())
        raise PruningError(f"{self.name}: parameter {spec.name} has no readable field")

    # -- the page's API ----------------------------------------------------------------------
    @property
    def empty(self) -> bool:
        """Whether the page has no fields (its group box is hidden then)."""
        return not self.fields

    def params(self) -> dict[str, Any]:
        """The method's keyword arguments (without ``amount`` unless the page owns it)."""
        return {name: self.value(name) for name in self.fields}

    def method(self, amount: Amount = 0) -> PruningMethod:
        """The method these fields describe, with ``amount`` unless the page holds its own.

        Raises:
            PruningError: the fields make an invalid method.
        """
        params = self.params()
        if self.method_type.uses_amount and not self.owns_amount():
            params["amount"] = amount
        return make_method(self.name, **params)

    def set_targets(self, infos: list[TargetInfo], session: PruningSession) -> None:
        """Adapt ranges to the selected layers (dims to their dimensions)."""
        ndim = max(2, min(len(info.shape) for info in infos))
        for name, spec in self.specs.items():
            field = self.fields[name]
            if spec.type == "dim" and isinstance(field, QSpinBox):
                field.setRange(-ndim, ndim - 1)

    def units(self, shape: tuple[int, ...]) -> tuple[int, str]:
        """How many units a count refers to in a weight of ``shape``, and their noun.

        0 units where the method cannot prune such a weight.
        """
        try:
            return self.method().units(shape), self.method_type.unit
        except PruningError:
            return 0, self.method_type.unit

    def check(
        self, info: TargetInfo, amount: Amount = 0, current: PackedMask | None = None
    ) -> None:
        """Raise :class:`PruningError` (naming the layer) when the method cannot prune ``info``."""
        check_target(self.method(amount), info, current)

    def owns_amount(self) -> bool:
        """Whether the page holds the method's amount itself (the quantile does)."""
        return "amount" in self.fields

    def show_largest(self, top: float | None) -> None:
        """Show the selection's largest |w| (None: still being measured); pages that
        declare :attr:`needs_largest` use it."""

    def set_percent(self, percent: float) -> None:
        """Set a page-owned amount (only meaningful where :meth:`owns_amount`)."""
        field = self.fields.get("amount")
        if isinstance(field, QLabeledDoubleSlider):
            field.setValue(percent)


class ThresholdPage(ParamPage):
    """The threshold's page, with the largest |w| of the selection as a scale note.

    The step of the threshold box follows that scale. The page reads no
    weights: the controls hand it the largest |w| measured in a worker
    (:meth:`show_largest`, from the layers' ``LayerFigures``).
    """

    needs_largest = True

    def __init__(self, name: str = "threshold") -> None:
        super().__init__(name)
        box = self.fields["value"]
        assert isinstance(box, QDoubleSpinBox)
        self.value_box = box
        self.scale = note_label()
        self.scale.setWordWrap(False)
        self.form.addRow("", self.scale)
        #: The largest |w| shown (None: not known yet).
        self.largest: float | None = None

    def show_largest(self, top: float | None) -> None:
        self.largest = top
        if top is None:
            self.scale.setText("Largest |w| in the selection: measuring…")
            return
        step = 10.0 ** math.floor(math.log10(top / 100.0)) if top > 0 else 0.001
        self.value_box.setDecimals(max(3, 1 - math.floor(math.log10(step))))
        self.value_box.setSingleStep(step)
        self.scale.setText(f"Largest |w| in the selection: {top:.4g}")


#: Pages that extend the schema-built one.
PAGE_EXTENSIONS: dict[str, type[ParamPage]] = {"threshold": ThresholdPage}


def make_page(name: str) -> ParamPage:
    """The parameter page of registry method ``name``.

    Raises:
        PruningError: unknown method (there is no fallback page).
    """
    return PAGE_EXTENSIONS.get(name, ParamPage)(name)


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
