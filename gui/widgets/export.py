"""Export figures to PNG (raster, 1x to 3x) or SVG (vector) for slides.

:func:`export_widget` picks the format from the file suffix. A figure export
holds the figure only: no tool bars, buttons or empty background. What it draws:

* a pyqtgraph view (``PlotWidget``, ``GraphicsLayoutWidget``): its plot item or
  whole layout, drawn from the scene (hidden overlays, scroll bars and
  widgets floating over the view are left out);
* a graphics item, a sequence of graphics items of one scene (the rectangle
  around all of them, e.g. one column of a grid) or a whole scene;
* a plain ``QWidget``: its visible content (the rectangle its visible leaf
  widgets cover, so an empty area below a short chart is cut off) on white;
* a sequence of parts from several views or widgets of one window, e.g. three
  heatmaps, the histogram under them and a title label: each part where it is
  in the window, on white, and nothing between them.

Everything is drawn through one ``QPainter``, so a PNG and an SVG of the same
target frame the same region, and PNG text is drawn at the chosen scale (crisp,
not an enlarged screen grab). pyqtgraph's own ``SVGExporter`` is not used:
with Qt 6.12 it fails on every ViewBox because Qt now writes closing ``Z``
commands into SVG paths (pyqtgraph issue #3485).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QImage, QPaintDevice, QPainter, QRegion
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsScene,
    QGraphicsView,
    QScrollBar,
    QWidget,
)

Part = QWidget | QGraphicsItem
Exportable = QWidget | QGraphicsItem | QGraphicsScene | Sequence[Part]
SUFFIXES = (".png", ".svg")
DEFAULT_DPI = 96
ITEM_MARGIN = 6.0
"""Pixels added around an exported figure, so frames at its edges are not cut."""
MAX_GAP = 12.0
"""Empty bands between the parts of a figure are cut down to this height (pixels)."""
PNG_SCALES = (1, 2, 3)
"""PNG pixels per screen pixel offered for export (2x or 3x for slides and print)."""
DEFAULT_SCALE = 2.0
FILE_FILTERS: dict[str, float] = {
    **{f"PNG image {s}x{', for slides' if s == 2 else ''} (*.png)": float(s) for s in PNG_SCALES},
    "SVG vector drawing (*.svg)": 1.0,
}
"""``QFileDialog`` name filters and the PNG scale each one picks."""
FILE_FILTER = ";;".join(FILE_FILTERS)
"""All of :data:`FILE_FILTERS` as one ``QFileDialog`` filter string."""
DEFAULT_FILTER = next(name for name, scale in FILE_FILTERS.items() if scale == DEFAULT_SCALE)
"""The filter to select first: PNG at :data:`DEFAULT_SCALE`."""


class ExportError(RuntimeError):
    """The target could not be written (bad suffix, nothing to draw, I/O failure)."""


def filter_scale(name_filter: str) -> float:
    """The PNG scale a ``QFileDialog`` filter stands for (``"PNG image 3x (*.png)"`` -> 3.0).

    Unknown filters (or none) give :data:`DEFAULT_SCALE`.
    """
    if name_filter in FILE_FILTERS:
        return FILE_FILTERS[name_filter]
    found = re.search(r"(\d+(?:\.\d+)?)\s*x\b", name_filter)
    return float(found.group(1)) if found else DEFAULT_SCALE


def export_widget(target: Exportable, path: str | Path, scale: float = 1.0) -> Path:
    """Write ``target`` to ``path`` as PNG or SVG, chosen by the suffix.

    Args:
        target: a widget, a graphics item or scene, or a sequence of graphics
            items and widgets (see the module docstring for what is drawn).
        path: destination; its suffix (``.png`` or ``.svg``, any case) picks the format.
        scale: PNG pixels per screen pixel (2.0 for crisp slides); ignored for SVG.

    Returns:
        The path written.

    Raises:
        ExportError: unknown suffix, nothing to draw, or the file could not be written.

    Example:
        >>> export_widget(plot_widget, "figure.png", scale=2.0)  # doctest: +SKIP
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(f"cannot export to {out.name!r}: use a .png or .svg file name")
    if scale <= 0:
        raise ExportError(f"scale must be positive, got {scale}")
    page = _page(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(page, out, scale)
    if not out.exists() or out.stat().st_size == 0:
        raise ExportError(f"nothing was written to {out}")
    return out


# -- what to draw -----------------------------------------------------------------
@dataclass(frozen=True)
class _Piece:
    """One part of the page: ``source`` of a scene, or of a widget, drawn at ``at``."""

    source: QRectF
    at: QRectF
    scene: QGraphicsScene | None = None
    widget: QWidget | None = None
    keep: tuple[QGraphicsItem, ...] | None = None
    """The scene's items to draw (with their children); None: everything."""

    def draw(self, painter: QPainter) -> None:
        if self.scene is not None:
            with _only(self.scene, self.keep):
                self.scene.render(painter, self.at, self.source)
            return
        assert self.widget is not None
        source = self.source.toAlignedRect()
        painter.save()
        painter.translate(self.at.topLeft())  # the region's corner goes to targetOffset
        self.widget.render(painter, QPoint(0, 0), QRegion(source), QWidget.RenderFlag.DrawChildren)
        painter.restore()


@dataclass(frozen=True)
class _Page:
    """What a file shows: its size in screen pixels, its pieces, its background."""

    size: QSize
    pieces: list[_Piece]
    background: QBrush
    dpi: int


def _page(target: Exportable) -> _Page:
    if isinstance(target, pg.GraphicsLayoutWidget):
        target = target.ci
    elif isinstance(target, pg.PlotWidget):
        target = target.getPlotItem()
    if isinstance(target, QGraphicsScene):
        return _scene_page(target, target.itemsBoundingRect())
    if isinstance(target, QWidget):
        return _parts_page([target])
    parts = [target] if isinstance(target, QGraphicsItem) else list(target)
    if not parts:
        raise ExportError("nothing to draw: no parts were given")
    items = [p for p in parts if isinstance(p, QGraphicsItem)]
    if any(item.scene() is None for item in items):
        raise ExportError("nothing to draw: the items are not in a scene")
    scenes = {id(item.scene()) for item in items}
    if len(items) == len(parts) and len(scenes) == 1:
        rect = QRectF(items[0].sceneBoundingRect())
        for item in items[1:]:
            rect = rect.united(item.sceneBoundingRect())
        margin = ITEM_MARGIN
        source = rect.adjusted(-margin, -margin, margin, margin)
        return _scene_page(items[0].scene(), source, tuple(items))
    return _parts_page(parts)


def _scene_page(
    scene: QGraphicsScene, source: QRectF, keep: tuple[QGraphicsItem, ...] | None = None
) -> _Page:
    size = _checked_size(source.width(), source.height())
    at = QRectF(0, 0, source.width(), source.height())
    view = _view_of(scene)
    dpi = view.logicalDpiX() if view is not None else DEFAULT_DPI
    piece = _Piece(source, at, scene=scene, keep=keep)
    return _Page(size, [piece], _background(scene), dpi)


def _parts_page(parts: Sequence[Part]) -> _Page:
    """Parts of one window, each where it is in the window, on white."""
    placed: list[tuple[Part, QRectF, QRectF]] = []  # part, its source, its place in the window
    windows: set[int] = set()
    for part in parts:
        widget = _widget_of(part)
        windows.add(id(widget.window()))
        if isinstance(part, QGraphicsItem):
            source = QRectF(part.sceneBoundingRect())
            assert isinstance(widget, QGraphicsView)
            in_view = widget.mapFromScene(source).boundingRect()
            corner = widget.viewport().mapTo(widget.window(), in_view.topLeft())
            placed.append((part, source, QRectF(QRect(corner, in_view.size()))))
        else:
            source_rect = content_rect(part)
            corner = part.mapTo(part.window(), source_rect.topLeft())
            placed.append((part, QRectF(source_rect), QRectF(QRect(corner, source_rect.size()))))
    if len(windows) > 1:
        raise ExportError("the parts of one figure must come from one window")
    shifts = _closing_shifts([at for _, _, at in placed])
    placed = [(p, s, at.translated(0, -dy)) for (p, s, at), dy in zip(placed, shifts, strict=True)]
    page = QRectF(placed[0][2])
    for _, _, at in placed[1:]:
        page = page.united(at)
    page = page.adjusted(-ITEM_MARGIN, -ITEM_MARGIN, ITEM_MARGIN, ITEM_MARGIN)
    pieces = []
    for part, source, at in placed:
        shifted = at.translated(-page.topLeft())
        if isinstance(part, QGraphicsItem):
            pieces.append(_Piece(source, shifted, scene=part.scene(), keep=(part,)))
        else:
            pieces.append(_Piece(source, shifted, widget=part))
    size = _checked_size(page.width(), page.height())
    dpi = _widget_of(parts[0]).logicalDpiX()
    return _Page(size, pieces, QBrush(Qt.GlobalColor.white), dpi)


@contextmanager
def _only(scene: QGraphicsScene, keep: tuple[QGraphicsItem, ...] | None) -> Iterator[None]:
    """Make the scene's items that are not (in) ``keep`` transparent for a while.

    ``QGraphicsScene.render`` draws every item that touches the source
    rectangle with all its children, and an SVG does not clip them: a
    neighbour's label would show. Opacity 0 keeps an item from being drawn
    without moving anything in its layout.
    """
    if keep is None:
        yield
        return
    others = [
        (item, item.opacity())
        for item in scene.items()  # not only in source: an ancestor draws its whole subtree
        if item.opacity() > 0
        and not any(k is item or k.isAncestorOf(item) or item.isAncestorOf(k) for k in keep)
    ]
    for item, _ in others:
        item.setOpacity(0.0)
    try:
        yield
    finally:
        for item, opacity in others:
            item.setOpacity(opacity)


def _closing_shifts(rects: list[QRectF]) -> list[float]:
    """How far up to move each rectangle so that no empty band between them is
    taller than :data:`MAX_GAP` (where tool bars and hints were left out)."""
    spans = sorted((r.top(), r.bottom()) for r in rects)
    cuts: list[tuple[float, float]] = []  # (y where an empty band ends, its excess height)
    bottom = spans[0][1]
    for top, end in spans[1:]:
        if top - bottom > MAX_GAP:
            cuts.append((top, top - bottom - MAX_GAP))
        bottom = max(bottom, end)
    return [sum(excess for y, excess in cuts if r.top() >= y) for r in rects]


def content_rect(widget: QWidget) -> QRect:
    """The part of ``widget`` (its own coordinates) that its visible leaf widgets cover.

    A leaf is a visible child without visible children of its own (a label, a
    plot's viewport; not a scroll bar); each is clipped to its ancestors, so a
    scroll area counts only what it shows. A widget without visible children
    is all content.
    """
    rect = QRect()
    for child in widget.findChildren(QWidget):
        if child.isWindow() or not child.isVisibleTo(widget) or _has_visible_children(child):
            continue
        if isinstance(child, QScrollBar):  # chrome, and as tall as its area however empty
            continue
        area = QRect(child.mapTo(widget, QPoint(0, 0)), child.size())
        parent = child.parentWidget()
        while parent is not None and parent is not widget:
            area &= QRect(parent.mapTo(widget, QPoint(0, 0)), parent.size())
            parent = parent.parentWidget()
        rect |= area & widget.rect()
    return rect if rect.isValid() and not rect.isEmpty() else widget.rect()


def _has_visible_children(widget: QWidget) -> bool:
    return any(
        not c.isWindow() and c.isVisibleTo(widget)
        for c in widget.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
    )


def _widget_of(part: Part) -> QWidget:
    """The widget a part is drawn in: itself, or the first view of its scene."""
    if isinstance(part, QWidget):
        return part
    scene = part.scene()
    view = _view_of(scene) if scene is not None else None
    if view is None:
        raise ExportError("nothing to draw: a graphics item of the figure is not in a view")
    return view


def _view_of(scene: QGraphicsScene) -> QGraphicsView | None:
    views = scene.views()
    return views[0] if views else None


def _background(scene: QGraphicsScene) -> QBrush:
    view = _view_of(scene)
    brush = view.backgroundBrush() if view is not None else QBrush()
    return brush if brush.style() != Qt.BrushStyle.NoBrush else QBrush(Qt.GlobalColor.white)


def _checked_size(width: float, height: float) -> QSize:
    if width < 1 or height < 1:
        raise ExportError("the target has no size yet; show it before exporting")
    return QSize(round(width), round(height))


# -- writing ----------------------------------------------------------------------
def _write(page: _Page, out: Path, scale: float) -> None:
    if out.suffix.lower() == ".svg":
        device: QPaintDevice = _svg_generator(out, page.size, page.dpi)
    else:
        device = QImage(
            round(page.size.width() * scale),
            round(page.size.height() * scale),
            QImage.Format.Format_ARGB32,
        )
        device.setDevicePixelRatio(scale)
    painter = QPainter(device)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.fillRect(QRectF(0, 0, page.size.width(), page.size.height()), page.background)
        for piece in page.pieces:
            piece.draw(painter)
    finally:
        painter.end()
    if isinstance(device, QImage) and not device.save(str(out), "PNG"):
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
