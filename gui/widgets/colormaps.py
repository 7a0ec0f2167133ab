"""Colour maps shared by every PruneScope view.

* **Diverging** (weights): ColorBrewer RdBu reversed, negative = blue, zero =
  white, positive = red. It stays readable for the common red-green colour
  vision deficiencies and centres on 0 when the levels are symmetric
  (e.g. ``(-2, 2)``).
* **Mask** (kept / pruned): pruned = a dark slate, kept = a light warm grey,
  so a mask reads as "holes" at a glance. Use levels ``(0, 1)`` on a 0/1 image.
* **Sparsity** (per-layer bars): ColorBrewer Blues, light = dense, dark = sparse;
  a fully pruned layer gets :data:`ALARM_RGB` instead.

The ``*_lut`` functions return ``(256, 3)`` uint8 arrays for
``ImageItem.setLookupTable``; the ``*_colormap`` functions return
:class:`pyqtgraph.ColorMap` objects for ``ColorBarItem`` and friends.
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg

LUT_SIZE = 256

#: ColorBrewer RdBu (11 classes), reversed: blue (negative) -> white -> red (positive).
RDBU_R: tuple[str, ...] = (
    "#053061",
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
    "#67001f",
)
#: ColorBrewer Blues (9 classes), light -> dark.
BLUES: tuple[str, ...] = (
    "#f7fbff",
    "#deebf7",
    "#c6dbef",
    "#9ecae1",
    "#6baed6",
    "#4292c6",
    "#2171b5",
    "#08519c",
    "#08306b",
)

PRUNED_RGB: tuple[int, int, int] = (47, 55, 69)
"""Colour of a pruned entry in masks and histograms (dark slate)."""
KEPT_RGB: tuple[int, int, int] = (236, 233, 224)
"""Colour of a kept entry in masks (light warm grey)."""
ALARM_RGB: tuple[int, int, int] = (214, 39, 40)
"""Colour for something that needs attention, e.g. a layer pruned to 100%."""
ACCENT_RGB: tuple[int, int, int] = (230, 126, 34)
"""Colour for previews (planned sparsity, preview thresholds)."""
NEUTRAL_RGB: tuple[int, int, int] = (120, 144, 156)
"""Colour for plain data that is neither pruned nor highlighted."""


def _hex_to_rgb(code: str) -> tuple[int, int, int]:
    value = code.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _colormap(colors: list[tuple[int, int, int]], name: str) -> pg.ColorMap:
    positions = np.linspace(0.0, 1.0, len(colors))
    return pg.ColorMap(positions, np.array(colors, dtype=np.ubyte), name=name)


def _lut(colormap: pg.ColorMap, size: int = LUT_SIZE) -> np.ndarray:
    table = colormap.getLookupTable(0.0, 1.0, nPts=size, alpha=False)
    return np.ascontiguousarray(table, dtype=np.uint8)


def diverging_colormap() -> pg.ColorMap:
    """The weights colour map (RdBu reversed), centred on the middle of the levels."""
    return _colormap([_hex_to_rgb(c) for c in RDBU_R], "prunescope-diverging")


def mask_colormap() -> pg.ColorMap:
    """The mask colour map: 0 (pruned) dark slate, 1 (kept) light grey."""
    return _colormap([PRUNED_RGB, KEPT_RGB], "prunescope-mask")


def sparsity_colormap() -> pg.ColorMap:
    """The sparsity colour map (Blues): 0 light, 1 dark."""
    return _colormap([_hex_to_rgb(c) for c in BLUES[1:]], "prunescope-sparsity")


def diverging_lut(size: int = LUT_SIZE) -> np.ndarray:
    """A ``(size, 3)`` uint8 lookup table of :func:`diverging_colormap` (256 by default).

    An odd ``size`` (e.g. 255) puts an entry exactly on the white centre.
    """
    return _lut(diverging_colormap(), size)


def mask_lut(size: int = LUT_SIZE) -> np.ndarray:
    """A ``(size, 3)`` uint8 lookup table of :func:`mask_colormap` (use levels ``(0, 1)``)."""
    return _lut(mask_colormap(), size)


def sparsity_lut() -> np.ndarray:
    """A ``(256, 3)`` uint8 lookup table of :func:`sparsity_colormap`."""
    return _lut(sparsity_colormap())


@functools.cache
def _sparsity_table() -> np.ndarray:
    return sparsity_lut()


def sparsity_color(fraction: float) -> tuple[int, int, int]:
    """The sparsity colour of ``fraction`` in [0, 1] (clipped); :data:`ALARM_RGB` at 1."""
    if fraction >= 1.0:
        return ALARM_RGB
    index = round(min(max(fraction, 0.0), 1.0) * (LUT_SIZE - 1))
    r, g, b = (int(v) for v in _sparsity_table()[index])
    return r, g, b


def text_color_on(value: float, limit: float) -> tuple[int, int, int]:
    """Black or white, whichever reads better on the diverging colour of ``value``."""
    return (255, 255, 255) if abs(value) > 0.62 * limit else (33, 33, 33)


# -- figure style shared by the light, slide-ready plots -------------------------
BACKGROUND = "w"
"""Plot background (white: reads on projectors and pastes cleanly into slides)."""
INK = "#202124"
"""Main text colour."""
MUTED = "#5f6368"
"""Secondary text colour (subtitles, notes, axis labels)."""
FRAME_RGB: tuple[int, int, int] = (110, 110, 110)
"""Axis lines and frames."""
GRID_RGB: tuple[int, int, int] = (200, 200, 200)
"""Cell borders and grid lines."""


def hex_color(rgb: tuple[int, int, int]) -> str:
    """``(r, g, b)`` as ``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def style_plot(plot: pg.PlotItem) -> None:
    """Give ``plot``'s axes dark text and grey lines for a white background."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FRAME_RGB))
        axis.setTextPen(pg.mkPen(INK))
