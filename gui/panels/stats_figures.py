"""The statistics panel's grid of figures: counts, sparsity, accuracy, FLOPs and size.

:class:`StatsFigures` lays out a caption and a bold value for every key of
:data:`~gui.panels.stats_format.VALUE_KEYS` (and ``accuracy``): parameters,
non-zeros, sparsity of the prunable part and of the whole model, then a small
dense / pruned / ratio table of FLOPs and size. Beside the FLOPs sit the
"Set input…" button and the description of the example input; what they do is
the panel's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QWidget

from gui.panels.stats_format import format_mb, format_percent, stats_values
from gui.widgets.colormaps import MUTED

if TYPE_CHECKING:
    from core.analysis.stats import ModelStats


class StatsFigures(QWidget):
    """Whole-model figures in a grid, with the example input's button and description.

    Args:
        parent: the Qt parent.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(4)
        pairs = (
            ((0, 0), "Parameters", "total", "every parameter of the model"),
            ((0, 2), "Prunable", "prunable", "entries of the parameters that can be pruned"),
            ((1, 0), "Non-zeros", "nonzeros", "parameters whose value is not exactly 0"),
            ((1, 2), "Pruned", "pruned", "entries pruned by the masks"),
            ((2, 0), "Sparsity", "sparsity", "pruned share of the prunable entries"),
            ((2, 2), "Whole model", "model_sparsity", "pruned share of all parameters"),
            ((2, 4), "Accuracy", "accuracy", "top-1 accuracy on the test split in this state: "
             "measured after every step for the digits demos, else by Evaluate in the "
             "Accuracy tab"),
        )  # fmt: skip
        for (row, col), title, key, tip in pairs:
            grid.addWidget(self._caption(title, tip), row, col)
            grid.addWidget(self._value(key, tip), row, col + 1)
        self._build_table(grid, first_row=3)
        grid.setColumnStretch(6, 1)

    def _build_table(self, grid: QGridLayout, first_row: int) -> None:
        for col, text in enumerate(("dense", "pruned", "ratio"), start=1):
            header = self._caption(text, "")
            header.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom)
            header.setContentsMargins(0, 6, 0, 0)
            grid.addWidget(header, first_row, col)
        rows = (
            ("FLOPs", ("flops_dense", "flops_effective", "flops_ratio"),
             "per forward pass of the example input (2 per multiply-add); effective = "
             "dense × kept fraction, what a sparse kernel would execute"),
            ("Size", ("size_dense", "size_sparse", "compression"),
             "MB of 10^6 bytes; pruned = kept values + a 1-bit mask per pruned layer"),
        )  # fmt: skip
        for offset, (title, keys, tip) in enumerate(rows, start=1):
            grid.addWidget(self._caption(title, tip), first_row + offset, 0)
            for col, key in enumerate(keys, start=1):
                grid.addWidget(self._value(key, tip), first_row + offset, col)
        self.input_button = QPushButton("Set input…", self)
        self.input_button.setObjectName("set_input")
        self.input_button.setToolTip(
            "Give the example input FLOPs are counted on: its shape including the batch, "
            "dtype, and for token ids their range. Remembered for this model."
        )
        self.input_button.setText("Change input…")  # the wider text sets the width
        self.input_button.setMinimumWidth(self.input_button.sizeHint().width())
        self.input_label = self._caption("", "the example input FLOPs are counted on")
        self.input_label.setObjectName("input_description")
        grid.addWidget(self.input_button, first_row + 1, 4)
        grid.addWidget(self.input_label, first_row + 1, 5, 1, 2)

    def _caption(self, text: str, tip: str) -> QLabel:
        label = QLabel(text, self)
        palette = label.palette()
        palette.setColor(label.foregroundRole(), QColor(MUTED))
        label.setPalette(palette)
        label.setToolTip(tip)
        return label

    def _value(self, key: str, tip: str) -> QLabel:
        label = QLabel("", self)
        label.setObjectName(f"stat_{key}")
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setToolTip(tip)
        font = QFont(label.font())
        font.setBold(True)
        font.setFeature(QFont.Tag("tnum"), 1)  # tabular digits line up in columns
        label.setFont(font)
        self._values[key] = label
        return label

    def show_stats(self, stats: ModelStats) -> None:
        """Fill every figure but the accuracy from ``stats``."""
        for key, text in stats_values(stats).items():
            self._values[key].setText(text)
        compression = self._values["compression"]
        compression.setToolTip(
            f"{format_mb(stats.bytes_dense)} / {format_mb(stats.bytes_sparse)}"
            if math.isfinite(stats.compression)
            else "nothing left to store"
        )

    def show_accuracy(self, accuracy: float) -> None:
        """Show the top-1 test accuracy (NaN: not measured here)."""
        label = self._values["accuracy"]
        label.setText("n/a" if math.isnan(accuracy) else format_percent(accuracy))

    def clear(self) -> None:
        """Show dashes in every figure."""
        for label in self._values.values():
            label.setText("–")

    def value_text(self, key: str) -> str:
        """The text shown for figure ``key``.

        ``key`` is one of :data:`~gui.panels.stats_format.VALUE_KEYS`, or ``accuracy``.
        """
        return self._values[key].text()
