"""Live curves of a fine-tune: training and validation loss, validation accuracy, per epoch.

:class:`FinetuneCurves` gets one :class:`core.training.finetune.EpochRecord` per
finished epoch (:meth:`FinetuneCurves.add`) and draws two plots side by side,
epochs on x: the losses (train solid, validation dashed) and the validation
top-1 in percent. A record of epoch 0 (the validation before training, when the
engine reports it) is drawn as the starting point of the validation curves.
When the run ends, :meth:`FinetuneCurves.mark_chosen` draws a line at the epoch
that was kept.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QWidget

from core.training.finetune import EpochRecord
from gui.widgets.colormaps import ACCENT_RGB, BACKGROUND, INK, NEUTRAL_RGB, hex_color, style_plot

TRAIN_RGB: tuple[int, int, int] = (33, 113, 181)
"""Training loss (a Blues shade)."""
VAL_RGB: tuple[int, int, int] = ACCENT_RGB
"""Validation curves (the accent)."""


def _plot(title: str, left: str) -> pg.PlotWidget:
    widget = pg.PlotWidget(background=BACKGROUND)
    plot = widget.getPlotItem()
    style_plot(plot)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setTitle(title, color=INK, size="10pt")
    plot.setLabel("bottom", "epoch", color=INK)
    widget.setToolTip(
        "One point per finished epoch (0: the validation before training); the dotted "
        "line marks the epoch whose weights were kept"
    )
    plot.setLabel("left", left, color=INK)
    plot.getAxis("bottom").setTickSpacing(levels=[(5, 0), (1, 0)])
    widget.setMinimumHeight(150)
    return widget


class FinetuneCurves(QWidget):
    """Loss and validation-accuracy curves, one point per finished epoch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_plot = _plot("Loss", "loss")
        self.accuracy_plot = _plot("Validation top-1", "top-1 (%)")
        loss = self.loss_plot.getPlotItem()
        self._train_name = "train"
        symbol = {"symbol": "o", "symbolSize": 6}
        self.train_curve = loss.plot(
            [], [], name="train", pen=pg.mkPen(TRAIN_RGB, width=2),
            symbolBrush=TRAIN_RGB, symbolPen=None, **symbol,
        )  # fmt: skip
        self.val_loss_curve = loss.plot(
            [], [], name="validation",
            pen=pg.mkPen(VAL_RGB, width=2, style=Qt.PenStyle.DashLine),
            symbolBrush=VAL_RGB, symbolPen=None, **symbol,
        )  # fmt: skip
        self.accuracy_curve = self.accuracy_plot.getPlotItem().plot(
            [], [], pen=pg.mkPen(VAL_RGB, width=2), symbolBrush=VAL_RGB, symbolPen=None, **symbol
        )
        self._chosen_lines: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self._records: list[EpochRecord] = []
        self._start: EpochRecord | None = None
        self._planned = 0
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.accuracy_plot)
        self.clear()

    # -- public API -----------------------------------------------------------------
    def clear(self, planned_epochs: int = 0, distilled: bool = False) -> None:
        """Empty the plots; the x axes span ``planned_epochs`` (when known).

        ``distilled``: the training loss is the distillation loss (not comparable to
        the validation cross-entropy), and the legend says so.
        """
        self._train_name = "train (distillation)" if distilled else "train"
        self._records = []
        self._start = None
        self._planned = planned_epochs
        self._remove_chosen()
        self._redraw()

    def add(self, record: EpochRecord) -> None:
        """Add one finished epoch (epoch 0: the validation before training)."""
        if record.epoch <= 0:
            self._start = record
        else:
            self._records = [r for r in self._records if r.epoch != record.epoch] + [record]
            self._records.sort(key=lambda r: r.epoch)
        self._redraw()

    def mark_chosen(self, epoch: int) -> None:
        """Draw a line at the epoch that was kept (0 or less: none)."""
        self._remove_chosen()
        if epoch <= 0:
            return
        for widget in (self.loss_plot, self.accuracy_plot):
            line = pg.InfiniteLine(
                pos=epoch,
                angle=90,
                pen=pg.mkPen(NEUTRAL_RGB, width=1.5, style=Qt.PenStyle.DotLine),
            )
            widget.getPlotItem().addItem(line)
            self._chosen_lines.append((widget.getPlotItem(), line))
        self._titles(epoch)

    @property
    def chosen_epoch(self) -> int:
        """The epoch marked as kept (0: none)."""
        return int(self._chosen_lines[0][1].value()) if self._chosen_lines else 0

    @property
    def records(self) -> tuple[EpochRecord, ...]:
        """The epochs drawn (1-based, in order)."""
        return tuple(self._records)

    def points(self) -> dict[str, list[tuple[float, float]]]:
        """The drawn points of each curve: ``train_loss``, ``val_loss``, ``val_top1`` (%)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for key, curve in (
            ("train_loss", self.train_curve),
            ("val_loss", self.val_loss_curve),
            ("val_top1", self.accuracy_curve),
        ):
            xs, ys = curve.getData()
            out[key] = (
                [] if xs is None else [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
            )
        return out

    # -- drawing ------------------------------------------------------------------------
    def _redraw(self) -> None:
        records = self._records
        self.train_curve.setData([float(r.epoch) for r in records], [r.train_loss for r in records])
        start = [self._start] if self._start is not None else []
        val = [r for r in (*start, *records) if _finite(r.val_loss)]
        self.val_loss_curve.setData([float(r.epoch) for r in val], [r.val_loss for r in val])
        top1 = [r for r in (*start, *records) if _finite(r.val_top1)]
        self.accuracy_curve.setData(
            [float(r.epoch) for r in top1], [100.0 * (r.val_top1 or 0.0) for r in top1]
        )
        last = max([self._planned, *(r.epoch for r in records), 1])
        first = 0 if self._start is not None else 1
        for widget in (self.loss_plot, self.accuracy_plot):
            widget.getPlotItem().setXRange(first - 0.3, last + 0.3, padding=0)

    def _remove_chosen(self) -> None:
        for plot, line in self._chosen_lines:
            plot.removeItem(line)
        self._chosen_lines = []
        self._titles(0)

    def _titles(self, kept: int) -> None:
        """Titles that are also the legend (nothing drawn over the curves)."""

        def key(rgb: tuple[int, int, int], mark: str, text: str) -> str:
            return f"<span style='color:{hex_color(rgb)}'>{mark}</span>&nbsp;{text}"

        kept_text = f"&nbsp;&nbsp;{key(NEUTRAL_RGB, '┆', f'kept: {kept}')}" if kept > 0 else ""
        loss = f"Loss&nbsp;&nbsp;{key(TRAIN_RGB, '━', self._train_name)}&nbsp;&nbsp;"
        loss += key(VAL_RGB, "╍", "validation")
        self.loss_plot.getPlotItem().setTitle(loss, color=INK, size="9pt")
        self.accuracy_plot.getPlotItem().setTitle(
            f"Validation top-1{kept_text}", color=INK, size="9pt"
        )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
