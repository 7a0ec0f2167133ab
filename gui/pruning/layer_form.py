"""The widgets of the layer controls: method, parameters, amount, mode and buttons.

:class:`LayerForm` builds and lays out the controls and reads and sets what
they say; it knows no controller and does nothing on its own:
:class:`~gui.pruning.layer_controls.LayerControls` adds the behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from core.pruning.methods import method_class
from core.pruning.operations import Mode
from gui.pruning.method_pages import (
    AmountBox,
    CurrentPageStack,
    ParamPage,
    make_page,
    offered_methods,
)
from gui.widgets.forms import note_label

if TYPE_CHECKING:
    from core.pruning.targets import TargetInfo


class LayerForm(QWidget):
    """The layer controls' widgets and what they say (see module docstring).

    Signals:
        changed(): the method, its parameters, the amount or the mode changed.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._build_widgets()
        self._build_layout()
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.amount_box.changed.connect(self._emit_changed)
        self.set_radio.toggled.connect(self._emit_changed)

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
        method = method_class(name)
        self.method_combo.addItem(method.label, name)
        index = self.method_combo.count() - 1
        self.method_combo.setItemData(index, method.summary, Qt.ItemDataRole.ToolTipRole)
        page = make_page(name)
        page.changed.connect(self._emit_changed)
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

    # -- what the controls say ------------------------------------------------------------------
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

    def status_text(self) -> str:
        """The status line's text."""
        return self.status.text()

    # -- showing ---------------------------------------------------------------------------------
    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)

    def _show_targets(self, infos: list[TargetInfo]) -> None:
        """Name the selected layers above the controls (nothing when there are none)."""
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

    def _show_units(self, infos: list[TargetInfo]) -> None:
        """Bound the count by the units of the first selected layer."""
        if infos:
            units, noun = self.page().units(infos[0].shape)
            self.amount_box.set_units(units, noun)

    def _show_mode_texts(self) -> None:
        """Word the mode buttons after the amount (or the method, without one)."""
        page = self.page()
        if method_class(self.method_name()).uses_amount and not page.owns_amount():
            amount = self.amount_box.amount_text()
            self.set_radio.setText(f"Set sparsity to {amount}")
            self.further_radio.setText(f"Prune a further {amount} of what remains")
        else:
            self.set_radio.setText("Recompute from the original weights")
            self.further_radio.setText("Apply on top of the current mask")

    # -- reactions -------------------------------------------------------------------------------
    def _on_method_changed(self, _index: int = -1) -> None:
        """Show the selected method's summary and page, then say the controls changed."""
        name = self.method_name()
        method = method_class(name)
        page = self.page(name)
        self.summary.setText(method.summary)
        self.param_stack.setCurrentWidget(page)
        self.param_stack.updateGeometry()
        self.param_group.setVisible(not page.empty)
        self.amount_box.setVisible(method.uses_amount and not page.owns_amount())
        self.amount_box.count_radio.setEnabled(method.uses_amount)
        self._emit_changed()

    def _emit_changed(self, *_args: object) -> None:
        self.changed.emit()
