"""The geometry of the pattern lab's figure: spacings, bands and the chosen plan.

The figure shows its five method columns side by side, or in bands of three
(+ two) or two (+ two + one). A :class:`FigurePlan` records the arrangement
the figure chose (columns per band, column width, matrix side, text heights);
:meth:`FigurePlan.band_rows` gives the y of each row of one band
(:class:`BandRows`). Choosing the plan and placing the pieces is
:class:`gui.pattern_lab.pattern_views.PatternFigure`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.viz.pattern_figure import KEYS

MARGIN, SPACING, TEXT_GAP, ROW_GAP = 10.0, 12.0, 4.0, 8.0
"""Pixels: around the figure, between columns and bands, between text and a
matrix, between the weights and the mask of one column."""
MIN_SIDE = 32.0
"""The smallest matrix side (pixels) the figure draws."""
BAND_CHOICES = (5, 3, 2)
"""Columns per band that the figure may use, preferred first."""
CLEAR_GAIN = 1.1
"""Another arrangement must show the matrices this much larger to be used."""
SLOT_PER_SIDE = 1.6
"""A column is at most this many times as wide as its matrices, or as its widest
unwrapped text (wide, short figures keep their columns together)."""


def text_width(slot: float) -> float:
    """How wide the text of a column ``slot`` pixels wide may be (into half of each gap)."""
    return slot + SPACING - 2


@dataclass(frozen=True)
class BandRows:
    """The y of each row of one band, and the heights of its two text rows."""

    header: float
    header_height: float
    weights: float
    mask: float
    caption: float
    caption_height: float


@dataclass(frozen=True)
class FigurePlan:
    """How the figure is laid out: columns per band, their width, the matrix side."""

    per_band: int
    slot: float
    side: float
    row_label_width: float
    header_heights: tuple[float, ...]
    caption_heights: tuple[float, ...]
    words_fit: bool

    @property
    def bands(self) -> int:
        """How many bands (rows of columns) the figure has."""
        return len(self.header_heights)

    @property
    def legend_in_band(self) -> bool:
        """Whether the legend takes the free slot of the last band (else a column of its own)."""
        return self.bands * self.per_band > len(KEYS)

    def band_rows(self, band: int, top: float) -> BandRows:
        """The rows of band ``band`` (0 first) when its header starts at ``top``."""
        return BandRows(
            header=top,
            header_height=self.header_heights[band],
            weights=top + self.header_heights[band] + TEXT_GAP,
            mask=top + self.header_heights[band] + TEXT_GAP + self.side + ROW_GAP,
            caption=top + self.header_heights[band] + 2 * (TEXT_GAP + self.side) + ROW_GAP,
            caption_height=self.caption_heights[band],
        )
