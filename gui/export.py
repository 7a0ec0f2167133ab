"""Export widgets and pyqtgraph items to PNG (raster) or SVG (vector) for slides.

:func:`export_widget` picks the format from the file suffix. What it draws:

* a plain ``QWidget``: the widget as on screen (``QWidget.grab`` for PNG,
  ``QWidget.render`` into a ``QSvgGenerator`` for SVG);
* a pyqtgraph view (``PlotWidget``, ``GraphicsLayoutWidget``): its plot item or
  whole layout, drawn from the scene (so hidden overlays and scroll bars of the
  view are left out);
* a graphics item, a sequence of graphics items (the rectangle around all of
  them, e.g. one column of a grid) or a whole scene.

Scene content is drawn with ``QGraphicsScene.render`` for both formats.
pyqtgraph's own ``SVGExporter`` is not used: with Qt 6.12 it fails on every
ViewBox because Qt now writes closing ``Z`` commands into SVG paths
(pyqtgraph issue #3485); ``ImageExporter`` is skipped too, so that a PNG and
an SVG of the same target frame exactly the same region.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QImage, QPaintDevice, QPainter, QPixmap
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QWidget

Exportable = QWidget | QGraphicsItem | QGraphicsScene | Sequence[QGraphicsItem]
SUFFIXES = (".png", ".svg")
DEFAULT_DPI = 96
ITEM_MARGIN = 6.0
"""Scene pixels added around exported items, so frames at their edges are not cut."""
FILE_FILTER = "PNG image (*.png);;SVG vector drawing (*.svg)"
"""A ``QFileDialog`` name filter for the formats :func:`export_widget` writes."""


class ExportError(RuntimeError):
    """The target could not be written (bad suffix, nothing to draw, I/O failure)."""


def export_widget(target: Exportable, path: str | Path, scale: float = 1.0) -> Path:
    """Write ``target`` to ``path`` as PNG or SVG, chosen by the suffix.

    Args:
        target: a widget, a graphics item, a sequence of graphics items of one
            scene, or a scene (see the module docstring for what is drawn).
        path: destination; its suffix (``.png`` or ``.svg``, any case) picks the format.
        scale: PNG pixels per screen pixel (2.0 for crisp slides); ignored for SVG.

    Returns:
        The path written.

    Raises:
        ExportError: unknown suffix, nothing to draw, or the file could not be written.

    Example:
        >>> export_widget(plot_widget, "figure.svg")  # doctest: +SKIP
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(f"cannot export to {out.name!r}: use a .png or .svg file name")
    if scale <= 0:
        raise ExportError(f"scale must be positive, got {scale}")
    out.parent.mkdir(parents=True, exist_ok=True)
    region = _scene_region(target)
    if region is None:
        assert isinstance(target, QWidget)
        _write_widget(target, out, scale)
    else:
        _write_region(*region, out, scale)
    if not out.exists() or out.stat().st_size == 0:
        raise ExportError(f"nothing was written to {out}")
    return out


def _scene_region(target: Exportable) -> tuple[QGraphicsScene, QRectF, QBrush] | None:
    """The scene, the rectangle of it and the background to draw; None for a plain widget."""
    if isinstance(target, pg.GraphicsLayoutWidget):
        target = target.ci
    elif isinstance(target, pg.PlotWidget):
        target = target.getPlotItem()
    if isinstance(target, QWidget):
        return None
    if isinstance(target, QGraphicsScene):
        return target, target.itemsBoundingRect(), _background(target)
    items = [target] if isinstance(target, QGraphicsItem) else list(target)
    if not items or any(item.scene() is None for item in items):
        raise ExportError("nothing to draw: the items are not in a scene")
    scene = items[0].scene()
    rect = QRectF(items[0].sceneBoundingRect())
    for item in items[1:]:
        rect = rect.united(item.sceneBoundingRect())
    rect = rect.adjusted(-ITEM_MARGIN, -ITEM_MARGIN, ITEM_MARGIN, ITEM_MARGIN)
    return scene, rect, _background(scene)


def _background(scene: QGraphicsScene) -> QBrush:
    views = scene.views()
    brush = views[0].backgroundBrush() if views else QBrush()
    return brush if brush.style() != Qt.BrushStyle.NoBrush else QBrush(Qt.GlobalColor.white)


def _screen_dpi(scene: QGraphicsScene) -> int:
    views = scene.views()
    return views[0].logicalDpiX() if views else DEFAULT_DPI


def _checked_size(width: float, height: float) -> QSize:
    if width < 1 or height < 1:
        raise ExportError("the target has no size yet; show it before exporting")
    return QSize(round(width), round(height))


def _write_region(
    scene: QGraphicsScene, source: QRectF, background: QBrush, out: Path, scale: float
) -> None:
    size = _checked_size(source.width(), source.height())
    target = QRectF(0, 0, source.width(), source.height())
    if out.suffix.lower() == ".svg":
        device: QPaintDevice = _svg_generator(out, size, _screen_dpi(scene))
    else:
        device = QImage(size * scale, QImage.Format.Format_ARGB32)
        device.setDevicePixelRatio(scale)
    painter = QPainter(device)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.fillRect(target, background)
        scene.render(painter, target, source)
    finally:
        painter.end()
    if isinstance(device, QImage) and not device.save(str(out), "PNG"):
        raise ExportError(f"could not write {out}")


def _write_widget(widget: QWidget, out: Path, scale: float) -> None:
    size = _checked_size(widget.width(), widget.height())
    if out.suffix.lower() == ".svg":
        generator = _svg_generator(out, size, widget.logicalDpiX())
        painter = QPainter(generator)
        try:
            widget.render(painter, QPoint(0, 0))
        finally:
            painter.end()
        return
    if scale == 1.0:
        pixmap = widget.grab()
    else:
        pixmap = QPixmap(size * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(widget.palette().window().color())
        widget.render(pixmap)
    if not pixmap.save(str(out), "PNG"):
        raise ExportError(f"could not write {out}")


def _svg_generator(out: Path, size: QSize, dpi: int) -> QSvgGenerator:
    """An SVG device of ``size`` pixels at the screen's ``dpi``, so that fonts in
    points and pixel-sized items come out as they look on screen."""
    generator = QSvgGenerator()
    generator.setFileName(str(out))
    generator.setResolution(dpi)
    generator.setSize(size)
    generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
    generator.setTitle("PruneScope")
    generator.setDescription("Exported from PruneScope")
    return generator
