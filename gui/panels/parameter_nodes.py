"""The nodes of the model tree: modules, and every parameter of a session's model.

:func:`build_nodes` arranges a session's ``named_parameters()`` under their
modules, one leaf per tensor (tied weights once, under the session's name when
it prunes them). Leaves the session does not prune keep their shape and the
kind of target that would make them prunable (see
:mod:`gui.session.target_kinds`). :class:`~gui.panels.parameter_tree_model.ParameterTreeModel`
shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gui.session.target_kinds import offering_kinds

if TYPE_CHECKING:
    from core.pruning.session import PruningSession


@dataclass
class TreeNode:
    """A module (``param`` empty) or a parameter of the model tree."""

    label: str
    type_name: str
    param: str = ""  # qualified parameter name for leaves
    parent: TreeNode | None = None
    path: str = ""  # dotted path: the module's, or the parameter's qualified name
    children: list[TreeNode] = field(default_factory=list)
    prunable: bool = True  # leaves only: whether the session prunes it
    shape: tuple[int, ...] = ()  # of a leaf the session does not prune
    kind: str = ""  # the target option that would make such a leaf prunable ("": none)

    def row(self) -> int:
        """The node's row under its parent (0 for the root)."""
        return self.parent.children.index(self) if self.parent else 0

    def leaves(self) -> list[TreeNode]:
        """The prunable leaves at or below this node."""
        if self.param:
            return [self] if self.prunable else []
        return [leaf for child in self.children for leaf in child.leaves()]

    def module_child(self, label: str, type_name: str) -> TreeNode:
        """The child module ``label``, added (of type ``type_name``) if not there yet."""
        for child in self.children:
            if child.label == label and not child.param:
                return child
        path = f"{self.path}.{label}" if self.path else label
        node = TreeNode(label, type_name, parent=self, path=path)
        self.children.append(node)
        return node

    @property
    def numel(self) -> int:
        """The number of entries of :attr:`shape`."""
        count = 1
        for size in self.shape:
            count *= size
        return count


def build_nodes(session: PruningSession | None) -> tuple[TreeNode, dict[str, TreeNode]]:
    """The root of ``session``'s tree and its leaves by parameter name (bare without one)."""
    root = TreeNode("", "")
    leaf_by_param: dict[str, TreeNode] = {}
    if session is None:
        return root, leaf_by_param
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
        parent = root
        path = module_name.split(".") if module_name else []
        for depth in range(len(path)):
            qualified = ".".join(path[: depth + 1])
            parent = parent.module_child(path[depth], type(modules[qualified]).__name__)
        module_type = type(modules[module_name]).__name__
        leaf = TreeNode(name.rpartition(".")[2], module_type, name, parent, path=name)
        if name not in targets:
            leaf.prunable = False
            leaf.shape = tuple(tensors[key].shape)
            leaf.kind = kinds.get(name, "")
        parent.children.append(leaf)
        leaf_by_param[name] = leaf
    return root, leaf_by_param
