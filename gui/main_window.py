"""The main window: for now, a table of the model's parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QMainWindow, QTreeView, QWidget

if TYPE_CHECKING:
    from torch import nn

COLUMNS = ("Parameter", "Shape", "Count")


def _format_shape(shape: tuple[int, ...]) -> str:
    return " × ".join(str(d) for d in shape) if shape else "scalar"


class MainWindow(QMainWindow):
    """Top-level window listing ``model.named_parameters()`` with shape and size."""

    def __init__(
        self,
        model: nn.Module | None = None,
        model_name: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("PruneScope")
        self.resize(900, 600)

        self._parameters = QStandardItemModel(0, len(COLUMNS), self)
        self._parameters.setHorizontalHeaderLabels(list(COLUMNS))

        self._tree = QTreeView(self)
        self._tree.setObjectName("parameterTree")
        self._tree.setModel(self._parameters)
        self._tree.setRootIsDecorated(False)
        self._tree.setUniformRowHeights(True)
        self._tree.setAlternatingRowColors(True)
        self._tree.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        header = self._tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.setCentralWidget(self._tree)

        if model is not None:
            self.set_model(model, model_name)

    @property
    def parameter_tree(self) -> QTreeView:
        return self._tree

    @property
    def parameter_model(self) -> QStandardItemModel:
        return self._parameters

    def set_model(self, model: nn.Module, model_name: str = "") -> None:
        """Show ``model``'s parameters, one row each, replacing what was shown."""
        self._parameters.removeRows(0, self._parameters.rowCount())
        total = 0
        for name, param in model.named_parameters():
            count = param.numel()
            total += count
            shape = tuple(param.shape)
            row = [
                QStandardItem(name),
                QStandardItem(_format_shape(shape)),
                QStandardItem(f"{count:,}"),
            ]
            row[1].setData(shape, Qt.ItemDataRole.UserRole)
            row[2].setData(count, Qt.ItemDataRole.UserRole)
            row[2].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for item in row:
                item.setEditable(False)
            self._parameters.appendRow(row)

        label = f"{model_name}: " if model_name else ""
        rows = self._parameters.rowCount()
        self.statusBar().showMessage(f"{label}{rows} parameter tensors, {total:,} weights")
