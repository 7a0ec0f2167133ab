"""What widgets need to know of a layer's current state, measured in a worker.

Widgets never read a whole layer on the GUI thread (a worker may be writing
it, and 67M weights take a while): they ask
:meth:`~gui.session.controller.SessionController.layer_figures` and, when it
has nothing yet, :meth:`~gui.session.controller.SessionController.measure_layers`.
:class:`FiguresCache` keeps the figures measured, and forgets them as soon as
the session holds another mask for their layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.pruning.masks import PackedMask
from core.pruning.methods.patterns import Pattern
from core.pruning.session import PruningSession


@dataclass(frozen=True, eq=False)
class LayerFigures:
    """One layer's sparsity, largest |w| and remaining units, as measured in a worker."""

    name: str
    #: The packed mask measured (None: nothing pruned); the figures hold while the
    #: session keeps this very mask and no job changed the layer's values.
    mask: PackedMask | None
    numel: int
    pruned: int
    #: The largest |w| of the effective weights (0.0 for an empty layer).
    largest: float
    #: Units that each pattern finds still (partly) kept, for the patterns asked for.
    remaining: Mapping[Pattern, int] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        """Fraction of the layer's entries that are pruned."""
        return self.pruned / self.numel if self.numel else 0.0

    def knows(self, patterns: Iterable[Pattern]) -> bool:
        """Whether the remaining units of every one of ``patterns`` are known."""
        return all(pattern in self.remaining for pattern in patterns)


def measure_figures(
    session: PruningSession,
    name: str,
    patterns: Iterable[Pattern] = (),
    known: LayerFigures | None = None,
    effective: torch.Tensor | None = None,
) -> LayerFigures:
    """Measure :class:`LayerFigures` of ``name`` (in a worker: it reads the whole layer).

    ``known`` figures of the same mask are reused (only missing patterns are
    counted); ``effective`` is a copy of the effective weights already made.
    Patterns that do not fit the layer's shape are left out.
    """
    info = session.info(name)
    mask = session.packed_mask(name)
    if known is not None and known.mask is not mask:
        known = None
    if known is not None:
        largest = known.largest
    else:
        weights = session.effective(name) if effective is None else effective
        largest = float(torch.linalg.vector_norm(weights, float("inf"))) if weights.numel() else 0.0
    remaining = dict(known.remaining) if known is not None else {}
    for pattern in patterns:
        if pattern in remaining:
            continue
        try:
            pattern.check(info.shape)
            remaining[pattern] = (
                pattern.units(info.shape)
                if mask is None
                else pattern.remaining_units(info.shape, mask)
            )
        except PruningError:
            continue
    pruned = 0 if mask is None else mask.pruned  # counts the bits here, not on the GUI thread
    return LayerFigures(name, mask, info.numel, pruned, largest, remaining)


class FiguresCache:
    """The figures measured of a session's layers, and the ones asked for since.

    Figures are returned only while they describe the layer (the session holds
    the mask they were measured with); the controller calls :meth:`forget`
    whenever a job changed layers.
    """

    def __init__(self) -> None:
        self.session: PruningSession | None = None
        self._figures: dict[str, LayerFigures] = {}
        self._wanted: dict[str, set[Pattern]] = {}

    def get(self, name: str) -> LayerFigures | None:
        """The current figures of ``name``, or None (cheap: no tensor is read)."""
        figures = self._figures.get(name)
        if figures is None or self.session is None:
            return None
        try:
            current = self.session.packed_mask(name)
        except (PruningError, KeyError):
            return None
        return figures if figures.mask is current else None

    def missing(self, names: Iterable[str], patterns: Iterable[Pattern]) -> list[str]:
        """Those of ``names`` whose current figures do not know every one of ``patterns``."""
        wanted = tuple(patterns)
        return [
            name
            for name in names
            if not ((figures := self.get(name)) is not None and figures.knows(wanted))
        ]

    def want(self, names: Iterable[str], patterns: Iterable[Pattern]) -> None:
        """Remember that ``names`` should be measured with ``patterns``."""
        wanted = tuple(patterns)
        for name in names:
            self._wanted.setdefault(name, set()).update(wanted)

    def take_wanted(self, name: str) -> tuple[set[Pattern], LayerFigures | None]:
        """The patterns asked for ``name`` (forgotten now) and the figures known of it."""
        return self._wanted.pop(name, set()), self._figures.get(name)

    def anything_wanted(self) -> bool:
        """Whether a layer asked for is still to be measured."""
        return any(self.missing((name,), patterns) for name, patterns in self._wanted.items())

    def take_all_wanted(self) -> dict[str, tuple[set[Pattern], LayerFigures | None]]:
        """Every layer still to measure, with its patterns and known figures; forgets the asks."""
        asked, self._wanted = self._wanted, {}
        return {
            name: (patterns, self._figures.get(name))
            for name, patterns in asked.items()
            if name in self.missing((name,), patterns)
        }

    def store(self, measured: Iterable[LayerFigures]) -> tuple[str, ...]:
        """Keep figures that still describe their layers; the names kept."""
        names = []
        for figures in measured:
            self._figures[figures.name] = figures
            if self.get(figures.name) is figures:
                names.append(figures.name)
            else:
                del self._figures[figures.name]
        return tuple(names)

    def forget(self, names: Iterable[str] | None = None) -> None:
        """Drop figures of ``names`` (all, and every ask, by default): their layers changed."""
        if names is None:
            self._figures.clear()
            self._wanted.clear()
            return
        for name in names:
            self._figures.pop(name, None)


def measure_job(
    session: PruningSession,
    wanted: Mapping[str, tuple[set[Pattern], LayerFigures | None]],
    token: CancelToken,
) -> Job[list[LayerFigures]]:
    """Measure ``wanted`` layers (name -> patterns, known figures) one by one."""
    measured = []
    for i, (name, (patterns, known)) in enumerate(wanted.items()):
        token.check()
        measured.append(measure_figures(session, name, patterns, known))
        yield Progress((i + 1) / len(wanted), f"measured {name}")
    return measured
