"""The model as a tree: modules and every parameter, with live sparsity.

:class:`ModelTreeView` shows a session's parameters grouped by module and adds
a filter box (matching dotted paths such as ``layer4.1.conv2``, or their parts,
and type names) and multi-selection.

The jobs live apart: the Qt item model and its roles in
:mod:`gui.panels.parameter_tree_model` (over the nodes of
:mod:`gui.panels.parameter_nodes`), the filter in :mod:`gui.panels.path_filter_proxy`
and the sparsity bar in :mod:`gui.panels.sparsity_bar_delegate`; their public
names are importable from here too.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QMenu,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from core.pruning.session import PruningSession
from gui.panels.parameter_tree_model import (
    COLUMNS,
    KEPT_COLUMN,
    PARAM_ROLE,
    PATH_ROLE,
    PRUNABLE_ROLE,
    SPARSITY_COLUMN,
    SPARSITY_ROLE,
    TYPE_ROLE,
    Index,
    ParameterTreeModel,
)
from gui.panels.path_filter_proxy import PathFilterProxy
from gui.panels.sparsity_bar_delegate import SparsityBarDelegate

#: The view, and the names of its model, filter and delegate offered here too.
__all__ = [
    "COLUMNS",
    "KEPT_COLUMN",
    "PARAM_ROLE",
    "PATH_ROLE",
    "PRUNABLE_ROLE",
    "ROWS_MEASURED",
    "SPARSITY_COLUMN",
    "SPARSITY_ROLE",
    "TYPE_ROLE",
    "Index",
    "ModelTreeView",
    "ParameterTreeModel",
    "PathFilterProxy",
    "SparsityBarDelegate",
]

#: Rows measured when the columns are sized to their contents (Qt counts from the top).
ROWS_MEASURED = 100


class ModelTreeView(QWidget):
    """Filter box plus tree; emits the selected parameter names.

    Signals:
        selection_changed(names): parameters selected directly or through a module.
    """

    selection_changed = Signal(tuple)
    #: Emitted after a model is shown, with the width this view needs to show every
    #: column up to Kept whole (the window sizes the tree's dock to it on first launch).
    columns_sized = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ParameterTreeModel(self)
        self.proxy = PathFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        # Sizing the columns measures rows: a turn of its own, after the tree is shown.
        self._size_columns_soon = QTimer(self)
        self._size_columns_soon.setSingleShot(True)
        self._size_columns_soon.setInterval(0)
        self._size_columns_soon.timeout.connect(self._size_columns)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter layers (name, path such as layer1.0, or type)…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.set_filter)
        self.tree = QTreeView(self)
        self.tree.setModel(self.proxy)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setItemDelegateForColumn(SPARSITY_COLUMN, SparsityBarDelegate(self.tree))
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(40)
        # Sized once per model (ResizeToContents would re-measure every row on each update),
        # from the first rows only: measuring every row of a big model costs the GUI
        # thread ~0.2 ms a row (100 ms for 200 layers); the user can widen a column.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setResizeContentsPrecision(ROWS_MEASURED)
        self.tree.selectionModel().selectionChanged.connect(self._emit_selection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)
        self._context_menu: QMenu | None = None

    def set_context_menu(self, menu: QMenu | None) -> None:
        """Show ``menu`` (e.g. the prunable kinds) when the tree is right-clicked."""
        self._context_menu = menu
        policy = Qt.ContextMenuPolicy
        self.tree.setContextMenuPolicy(
            policy.DefaultContextMenu if menu is None else policy.CustomContextMenu
        )
        if menu is not None:
            self.tree.customContextMenuRequested.connect(self._show_context_menu)

    def _show_context_menu(self, pos: QPoint) -> None:
        if self._context_menu is not None:
            self._context_menu.popup(self.tree.viewport().mapToGlobal(pos))

    def set_session(self, session: PruningSession | None) -> None:
        """Show ``session``'s parameters (expands everything); the columns are sized to
        their contents on the next event-loop turn (``columns_sized`` then), which keeps
        opening a model within one short stall of the GUI thread."""
        self.model.set_session(session)
        self.proxy.set_text(self.filter.text())
        self.tree.expandAll()
        self._size_columns_soon.start()

    def _size_columns(self) -> None:
        for column in range(len(COLUMNS) - 1):
            self.tree.resizeColumnToContents(column)
        self.columns_sized.emit(self.width_for_columns())

    def width_for_columns(self, last: int = KEPT_COLUMN) -> int:
        """The width this view needs to show columns ``0..last`` whole, with a scroll bar."""
        header = self.tree.header()
        columns = header.sectionPosition(last) + header.sectionSize(last)
        scroll_bar = self.tree.verticalScrollBar().sizeHint().width()
        margins = self.layout().contentsMargins()
        return columns + scroll_bar + 2 * self.tree.frameWidth() + margins.left() + margins.right()

    def set_filter(self, text: str) -> None:
        """Show only rows matching ``text`` (see :class:`PathFilterProxy`), expanded.

        The selection moves to the first parameter shown unless a selected one is still
        shown, so typing a path shows that layer.
        """
        if self.filter.text() != text:
            self.filter.setText(text)  # comes back here through textChanged
            return
        self.proxy.set_text(text)
        self.tree.expandAll()
        if not text.strip():
            current = self.tree.currentIndex()
            if current.isValid():
                self.tree.scrollTo(current)
            return
        visible = (self.proxy.mapFromSource(self.model.index_of(n)) for n in self.selected_params())
        if any(index.isValid() for index in visible):
            return
        first = self.first_match()
        if first:
            self.select_param(first)

    def first_match(self) -> str:
        """The first parameter, in tree order, that the filter keeps ("" if none)."""
        proxy = self.proxy
        pending = [proxy.index(row, 0) for row in reversed(range(proxy.rowCount()))]
        while pending:  # depth first, in tree order
            index = pending.pop()
            param = index.data(PARAM_ROLE)
            if param:
                return str(param)
            pending.extend(
                proxy.index(row, 0, index) for row in reversed(range(proxy.rowCount(index)))
            )
        return ""

    def selected_params(self) -> tuple[str, ...]:
        """Parameter names under the selected rows, in model order, without duplicates."""
        names: dict[str, None] = {}
        for proxy_index in self.tree.selectionModel().selectedRows(0):
            for name in self.model.params_under(self.proxy.mapToSource(proxy_index)):
                names[name] = None
        return tuple(names)

    def select_param(self, name: str) -> None:
        """Select one parameter's row (and make it visible)."""
        index = self.proxy.mapFromSource(self.model.index_of(name))
        if index.isValid():
            self.tree.setCurrentIndex(index)
            self.tree.scrollTo(index)

    def _emit_selection(self) -> None:
        self.selection_changed.emit(self.selected_params())
