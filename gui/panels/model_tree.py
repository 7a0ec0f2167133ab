"""The model as a tree: modules and every parameter, with live sparsity.

:class:`ParameterTreeModel` is a Qt item model over a pruning session:
module nodes aggregate their prunable parameters; leaves are every
``named_parameters()`` entry, those the session does not prune greyed out (their
tooltip names the kind that would make them prunable, see :mod:`gui.session.target_kinds`).
:class:`SparsityBarDelegate` draws the sparsity column as an inline bar, and
:class:`ModelTreeView` adds a filter box (matching dotted paths such as
``layer4.1.conv2``, or their parts, and type names) and multi-selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLineEdit,
    QMenu,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from core.pruning.session import PruningSession
from gui.session.target_kinds import kind_text, offering_kinds
from gui.widgets.icons import family, layer_icon

COLUMNS = ("Name", "Type", "Shape", "Params", "Kept", "Sparsity")
SPARSITY_COLUMN = COLUMNS.index("Sparsity")
#: The last column a new window shows whole (the tree's dock is sized to fit it).
KEPT_COLUMN = COLUMNS.index("Kept")
#: Rows measured when the columns are sized to their contents (Qt counts from the top).
ROWS_MEASURED = 100
#: Role holding the parameter name of a prunable leaf ("" for module nodes and for
#: parameters the session does not prune; their name is under PATH_ROLE).
PARAM_ROLE = Qt.ItemDataRole.UserRole + 1
#: Role holding the sparsity as a float in [0, 1].
SPARSITY_ROLE = Qt.ItemDataRole.UserRole + 2
#: Role holding the dotted path of a row: the module's, or the parameter's qualified name.
PATH_ROLE = Qt.ItemDataRole.UserRole + 3
#: Role holding the type a row is matched on: the module's, or the owning module's.
TYPE_ROLE = Qt.ItemDataRole.UserRole + 4
#: Role holding whether a row is a prunable parameter (False for modules and greyed ones).
PRUNABLE_ROLE = Qt.ItemDataRole.UserRole + 5

Index = QModelIndex | QPersistentModelIndex


@dataclass
class _Node:
    label: str
    type_name: str
    param: str = ""  # qualified parameter name for leaves
    parent: _Node | None = None
    path: str = ""  # dotted path: the module's, or the parameter's qualified name
    children: list[_Node] = field(default_factory=list)
    prunable: bool = True  # leaves only: whether the session prunes it
    shape: tuple[int, ...] = ()  # of a leaf the session does not prune
    kind: str = ""  # the target option that would make such a leaf prunable ("": none)

    def row(self) -> int:
        return self.parent.children.index(self) if self.parent else 0

    def leaves(self) -> list[_Node]:
        """The prunable leaves at or below this node."""
        if self.param:
            return [self] if self.prunable else []
        return [leaf for child in self.children for leaf in child.leaves()]

    @property
    def numel(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count


class ParameterTreeModel(QAbstractItemModel):
    """Item model of a model's parameters grouped by module; the session's targets enabled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: PruningSession | None = None
        self._root = _Node("", "")
        self._leaf_by_param: dict[str, _Node] = {}
        self._counts_cache: dict[int, tuple[int, int]] = {}

    # -- building ---------------------------------------------------------------
    def set_session(self, session: PruningSession | None) -> None:
        """Rebuild the tree for ``session``."""
        self.beginResetModel()
        self._session = session
        self._root = _Node("", "")
        self._leaf_by_param = {}
        self._counts_cache = {}
        if session is not None:
            self._build(session)
        self.endResetModel()

    def _build(self, session: PruningSession) -> None:
        model = session.model
        modules = dict(model.named_modules(remove_duplicate=False))
        targets = set(session.names)
        kinds = offering_kinds(model)
        # One leaf per tensor (tied weights once), under the session's name if it prunes it.
        groups: dict[int, list[str]] = {}
        tensors = {}
        for name, param in model.named_parameters(remove_duplicate=False):
            groups.setdefault(id(param), []).append(name)
            tensors[id(param)] = param
        for key, names in groups.items():
            name = next((n for n in names if n in targets), names[0])
            module_name = name.rpartition(".")[0]
            parent = self._root
            path = module_name.split(".") if module_name else []
            for depth in range(len(path)):
                qualified = ".".join(path[: depth + 1])
                parent = self._child(parent, path[depth], type(modules[qualified]).__name__)
            module_type = type(modules[module_name]).__name__
            leaf = _Node(name.rpartition(".")[2], module_type, name, parent, path=name)
            if name not in targets:
                leaf.prunable = False
                leaf.shape = tuple(tensors[key].shape)
                leaf.kind = kinds.get(name, "")
            parent.children.append(leaf)
            self._leaf_by_param[name] = leaf

    def _child(self, parent: _Node, label: str, type_name: str) -> _Node:
        for child in parent.children:
            if child.label == label and not child.param:
                return child
        path = f"{parent.path}.{label}" if parent.path else label
        node = _Node(label, type_name, parent=parent, path=path)
        parent.children.append(node)
        return node

    def refresh(self, names: tuple[str, ...] | None = None) -> None:
        """Tell views that counts of ``names`` (default: all) changed."""
        if self._session is None:
            return
        self._counts_cache = {}
        wanted = names or tuple(self._leaf_by_param)
        # One dataChanged per parent, spanning the changed rows: views recompute once.
        rows: dict[int, tuple[_Node, list[int]]] = {}
        for name in wanted:
            node: _Node | None = self._leaf_by_param.get(name)
            while node is not None and node is not self._root:
                parent = node.parent
                assert parent is not None
                rows.setdefault(id(parent), (parent, []))[1].append(node.row())
                node = parent
        for parent, changed in rows.values():
            first, last = min(changed), max(changed)
            self.dataChanged.emit(
                self.createIndex(first, 0, parent.children[first]),
                self.createIndex(last, len(COLUMNS) - 1, parent.children[last]),
            )

    # -- queries ------------------------------------------------------------------
    def params_under(self, index: Index) -> list[str]:
        """Parameter names of the leaf at ``index`` or of every leaf below it."""
        node = self._node(index)
        return [leaf.param for leaf in node.leaves()]

    def index_of(self, param: str) -> QModelIndex:
        """The index (column 0) of a parameter's leaf (prunable or not)."""
        leaf = self._leaf_by_param.get(param)
        if leaf is None:
            return QModelIndex()
        return self.createIndex(leaf.row(), 0, leaf)

    # -- QAbstractItemModel ---------------------------------------------------------
    def _node(self, index: Index) -> _Node:
        return index.internalPointer() if index.isValid() else self._root  # type: ignore[return-value]

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        node = self._node(parent)
        if not 0 <= row < len(node.children) or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        node = self._node(index).parent
        if node is None or node is self._root:
            return QModelIndex()
        return self.createIndex(node.row(), 0, node)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or self._session is None:
            return None
        node = self._node(index)
        column = index.column()
        if role == PARAM_ROLE:
            return node.param if node.prunable else ""
        if role == PRUNABLE_ROLE:
            return bool(node.param and node.prunable)
        if not node.prunable:
            return self._fixed_data(node, column, role)
        if role == PATH_ROLE:
            return node.path
        if role == TYPE_ROLE:
            return node.type_name
        params, kept = self._counts(node)
        sparsity = 1 - kept / params if params else 0.0
        if role == SPARSITY_ROLE:
            return sparsity
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(node, column, params, kept, sparsity)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return layer_icon(family(node.type_name))
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, params, kept)
        if role == Qt.ItemDataRole.ForegroundRole and node.param and sparsity >= 1.0:
            return QColor("#c0392b")
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if not self._node(index).prunable:  # greyed: not a target of the session
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def _fixed_data(self, node: _Node, column: int, role: int) -> object:
        """What a parameter the session does not prune shows (no counts of kept weights)."""
        if role == PATH_ROLE:
            return node.path
        if role == TYPE_ROLE:
            return node.type_name
        if role == Qt.ItemDataRole.DisplayRole:
            texts = {
                0: node.label,
                2: " × ".join(map(str, node.shape)),
                3: f"{node.numel:,}",
                5: "not prunable",
            }
            return texts.get(column, "")
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return layer_icon(family(node.type_name))
        if role == Qt.ItemDataRole.TextAlignmentRole and column >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            shape = " × ".join(map(str, node.shape))
            if node.kind:
                how = (
                    f"Make it prunable with Model > Prunable parameters > {kind_text(node.kind)} "
                    "(or right-click the tree)."
                )
            else:
                how = "No kind of target includes it (only weights, biases, embeddings and "
                how += "parameters of two or more dimensions can be pruned)."
            return f"{node.param}: {node.type_name} {shape}, not prunable now.\n{how}"
        return None

    # -- formatting -----------------------------------------------------------------
    def _counts(self, node: _Node) -> tuple[int, int]:
        """(params, kept) of a node, cached until the next :meth:`refresh`."""
        cached = self._counts_cache.get(id(node))
        if cached is not None:
            return cached
        assert self._session is not None
        params = kept = 0
        for leaf in node.leaves():
            numel = self._session.info(leaf.param).numel
            mask = self._session.packed_mask(leaf.param)
            params += numel
            kept += numel if mask is None else mask.kept
        self._counts_cache[id(node)] = (params, kept)
        return params, kept

    def _text(self, node: _Node, column: int, params: int, kept: int, sparsity: float) -> str:
        assert self._session is not None
        if column == 0:
            return node.label
        if column == 1:
            return "" if node.param else node.type_name
        if column == 2:
            return " × ".join(map(str, self._session.info(node.param).shape)) if node.param else ""
        if column == 3:
            return f"{params:,}"
        if column == 4:
            return f"{kept:,}"
        return f"{sparsity:.1%}"

    def _tooltip(self, node: _Node, params: int, kept: int) -> str:
        assert self._session is not None
        if not node.param:
            return f"{node.type_name}: {params:,} prunable weights, {kept:,} kept"
        info = self._session.info(node.param)
        extra = " (pruning made permanent)" if self._session.is_permanent(node.param) else ""
        aliases = f"\nShared with: {', '.join(info.aliases)}" if info.aliases else ""
        counts = f"{kept:,} of {params:,} kept"
        return f"{node.param}: {info.module_type} {info.dtype}, {counts}{extra}{aliases}"


class SparsityBarDelegate(QStyledItemDelegate):
    """Draws sparsity as a bar behind the percentage text."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        sparsity = index.data(SPARSITY_ROLE)
        if isinstance(sparsity, float):
            rect: QRect = option.rect.adjusted(2, 3, -2, -3)
            painter.save()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#eceff1"))
            painter.drawRect(rect)
            colour = QColor("#c0392b") if sparsity >= 1.0 else QColor("#e67e22")
            colour.setAlpha(150)
            painter.setBrush(colour)
            painter.drawRect(
                QRect(rect.left(), rect.top(), int(rect.width() * sparsity), rect.height())
            )
            painter.restore()
        super().paint(painter, option, index)


class PathFilterProxy(QSortFilterProxyModel):
    """Keeps rows whose dotted path or type contains the filter text (case-insensitive).

    ``layer4.1.conv2``, ``4.1.conv`` and ``conv2.weight`` all find ResNet-18's
    ``layer4.1.conv2.weight``; ancestors of a match stay (they lead to it), and so does
    everything below a matching module.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self.setRecursiveFilteringEnabled(True)
        self.setAutoAcceptChildRows(True)
        # Names and types never change, so sparsity updates need no re-filtering.
        self.setDynamicSortFilter(False)

    def set_text(self, text: str) -> None:
        """Filter on ``text`` (surrounding spaces ignored; empty shows everything)."""
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self.endFilterChange()

    def matches(self, source: QModelIndex) -> bool:
        """Whether a row of the source model matches by itself (not through its family)."""
        if not self._text:
            return True
        path = str(source.data(PATH_ROLE) or "").casefold()
        type_name = str(source.data(TYPE_ROLE) or "").casefold()
        return self._text in path or self._text in type_name

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        return self.matches(self.sourceModel().index(source_row, 0, source_parent))


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
        """Show ``session``'s parameters (expands everything)."""
        self.model.set_session(session)
        self.proxy.set_text(self.filter.text())
        self.tree.expandAll()
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
