"""Undo data: what an applied operation changed, and how to take it back or do it again.

Each operation returns one :class:`Change` when it runs (the command pattern:
the operation knows what undo needs, the session never dispatches on types).
A change knows its size, so the history can keep its undo data within a
memory budget, and releases what it holds when the history drops it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from core.common.jobs import CancelToken, Job
from core.pruning.masks import PackedMask

if TYPE_CHECKING:
    from core.pruning.model_state import ModelState
    from core.pruning.session import PruningSession

MaskMap = dict[str, PackedMask | None]

#: Estimated bytes of Python objects around each stored array (headers, dicts, dataclasses),
#: so the history budget counts what small models really cost.
OBJECT_OVERHEAD = 256


class Change(ABC):
    """What one operation changed; undoable and redoable any number of times."""

    @property
    @abstractmethod
    def names(self) -> tuple[str, ...]:
        """Parameters whose mask or values the change touches."""

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes of undo data held (memory and disk)."""

    @abstractmethod
    def undo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        """Return the session to the state before the change."""

    @abstractmethod
    def redo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        """Apply the change again (the session is in the state before it)."""

    def release(self, applied: bool) -> None:  # noqa: B027 - most changes hold nothing
        """Free what the change holds when the history drops it.

        ``applied``: the change is part of the current state (dropped from the
        start of the history), so only what undo would need goes; otherwise it
        was undone (dropped from the redo end), so only what redo would need goes.
        """


def _mask_bytes(mask: PackedMask | None) -> int:
    return OBJECT_OVERHEAD if mask is None else mask.nbytes + OBJECT_OVERHEAD


@dataclass(eq=False)
class MaskChange(Change):
    """Layers moved from the ``before`` masks to the ``after`` masks (None: nothing pruned)."""

    before: MaskMap
    after: MaskMap

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.after)

    @property
    def nbytes(self) -> int:
        masks = {id(m): m for m in (*self.before.values(), *self.after.values()) if m is not None}
        return sum(_mask_bytes(m) for m in masks.values()) + OBJECT_OVERHEAD * len(self.after)

    def undo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from session.commit_masks_job(self.before, token)

    def redo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from session.commit_masks_job(self.after, token)


@dataclass(eq=False)
class CellChange(Change):
    """Single entries of one layer flipped to kept (``keep``) or pruned: a paint stroke.

    Only the flat positions that actually changed are stored, so a stroke of
    50 weights costs a few hundred bytes however big the layer is.
    """

    name: str
    positions: np.ndarray  # int64 flat positions whose state changed
    keep: bool

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes) + OBJECT_OVERHEAD

    def undo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from self._set(session, not self.keep, token)

    def redo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from self._set(session, self.keep, token)

    def _set(self, session: PruningSession, keep: bool, token: CancelToken) -> Job[None]:
        current = session.packed_mask(self.name)
        mask = set_cells(current, session.info(self.name).shape, self.positions, keep)
        yield from session.commit_masks_job(
            {self.name: session.apply_floor(self.name, mask)}, token
        )


def set_cells(
    mask: PackedMask | None, shape: tuple[int, ...], positions: np.ndarray, keep: bool
) -> PackedMask:
    """A copy of ``mask`` (None: all kept) with the flat ``positions`` set to ``keep``."""
    bits = PackedMask.or_none(mask, shape).bits.copy()
    byte, bit = positions >> 3, (7 - (positions & 7)).astype(np.uint8)
    flags = np.left_shift(np.uint8(1), bit)
    if keep:
        np.bitwise_or.at(bits, byte, flags)
    else:
        np.bitwise_and.at(bits, byte, np.invert(flags))
    return PackedMask(bits, shape)


@dataclass(eq=False)
class ValueChange(Change):
    """Kept weights (and any other parameters or buffers) moved from ``before`` to ``after``.

    Both are CPU copies of whole tensors keyed by state_dict name; pruned
    entries stay zero whatever they hold.
    """

    before: dict[str, torch.Tensor]
    after: dict[str, torch.Tensor]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.after)

    @property
    def nbytes(self) -> int:
        tensors = (*self.before.values(), *self.after.values())
        return sum(t.numel() * t.element_size() + OBJECT_OVERHEAD for t in tensors)

    def undo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from session.write_values_job(self.before, token)

    def redo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        yield from session.write_values_job(self.after, token)


@dataclass(eq=False)
class ModelSwap(Change):
    """The session's whole model state replaced (new shapes after physical slimming)."""

    before: ModelState
    after: ModelState

    def __post_init__(self) -> None:
        # The undo data is the state that is not live: the previous one, as it is now.
        self._nbytes = self.before.nbytes

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.before.layers, *self.after.layers)))

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def undo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        token.check()
        session.swap_state(self.before)
        yield from ()

    def redo_job(self, session: PruningSession, token: CancelToken) -> Job[None]:
        token.check()
        session.swap_state(self.after)
        yield from ()

    def release(self, applied: bool) -> None:
        # Dropped as applied: nothing will go back to the state before. Dropped as undone:
        # nothing will go forward to the state after. Only that state is closed; the other
        # may be live or needed by a neighbouring entry.
        (self.before if applied else self.after).close()
