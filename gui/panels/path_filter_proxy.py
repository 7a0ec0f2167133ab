"""The model tree's filter: rows whose dotted path or type name contains the typed text."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel
from PySide6.QtWidgets import QWidget

from gui.panels.parameter_tree_model import PATH_ROLE, TYPE_ROLE, Index


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
