"""The Layer tab: the selected parameter's title, its three heatmaps and its histogram.

:class:`LayerTab` owns which parameter is selected and which one its views last
drew. It reads a layer through the controller (:meth:`SessionController.fetch_layer`)
and draws the snapshot when that request finishes, shows the pruning controls'
previews, and turns paint strokes on the heatmaps into
:class:`~core.pruning.operations.PaintStroke` operations. The window wires the
controller's broadcasts to its slots.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.pruning.operations import PaintStroke
from core.viz.display import LAYOUTS, display_shape
from gui.heatmap.histogram import MagnitudeHistogram
from gui.heatmap.layer_views import LayerViews
from gui.session.controller import SessionController
from gui.session.layer_reads import LayerSnapshot, Preview
from gui.widgets.export import Exportable


def _elongation(shape: tuple[int, int]) -> float:
    """How far a rows x cols picture is from square (0 for a square)."""
    rows, cols = shape
    return abs(math.log(max(rows, 1) / max(cols, 1)))


class LayerTab(QWidget):
    """The Layer tab's page and what it shows (see module docstring).

    Signals:
        message(text, timeout_ms): a line for the status bar (a paint stroke was sent).
    """

    message = Signal(str, int)

    def __init__(self, controller: SessionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.views = LayerViews(self)
        self.histogram = MagnitudeHistogram(self)
        self.title = QLabel("Select a layer in the model tree", self)
        self.title.setObjectName("layerTitle")
        self.title.setStyleSheet("font-weight: 600; font-size: 13pt; padding: 4px 2px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.views, 3)
        layout.addWidget(self.histogram, 1)
        self._current: str = ""  # parameter selected for the layer views
        self._shown: str = ""  # parameter the layer views last drew
        self.views.paint_stroke_finished.connect(self._on_paint)

    @property
    def current(self) -> str:
        """The parameter selected for the views ("" when none)."""
        return self._current

    def figure_items(self) -> Exportable:
        """What File > Export view draws of this tab: the title, three heatmaps, the histogram."""
        plots = [view.plot_item for view in self.views.views]
        return [self.title, *plots, self.histogram.getPlotItem()]

    # -- slots the window wires ------------------------------------------------------------
    def forget(self) -> None:
        """A new or replaced model: nothing is selected, and the next layer drawn is new."""
        self._current, self._shown = "", ""

    def select(self, name: str) -> None:
        """Show parameter ``name`` ("" selects nothing): read it in a worker, then draw it."""
        self._current = name
        self._show_current()

    def masks_changed(self, names: tuple[str, ...]) -> None:
        """Read the selected parameter again when its mask changed."""
        if self._current in names:
            self._show_current()

    def show_preview(self, preview: Preview) -> None:
        """Show a pruning preview of the layer on screen (others are ignored)."""
        layer = preview.layer
        if layer is not None and layer.name == self._current and self._shown == layer.name:
            self.views.show_preview_mask(layer.mask)
            self.histogram.show_threshold(layer.threshold)

    # -- reactions ---------------------------------------------------------------------------
    def _show_current(self) -> None:
        if self.controller.session is not None and self._current:
            self.controller.fetch_layer(self._current).finished.connect(self._on_layer_ready)

    def _on_layer_ready(self, views: LayerSnapshot) -> None:
        session, name = self.controller.session, views.name
        if session is None or name != self._current:
            return
        info = session.info(name)
        shape = " × ".join(map(str, info.shape))
        pruned = views.figures.sparsity  # counted in the worker with the views
        self.title.setText(f"{name}  ·  {info.module_type}  ·  {shape}  ·  {pruned:.1%} pruned")
        layout = None
        if name != self._shown:  # a new layer: the layout whose picture is squarest
            layout = min(LAYOUTS, key=lambda lay: _elongation(display_shape(info.shape, lay)))
        self._shown = name
        self.views.show_layer(views.original, views.mask, views.effective, layout=layout)
        self.histogram.show_counts(views.counts)
        self.histogram.show_threshold(None)  # a fresh layer ends any preview

    def _on_paint(self, cells: list[tuple[int, int]], keep: bool) -> None:
        session = self.controller.session
        name = self._current
        if session is None or not name or not cells:
            return
        shape = session.info(name).shape
        index = self.views.flat_indices(shape, cells).numpy()
        verb = "Restore" if keep else "Prune"
        # A stroke records only the weights it changes; one that changes nothing is not recorded.
        self.controller.apply(PaintStroke(name, index, keep))
        self.message.emit(f"{verb} {len(cells)} weight(s) of {name}", 3000)
