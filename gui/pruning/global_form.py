"""The widgets of the global pruning panel: amount, buttons, warning, layer table, status.

:class:`GlobalForm` builds and lays out the controls and reads and sets what
they say (the amount, which layers take part, their caps, the planned
sparsities); it knows no controller and does nothing on its own:
:class:`~gui.pruning.global_panel.GlobalPanel` adds the behaviour.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import PruningError
from gui.pruning.global_status import wiped_text
from gui.pruning.layer_table import CAP, HEADERS, INCLUDE, LAYER, CapDelegate, LayerTableModel
from gui.widgets.forms import add_row, make_form, note_label, percent_slider

#: Narrowest width (pixels) the Layer column is fitted to.
NAME_COLUMN_MIN = 80


class GlobalForm(QWidget):
    """The global pruning panel's widgets and what they say (see module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._name_fitted = False
        self.model = LayerTableModel(self)
        self._build_widgets()
        self._build_layout()

    # -- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.slider = percent_slider(
            "Percent of the remaining weights of the included layers to prune, "
            "smallest |w| across all of them first."
        )
        self.slider.setValue(50.0)
        self.explain = note_label(
            "Ranks the remaining weights of all included layers together by magnitude and "
            "prunes the smallest, so layers end at different sparsities."
        )
        self.live_check = QCheckBox("Live preview")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Re-plan while you move the slider or edit the table.")
        self.preview_button = QPushButton("Preview plan")
        self.preview_button.setToolTip(
            "Compute the planned sparsity of every layer, changing nothing."
        )
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.setToolTip("Prune the included layers by global magnitude (undoable).")
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "color: #921a12; background: #fadbd8; border: 1px solid #e6a59e;"
            "border-radius: 3px; padding: 4px 6px;"
        )
        self.warning.setToolTip("A layer with no weights left cuts the network's signal path.")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setToolTip("What the panel would do, or why it cannot.")
        self.table = self._build_table()

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setItemDelegateForColumn(CAP, CapDelegate(table))
        table.setToolTip("Layers taking part; tick to include, double-click Max % to cap.")
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        table.setWordWrap(False)
        # Names differ at their ends ("layer3.1.conv1"): elide their common start.
        table.setTextElideMode(Qt.TextElideMode.ElideLeft)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.setEditTriggers(
            QTableView.EditTrigger.DoubleClicked
            | QTableView.EditTrigger.EditKeyPressed
            | QTableView.EditTrigger.SelectedClicked
        )
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        header = table.horizontalHeader()
        header.setHighlightSections(False)
        header.setMinimumSectionSize(28)
        for column in range(len(HEADERS)):
            mode = QHeaderView.ResizeMode.ResizeToContents
            if column == LAYER:
                mode = QHeaderView.ResizeMode.Interactive  # the user drags it wider
            header.setSectionResizeMode(column, mode)
        return table

    def _build_layout(self) -> None:
        amount = QGroupBox("Global magnitude pruning")
        form = make_form()
        add_row(form, "Amount %", self.slider, self.slider.toolTip())
        form.addRow("", self.explain)
        amount.setLayout(form)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.live_check)
        buttons.addStretch(1)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addWidget(amount)
        layout.addLayout(buttons)
        layout.addWidget(self.warning)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    def _fit_name_column(self) -> None:
        """Size the Layer column to its longest name, within what the table has room for.

        It stays at least :data:`NAME_COLUMN_MIN` pixels wide (longer names are
        elided at the start, their ends stay readable); the user may drag it wider.
        """
        if not self.isVisible():
            self._name_fitted = False  # the width is known once the panel is shown
            return
        table, header = self.table, self.table.horizontalHeader()
        others = sum(
            max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
            for c in range(len(HEADERS))
            if c != LAYER
        )
        wanted = max(table.sizeHintForColumn(LAYER), header.sectionSizeHint(LAYER))
        room = table.viewport().width() - others
        table.setColumnWidth(LAYER, max(NAME_COLUMN_MIN, min(wanted, room)))
        self._name_fitted = True

    def showEvent(self, event: QShowEvent) -> None:
        """Coming on screen: fit the Layer column now that the table's width is known."""
        super().showEvent(event)
        if not self._name_fitted:
            self._fit_name_column()

    # -- what the controls say --------------------------------------------------------------
    def set_amount_percent(self, percent: float) -> None:
        """Set the amount, in percent of the remaining weights of the included layers."""
        self.slider.setValue(percent)

    def amount_percent(self) -> float:
        """The amount in percent (one decimal)."""
        return round(float(self.slider.value()), 1)

    def set_included(self, name: str, included: bool) -> None:
        """Include or exclude (lock) layer ``name``."""
        row = self.model.rows.index(self.model.row_of(name))
        state = Qt.CheckState.Checked if included else Qt.CheckState.Unchecked
        self.model.setData(self.model.index(row, INCLUDE), state, Qt.ItemDataRole.CheckStateRole)

    def set_cap(self, name: str, percent: float | None) -> None:
        """Cap layer ``name`` at ``percent`` sparsity (None: no cap)."""
        row = self.model.rows.index(self.model.row_of(name))
        value = "" if percent is None else str(percent)
        if not self.model.setData(self.model.index(row, CAP), value):
            raise PruningError(f"{name}: a cap must be between 0 and 100 %, got {percent}")

    def included(self) -> tuple[str, ...]:
        """The included layers, in model order."""
        return tuple(row.name for row in self.model.rows if row.included)

    def planned_sparsity(self) -> dict[str, float]:
        """Planned sparsity of each included layer after the last plan ({} before one)."""
        return {
            row.name: planned
            for row in self.model.rows
            if row.included and (planned := row.planned_sparsity) is not None
        }

    def wiped_layers(self) -> tuple[str, ...]:
        """Layers the last plan would prune away entirely."""
        return tuple(row.name for row in self.model.rows if row.wiped)

    def status_text(self) -> str:
        """The status line's text."""
        return self.status.text()

    def _has_plan(self) -> bool:
        return any(row.planned is not None for row in self.model.rows)

    def _update_warning(self) -> None:
        wiped = self.wiped_layers()
        self.warning.setVisible(bool(wiped))
        if wiped:
            self.warning.setText(wiped_text(wiped))

    def _set_status(self, text: str, style: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style)
