"""Undo/redo of operations within a memory budget.

An :class:`Entry` holds an operation (its spec, for labels and recipes) and
the :class:`~core.pruning.changes.Change` it made (its undo data), so undo
and redo never recompute anything. A new entry clears the redo part.

The undo data of all entries is kept within :attr:`History.budget` bytes (a
mask shared by consecutive entries is counted in each, so the figure errs on
the safe side):
beyond it the oldest applied entries are dropped (their operations stay in
the session's recipe, they just cannot be undone any more), then undone
entries from the far end of the redo part. :attr:`History.dropped` and
:meth:`History.reach` tell the user how far back undo reaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.pruning.changes import OBJECT_OVERHEAD, Change
from core.pruning.operations import Operation

#: Default memory budget of the undo data.
DEFAULT_BUDGET = 1 << 30


@dataclass(frozen=True, eq=False)
class Entry:
    """One applied operation and what it changed.

    :attr:`nbytes` is measured once, when the entry is made: the history adds
    and later subtracts the same number.
    """

    op: Operation
    change: Change
    nbytes: int = field(init=False)
    #: What was measured in the state this entry leads to (e.g. ``"evaluation:test"``
    #: -> an evaluation's dict), JSON-safe values; see :meth:`History.measurements`.
    measurements: dict[str, Any] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        size = self.change.nbytes + self.op.nbytes + OBJECT_OVERHEAD
        object.__setattr__(self, "nbytes", size)

    @property
    def label(self) -> str:
        """The operation's human label."""
        return self.op.label


class History:
    """A linear undo stack: ``entries[:cursor]`` are applied, the rest can be redone.

    Args:
        budget: most bytes of undo data to keep (see module docstring).
        on_drop: called as ``on_drop(entry, applied)`` for every entry the history
            lets go of (budget, a new branch, :meth:`clear`), oldest applied first,
            after its undo data was released; ``applied`` says whether the entry's
            operation is part of the current state.
    """

    def __init__(
        self,
        budget: int = DEFAULT_BUDGET,
        on_drop: Callable[[Entry, bool], None] | None = None,
    ) -> None:
        if budget < 0:
            raise ValueError(f"the history budget must be >= 0 bytes, got {budget}")
        self._budget = budget
        self._on_drop = on_drop
        self._entries: list[Entry] = []
        self._cursor = 0
        self._bytes = 0
        self._dropped = 0
        self._start = "Start (loaded model)"
        self._start_measurements: dict[str, Any] = {}

    @property
    def entries(self) -> tuple[Entry, ...]:
        """All entries, applied and undone."""
        return tuple(self._entries)

    @property
    def cursor(self) -> int:
        """Number of applied entries."""
        return self._cursor

    @property
    def applied(self) -> tuple[Entry, ...]:
        """The applied entries, oldest first."""
        return tuple(self._entries[: self._cursor])

    @property
    def budget(self) -> int:
        """Most bytes of undo data kept."""
        return self._budget

    @property
    def nbytes(self) -> int:
        """Bytes of undo data held now (never above :attr:`budget`)."""
        return self._bytes

    @property
    def dropped(self) -> int:
        """Applied entries dropped by the budget since the history was last cleared."""
        return self._dropped

    @property
    def start_label(self) -> str:
        """What the state before the first entry is, for the top of a history list."""
        if self._dropped:
            return f"Earliest undo point ({self._dropped} older step(s) no longer undoable)"
        return self._start

    def reach(self) -> str:
        """How far back undo reaches, for the user."""
        steps = f"{self._cursor} step{'s' if self._cursor != 1 else ''}"
        if not self._dropped:
            return f"Undo reaches back {steps}, to the start."
        return (
            f"Undo reaches back {steps}; {self._dropped} older step(s) can no longer be "
            f"undone (history budget {_size(self._budget)})."
        )

    def measurements(self, cursor: int | None = None) -> dict[str, Any]:
        """What was measured in the state after ``cursor`` applied entries (default: now).

        A live dict (add to it to record a measurement): the entry's own, or for
        cursor 0 the start's. Measurements travel with their entry through undo
        and redo, and are forgotten with it.
        """
        at = self._cursor if cursor is None else cursor
        if not 0 <= at <= len(self._entries):
            raise IndexError(f"no history position {at} (0..{len(self._entries)})")
        return self._start_measurements if at == 0 else self._entries[at - 1].measurements

    def can_undo(self) -> bool:
        """Whether there is an applied entry."""
        return self._cursor > 0

    def can_redo(self) -> bool:
        """Whether there is an undone entry."""
        return self._cursor < len(self._entries)

    def set_budget(self, budget: int) -> None:
        """Change the budget, dropping undo data at once if it is now too much."""
        if budget < 0:
            raise ValueError(f"the history budget must be >= 0 bytes, got {budget}")
        self._budget = budget
        self._fit()

    def push(self, entry: Entry) -> None:
        """Record a newly applied entry (drops anything that could be redone)."""
        self.drop_redo()
        self._entries.append(entry)
        self._bytes += entry.nbytes
        self._cursor += 1
        self._fit()

    def drop_redo(self) -> None:
        """Forget the undone entries (e.g. operations a failed replay took back)."""
        for old in self._entries[self._cursor :]:
            self._release(old, applied=False)
        del self._entries[self._cursor :]

    def step_back(self) -> Entry:
        """Move the cursor back over the last applied entry and return it."""
        if not self.can_undo():
            raise IndexError("nothing to undo")
        self._cursor -= 1
        return self._entries[self._cursor]

    def step_forward(self) -> Entry:
        """Move the cursor over the next undone entry and return it."""
        if not self.can_redo():
            raise IndexError("nothing to redo")
        self._cursor += 1
        return self._entries[self._cursor - 1]

    def clear(self, start_label: str | None = None) -> None:
        """Forget every entry (after an operation that cannot be undone).

        ``start_label`` names the state undo now starts from (default: unchanged).
        """
        for i, entry in enumerate(self._entries):
            self._release(entry, applied=i < self._cursor)
        self._entries.clear()
        self._cursor = 0
        self._bytes = 0
        self._dropped = 0
        self._start_measurements = {}
        if start_label is not None:
            self._start = start_label

    def _fit(self) -> None:
        """Drop the oldest applied entries, then the farthest undone ones, until in budget."""
        while self._bytes > self._budget and self._entries:
            if self._cursor > 0:
                entry = self._entries.pop(0)
                self._cursor -= 1
                self._dropped += 1
                self._start_measurements = entry.measurements  # the new start's state
                self._release(entry, applied=True)
            else:
                self._release(self._entries.pop(), applied=False)

    def _release(self, entry: Entry, applied: bool) -> None:
        self._bytes -= entry.nbytes
        entry.change.release(applied)
        if self._on_drop is not None:
            self._on_drop(entry, applied)


def _size(nbytes: int) -> str:
    """``nbytes`` for people: 512 bytes, 2.9 KiB, 4.0 MiB, 1.0 GiB."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    size = nbytes / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
