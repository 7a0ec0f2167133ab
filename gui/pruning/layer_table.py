"""The layer table of the global pruning panel: its model and its cap editor.

:class:`LayerTableModel` lists every layer of a session: whether it takes
part, its size, its current sparsity, an optional cap and the sparsity the
plan would leave, with layers the plan would prune away entirely highlighted.
:class:`CapDelegate` edits a cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QDoubleValidator, QFont
from PySide6.QtWidgets import (
    QApplication,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from core.common.errors import PruningError
from gui.widgets.formatting import format_percent

if TYPE_CHECKING:
    from core.pruning.session import PruningSession

ModelIndex = QModelIndex | QPersistentModelIndex

INCLUDE, LAYER, WEIGHTS, CURRENT, CAP, PLANNED = range(6)
HEADERS: tuple[str, ...] = ("Use", "Layer", "Weights", "Now", "Max %", "Planned")
HEADER_TIPS: tuple[str, ...] = (
    "Whether the layer takes part; unchecked layers are locked and stay as they are.",
    "The parameter's name.",
    "Number of entries in the weight.",
    "The layer's sparsity now.",
    "The highest sparsity (in %) the layer may reach; empty means no cap. Double-click to edit.",
    "The sparsity the layer would have after applying the plan.",
)
DANGER_BACKGROUND = QColor(250, 219, 216)
DANGER_TEXT = QColor(146, 26, 18)
MUTED_TEXT = QColor(150, 150, 150)
PLANNED_TEXT = QColor(31, 95, 168)


def parse_cap(value: Any) -> float | None:
    """A cap in percent from user input: ``""``/None → no cap.

    Raises:
        ValueError: not a number in [0, 100].
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    cap = float(str(value).strip().rstrip("%").replace(",", "."))
    if not 0.0 <= cap <= 100.0:
        raise ValueError(f"a cap must be between 0 and 100 %, got {cap}")
    return cap


@dataclass
class LayerRow:
    """One row of the layer table."""

    name: str
    numel: int
    pruned: int = 0
    included: bool = True
    cap: float | None = None  # percent
    planned: int | None = None  # entries pruned after the plan

    @property
    def current(self) -> float:
        """Sparsity now."""
        return self.pruned / self.numel if self.numel else 0.0

    @property
    def planned_sparsity(self) -> float | None:
        """Sparsity after the plan, or None before a plan."""
        if self.planned is None:
            return None
        return self.planned / self.numel if self.numel else 0.0

    @property
    def wiped(self) -> bool:
        """Whether the plan prunes every entry of the layer."""
        return self.planned is not None and self.numel > 0 and self.planned >= self.numel


class LayerTableModel(QAbstractTableModel):
    """The layers of a session with inclusion, caps and planned sparsity.

    Signals:
        edited(): the user changed an inclusion or a cap.
    """

    edited = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LayerRow] = []
        self._warning_icon = QApplication.style().standardIcon(
            QStyle.StandardPixmap.SP_MessageBoxWarning
        )
        self._roles: dict[int, Callable[[LayerRow, int], Any]] = {
            Qt.ItemDataRole.DisplayRole: self._display,
            Qt.ItemDataRole.EditRole: self._edit,
            Qt.ItemDataRole.CheckStateRole: self._check,
            Qt.ItemDataRole.ToolTipRole: self._tooltip,
            Qt.ItemDataRole.TextAlignmentRole: self._alignment,
            Qt.ItemDataRole.BackgroundRole: self._background,
            Qt.ItemDataRole.ForegroundRole: self._foreground,
            Qt.ItemDataRole.DecorationRole: self._decoration,
            Qt.ItemDataRole.FontRole: self._font,
        }

    # -- filling ------------------------------------------------------------------------
    def load(self, session: PruningSession | None, included: set[str] | None) -> None:
        """Show ``session``'s layers; include ``included`` (None: all)."""
        self.beginResetModel()
        self.rows = []
        if session is not None:
            for name in session.weight_names:  # not the norm parameters group pruning holds
                row = LayerRow(name, session.info(name).numel)
                row.included = included is None or name in included
                self.rows.append(row)
            self._read_pruned(session)
        self.endResetModel()

    def update_current(self, session: PruningSession) -> None:
        """Re-read the current sparsity of every layer."""
        self._read_pruned(session)
        self._changed_column(CURRENT)

    def _read_pruned(self, session: PruningSession) -> None:
        for row in self.rows:
            mask = session.packed_mask(row.name)
            row.pruned = 0 if mask is None else mask.pruned

    def set_included(self, names: set[str] | None) -> None:
        """Include exactly ``names`` (None: all)."""
        for row in self.rows:
            row.included = names is None or row.name in names
        self._changed_rows()

    def set_planned(self, planned: dict[str, int]) -> None:
        """Set the entries each layer would have pruned after the plan ({} clears)."""
        for row in self.rows:
            row.planned = planned.get(row.name)
        self._changed_rows()

    def row_of(self, name: str) -> LayerRow:
        """The row of layer ``name``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise PruningError(f"unknown layer {name!r}")

    def _changed_column(self, column: int) -> None:
        if self.rows:
            last = len(self.rows) - 1
            self.dataChanged.emit(self.index(0, column), self.index(last, column))

    def _changed_rows(self) -> None:
        if self.rows:
            last = len(self.rows) - 1
            self.dataChanged.emit(self.index(0, 0), self.index(last, len(HEADERS) - 1))

    # -- Qt model API ----------------------------------------------------------------------
    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == INCLUDE:
            return base | Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == CAP:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        handler = self._roles.get(role)
        if handler is None:
            return None
        return handler(self.rows[index.row()], index.column())

    def setData(self, index: ModelIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid():
            return False
        row = self.rows[index.row()]
        if index.column() == INCLUDE and role == Qt.ItemDataRole.CheckStateRole:
            row.included = Qt.CheckState(value) == Qt.CheckState.Checked
        elif index.column() == CAP and role == Qt.ItemDataRole.EditRole:
            try:
                row.cap = parse_cap(value)
            except ValueError:
                return False
        else:
            return False
        left, right = self.index(index.row(), 0), self.index(index.row(), len(HEADERS) - 1)
        self.dataChanged.emit(left, right)
        self.edited.emit()
        return True

    # -- roles -------------------------------------------------------------------------------
    def _display(self, row: LayerRow, column: int) -> str | None:
        if column == LAYER:
            return row.name.removesuffix(".weight")
        if column == WEIGHTS:
            return f"{row.numel:,}"
        if column == CURRENT:
            return format_percent(row.current)
        if column == CAP:
            return "" if row.cap is None else f"{row.cap:g}"
        if column == PLANNED:
            planned = row.planned_sparsity
            return "—" if planned is None else format_percent(planned)
        return None

    def _edit(self, row: LayerRow, column: int) -> str | None:
        if column == CAP:
            return "" if row.cap is None else f"{row.cap:g}"
        return self._display(row, column)

    def _check(self, row: LayerRow, column: int) -> Qt.CheckState | None:
        if column != INCLUDE:
            return None
        return Qt.CheckState.Checked if row.included else Qt.CheckState.Unchecked

    def _tooltip(self, row: LayerRow, column: int) -> str:
        if row.wiped:
            return f"{row.name}: the plan prunes every weight of this layer — it would be cut."
        if column == CAP:
            return f"{row.name}: {HEADER_TIPS[CAP]}"
        state = "takes part" if row.included else "is locked (excluded)"
        return f"{row.name} ({row.numel:,} weights) {state}."

    def _alignment(self, _row: LayerRow, column: int) -> Qt.AlignmentFlag:
        if column in (WEIGHTS, CURRENT, CAP, PLANNED):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter

    def _background(self, row: LayerRow, _column: int) -> QColor | None:
        return DANGER_BACKGROUND if row.wiped else None

    def _foreground(self, row: LayerRow, column: int) -> QColor | None:
        if row.wiped:
            return DANGER_TEXT
        if not row.included:
            return MUTED_TEXT
        return PLANNED_TEXT if column == PLANNED else None

    def _decoration(self, row: LayerRow, column: int) -> Any:
        return self._warning_icon if column == PLANNED and row.wiped else None

    def _font(self, row: LayerRow, _column: int) -> QFont | None:
        if not row.wiped:
            return None
        font = QFont()
        font.setBold(True)
        return font


class CapDelegate(QStyledItemDelegate):
    """Edits a cap with a line edit accepting an empty text (no cap) or 0..100."""

    def createEditor(
        self, parent: QWidget, _option: QStyleOptionViewItem, _index: ModelIndex
    ) -> QWidget:
        editor = QLineEdit(parent)
        validator = QDoubleValidator(0.0, 100.0, 2, editor)
        validator.setNotation(QDoubleValidator.Notation.StandardNotation)
        editor.setValidator(validator)
        editor.setPlaceholderText("no cap")
        editor.setToolTip("Maximum sparsity in percent (0-100); leave empty for no cap.")
        return editor
