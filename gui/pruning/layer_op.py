"""The :class:`~core.pruning.operations.LayerPrune` the layer controls describe, checked.

:class:`LayerOpBuilder` turns a method page, an amount and a mode into the
operation on the selected layers and checks it against each of them: its shape
and parameters, and for a "further" count, the units that still remain. It
reads no whole layer on the GUI thread: what remains of a big layer, and the
selection's largest |w|, are figures a worker measures
(:meth:`~gui.session.controller.SessionController.measure_layers`); until they
arrive (``figures_ready``) the builder raises :class:`RemainingUnknown`, or
answers None for the largest |w|.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from core.common.errors import PruningError
from core.pruning.operations import LayerPrune, Mode
from gui.pruning.method_pages import check_remaining, check_target, counts_remaining

if TYPE_CHECKING:
    from core.pruning.amounts import Amount
    from core.pruning.methods.base import PruningMethod
    from core.pruning.session import PruningSession
    from core.pruning.targets import TargetInfo
    from gui.pruning.method_pages import ParamPage
    from gui.session.controller import SessionController

#: Layers up to this many entries have their remaining units counted at once (well
#: under a millisecond; their packed masks are immutable); bigger ones in a worker.
INLINE_COUNT_LIMIT = 1 << 18


class RemainingUnknown(PruningError):
    """The units that remain in a layer are still being counted in a worker."""


class LayerOpBuilder:
    """Builds and checks the layer pruning of a page, an amount and a mode (see module docstring).

    ``inline_limit()`` is asked at every check: layers with more entries than
    it says have what remains of them counted in a worker.
    """

    def __init__(
        self,
        controller: SessionController,
        inline_limit: Callable[[], int] = lambda: INLINE_COUNT_LIMIT,
    ) -> None:
        self.controller = controller
        self._inline_limit = inline_limit

    def session(self) -> PruningSession:
        """The controller's session.

        Raises:
            PruningError: no model is loaded.
        """
        session = self.controller.session
        if session is None:
            raise PruningError("no model is loaded")
        return session

    def infos(self, targets: Sequence[str]) -> list[TargetInfo]:
        """The target infos of ``targets`` ([] without a session or with an unknown name)."""
        session = self.controller.session
        if session is None:
            return []
        try:
            return [session.info(name) for name in targets]
        except PruningError:
            return []

    def build(
        self, targets: tuple[str, ...], page: ParamPage, amount: Amount, mode: Mode
    ) -> LayerPrune:
        """Prune ``targets`` with ``page``'s method at ``amount``, in ``mode``.

        Raises:
            RemainingUnknown: a "further" count waits for the units that remain in a
                big layer (counted in a worker; ``figures_ready`` follows).
            PruningError: no model, nothing selected, or an invalid combination.
        """
        session = self.session()
        if not targets:
            raise PruningError("select one or more layers first")
        method = page.method(amount)
        infos = [session.info(name) for name in targets]
        counting = []
        for info in infos:
            try:
                self.check_target(session, info, method, mode)
            except RemainingUnknown:
                counting.append(info.name)
        if counting:
            where = counting[0] if len(counting) == 1 else f"{len(counting)} layers"
            raise RemainingUnknown(f"Counting the {method.unit} that remain in {where}…")
        return LayerPrune(targets, method, mode)

    def check_target(
        self, session: PruningSession, info: TargetInfo, method: PruningMethod, mode: Mode
    ) -> None:
        """Check ``method`` on one layer; a "further" count against what remains of it.

        Raises:
            RemainingUnknown: the remaining units of a big layer are not counted yet
                (a worker is asked to count them).
            PruningError: the method cannot prune the layer.
        """
        check_target(method, info, None)  # shape, parameters, a count against all units
        if mode != "further" or not counts_remaining(method):
            return  # "set" starts again from the whole layer
        current = session.packed_mask(info.name)
        if current is None:
            return  # nothing pruned: every unit remains
        if info.numel <= self._inline_limit():
            check_target(method, info, current)
            return
        pattern = method.pattern()
        figures = self.controller.layer_figures(info.name)
        if figures is None or pattern not in figures.remaining:
            self.controller.measure_layers((info.name,), (pattern,))
            raise RemainingUnknown(info.name)
        check_remaining(method, info, figures.remaining[pattern])

    def largest(self, targets: tuple[str, ...]) -> float | None:
        """The largest |w| of ``targets``; None while a worker measures it (asked here)."""
        figures = [self.controller.layer_figures(name) for name in targets]
        known = [f for f in figures if f is not None]
        if len(known) == len(figures):
            return max((f.largest for f in known), default=0.0)
        self.controller.measure_layers(targets)
        return None
