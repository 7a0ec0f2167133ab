"""An evaluation's results: the headline figures, accuracy per class, the confusion matrix.

:class:`EvaluationView` shows a :class:`core.training.evaluate.Evaluation`: top-1,
top-5 (more than 5 classes), loss and fidelity (agreement with the unpruned
model's predictions) in a row of figures; below, two tables (Qt models): one row
per class (samples, correct, accuracy, the class it is most often mistaken for;
sortable, so the weakest classes come to the top) and the confusion matrix
(rows: true class, columns: predicted class; the diagonal in blue by the row's
share, mistakes in red).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.training.evaluate import Evaluation
from gui.widgets.colormaps import ALARM_RGB, MUTED, sparsity_color

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("top1", "Top-1", "share of samples whose highest-scoring class is the true one"),
    ("top5", "Top-5", "share of samples whose true class is among the 5 highest scores "
     "(shown when there are more than 5 classes)"),
    ("loss", "Loss", "mean cross-entropy of the model's predictions (lower is better)"),
    ("fidelity", "Fidelity", "share of samples where the pruned model predicts the same class "
     "as the unpruned one; needs no labels"),
    ("count", "Samples", "samples evaluated"),
)  # fmt: skip


def percent(value: float | None) -> str:
    """``97.2%``; ``–`` for None or NaN."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100.0 * value:.1f}%"


def class_labels(count: int, names: Sequence[str] | None = None) -> list[str]:
    """Labels of ``count`` classes: the given names, else ``0``, ``1``, ..."""
    if names is not None and len(names) == count:
        return [str(n) for n in names]
    return [str(i) for i in range(count)]


def _blend(rgb: tuple[int, int, int], amount: float) -> QColor:
    """``rgb`` mixed into white by ``amount`` in [0, 1]."""
    a = min(max(amount, 0.0), 1.0)
    return QColor(*(round(255 + (c - 255) * a) for c in rgb))


def _ink_on(color: QColor) -> QColor:
    return QColor("white") if color.lightnessF() < 0.55 else QColor("#202124")


class ClassTableModel(QAbstractTableModel):
    """One row per class: class, samples, correct, accuracy, most confused with."""

    HEADERS = ("Class", "Samples", "Correct", "Accuracy", "Most confused with")
    TIPS = (
        "the class (its index in the model's output)",
        "samples of this class in the split",
        "of those, predicted as this class",
        "correct / samples (– when the split has no sample of the class)",
        "the wrong class this one is predicted as most often, and how often",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, int, int, float, str, int]] = []

    def set_evaluation(self, evaluation: Evaluation | None, names: Sequence[str] | None) -> None:
        """Show the per-class figures of ``evaluation`` (None: empty)."""
        self.beginResetModel()
        self._rows = []
        if evaluation is not None and evaluation.confusion:
            labels = class_labels(len(evaluation.confusion), names)
            for i, row in enumerate(evaluation.confusion):
                samples = sum(row)
                correct = row[i] if i < len(row) else 0
                accuracy = evaluation.per_class[i] if i < len(evaluation.per_class) else math.nan
                wrong = [(n, j) for j, n in enumerate(row) if j != i and n > 0]
                count, j = max(wrong, default=(0, -1))
                confused = f"{labels[j]} ({count})" if j >= 0 else ""
                self._rows.append((labels[i], samples, correct, accuracy, confused, count))
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.HEADERS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        name, samples, correct, accuracy, confused, count = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (name, f"{samples:,}", f"{correct:,}", percent(accuracy), confused)[col]
        if role == SORT_ROLE:
            key: tuple[object, ...] = (
                index.row(),
                samples,
                correct,
                accuracy if math.isfinite(accuracy) else 2.0,
                count,
            )
            return key[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and col == 3 and math.isfinite(accuracy):
            return QBrush(_blend(ALARM_RGB, min(1.0, 2.5 * (1.0 - accuracy))))
        return None

    def accuracies(self) -> list[float]:
        """The accuracy column as fractions, in class order."""
        return [row[3] for row in self._rows]


class ConfusionModel(QAbstractTableModel):
    """The confusion matrix: counts [true][predicted], coloured by the row's share."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._matrix: tuple[tuple[int, ...], ...] = ()
        self._labels: list[str] = []

    def set_evaluation(self, evaluation: Evaluation | None, names: Sequence[str] | None) -> None:
        """Show ``evaluation``'s confusion matrix (None: empty)."""
        self.beginResetModel()
        self._matrix = evaluation.confusion if evaluation is not None else ()
        self._labels = class_labels(len(self._matrix), names)
        self.endResetModel()

    def matrix(self) -> tuple[tuple[int, ...], ...]:
        """The counts shown, [true][predicted]."""
        return self._matrix

    def total(self) -> int:
        """Every count in the matrix: the labelled samples evaluated."""
        return sum(sum(row) for row in self._matrix)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._matrix)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() or not self._matrix else len(self._matrix[0])

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self._labels):
            return self._labels[section]
        if role == Qt.ItemDataRole.ToolTipRole and 0 <= section < len(self._labels):
            side = "predicted" if orientation == Qt.Orientation.Horizontal else "true"
            return f"{side} class {self._labels[section]}"
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        i, j = index.row(), index.column()
        row = self._matrix[i]
        count = row[j]
        share = count / sum(row) if sum(row) else 0.0
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{count:,}" if count else ""
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"true {self._labels[i]}, predicted {self._labels[j]}: {count:,} "
                f"({percent(share)} of class {self._labels[i]})"
            )
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            if i == j:
                color = QColor(*sparsity_color(min(share, 0.999))) if count else QColor("white")
            else:
                color = _blend(ALARM_RGB, min(1.0, 4.0 * share)) if count else QColor("white")
            if role == Qt.ItemDataRole.ForegroundRole:
                return QBrush(_ink_on(color))
            return QBrush(color)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None


class EvaluationView(QWidget):
    """Headline figures above the per-class table and the confusion matrix."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._evaluation: Evaluation | None = None
        self._values: dict[str, QLabel] = {}
        self.where = QLabel(self)
        self.where.setWordWrap(True)
        self.where.setObjectName("evaluationWhere")
        self.class_model = ClassTableModel(self)
        self.confusion_model = ConfusionModel(self)
        self.class_table = QTableView(self)
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self.class_model)
        proxy.setSortRole(SORT_ROLE)
        self.class_table.setModel(proxy)
        self.class_table.setSortingEnabled(True)
        self.class_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.confusion_table = QTableView(self)
        self.confusion_table.setModel(self.confusion_model)
        self.confusion_table.setShowGrid(True)
        for table in (self.class_table, self.confusion_table):
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.verticalHeader().setDefaultSectionSize(22)
        self.class_table.verticalHeader().hide()
        self.class_table.horizontalHeader().setStretchLastSection(True)
        self.class_table.setAlternatingRowColors(True)
        confusion_header = self.confusion_table.horizontalHeader()
        confusion_header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        confusion_header.setDefaultSectionSize(44)
        self.confusion_table.setToolTip("Rows: true class · columns: predicted class")
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.class_table, "Per class")
        confusion_page = QWidget(self)
        confusion_layout = QVBoxLayout(confusion_page)
        confusion_layout.setContentsMargins(0, 4, 0, 0)
        axes = QLabel(
            "rows: true class  ·  columns: predicted class  ·  "
            "blue: correct (share of the row)  ·  red: mistakes",
            confusion_page,
        )
        axes.setStyleSheet(f"color: {MUTED};")
        confusion_layout.addWidget(axes)
        confusion_layout.addWidget(self.confusion_table, 1)
        self.tabs.addTab(confusion_page, "Confusion matrix")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._figures())
        layout.addWidget(self.where)
        layout.addWidget(self.tabs, 1)
        self.clear()

    def _figures(self) -> QWidget:
        box = QWidget(self)
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(22)
        grid.setVerticalSpacing(0)
        for col, (key, title, tip) in enumerate(FIGURES):
            caption = QLabel(title, box)
            caption.setStyleSheet(f"color: {MUTED};")
            caption.setToolTip(tip)
            value = QLabel("–", box)
            value.setObjectName(f"evaluation_{key}")
            value.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            font = QFont(value.font())
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.35)
            font.setFeature(QFont.Tag("tnum"), 1)
            value.setFont(font)
            grid.addWidget(caption, 0, col)
            grid.addWidget(value, 1, col)
            self._values[key] = value
        grid.setColumnStretch(len(FIGURES), 1)
        return box

    # -- public API -----------------------------------------------------------------
    @property
    def evaluation(self) -> Evaluation | None:
        """The evaluation shown (None: none yet)."""
        return self._evaluation

    def show_evaluation(
        self, evaluation: Evaluation, where: str = "", names: Sequence[str] | None = None
    ) -> None:
        """Show ``evaluation``; ``where`` says at which step and on what it was measured."""
        self._evaluation = evaluation
        e = evaluation
        self._values["top1"].setText(percent(e.top1))
        self._values["top5"].setText(percent(e.top5))
        self._values["loss"].setText("–" if e.loss is None else f"{e.loss:.4g}")
        self._values["fidelity"].setText(percent(e.fidelity))
        self._values["count"].setText(f"{e.count:,} {e.split}")
        self.set_note(where)
        self.class_model.set_evaluation(e, names)
        self.confusion_model.set_evaluation(e, names)
        self.confusion_table.resizeRowsToContents()
        self.class_table.resizeColumnsToContents()
        labelled = bool(e.confusion)
        self.tabs.setEnabled(labelled)
        self.tabs.setToolTip("" if labelled else "No labels: only fidelity can be measured")

    def set_note(self, text: str, stale: bool = False) -> None:
        """The line under the figures; ``stale`` greys the figures (the model changed)."""
        self.where.setText(text)
        color = MUTED if stale else "#202124"
        self.where.setStyleSheet(f"color: {MUTED};" if not stale else "color: #b05a00;")
        for value in self._values.values():
            value.setStyleSheet(f"color: {color};")

    def clear(self, note: str = "") -> None:
        """No results (yet)."""
        self._evaluation = None
        for value in self._values.values():
            value.setText("–")
        self.set_note(note)
        self.class_model.set_evaluation(None, None)
        self.confusion_model.set_evaluation(None, None)

    def value_text(self, key: str) -> str:
        """The text of a headline figure: ``top1``, ``top5``, ``loss``, ``fidelity``, ``count``."""
        return self._values[key].text()
