"""The Qt item model of the model tree: modules and every parameter, with live sparsity.

:class:`ParameterTreeModel` is a Qt item model over a pruning session (its
nodes come from :mod:`gui.panels.parameter_nodes`): module nodes aggregate
their prunable parameters; leaves are every ``named_parameters()`` entry, those
the session does not prune greyed out (their tooltip names the kind that would
make them prunable, see :mod:`gui.session.target_kinds`). The roles it serves
besides Qt's are the ``*_ROLE`` constants here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from gui.panels.parameter_nodes import TreeNode, build_nodes
from gui.session.target_kinds import kind_text
from gui.widgets.icons import family, layer_icon

if TYPE_CHECKING:
    from core.pruning.session import PruningSession

COLUMNS = ("Name", "Type", "Shape", "Params", "Kept", "Sparsity")
SPARSITY_COLUMN = COLUMNS.index("Sparsity")
#: The last column a new window shows whole (the tree's dock is sized to fit it).
KEPT_COLUMN = COLUMNS.index("Kept")
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


class ParameterTreeModel(QAbstractItemModel):
    """Item model of a model's parameters grouped by module; the session's targets enabled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: PruningSession | None = None
        self._root = TreeNode("", "")
        self._leaf_by_param: dict[str, TreeNode] = {}
        self._counts_cache: dict[int, tuple[int, int]] = {}

    # -- building ---------------------------------------------------------------
    def set_session(self, session: PruningSession | None) -> None:
        """Rebuild the tree for ``session``."""
        self.beginResetModel()
        self._session = session
        self._root, self._leaf_by_param = build_nodes(session)
        self._counts_cache = {}
        self.endResetModel()

    def refresh(self, names: tuple[str, ...] | None = None) -> None:
        """Tell views that counts of ``names`` (default: all) changed."""
        if self._session is None:
            return
        self._counts_cache = {}
        wanted = names or tuple(self._leaf_by_param)
        # One dataChanged per parent, spanning the changed rows: views recompute once.
        rows: dict[int, tuple[TreeNode, list[int]]] = {}
        for name in wanted:
            node: TreeNode | None = self._leaf_by_param.get(name)
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
    def _node(self, index: Index) -> TreeNode:
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

    def _fixed_data(self, node: TreeNode, column: int, role: int) -> object:
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
    def _counts(self, node: TreeNode) -> tuple[int, int]:
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

    def _text(self, node: TreeNode, column: int, params: int, kept: int, sparsity: float) -> str:
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

    def _tooltip(self, node: TreeNode, params: int, kept: int) -> str:
        assert self._session is not None
        if not node.param:
            return f"{node.type_name}: {params:,} prunable weights, {kept:,} kept"
        info = self._session.info(node.param)
        extra = " (pruning made permanent)" if self._session.is_permanent(node.param) else ""
        aliases = f"\nShared with: {', '.join(info.aliases)}" if info.aliases else ""
        counts = f"{kept:,} of {params:,} kept"
        return f"{node.param}: {info.module_type} {info.dtype}, {counts}{extra}{aliases}"
