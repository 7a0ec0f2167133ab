"""Undo/redo of pruning operations, observable without Qt.

An :class:`Entry` holds an operation spec and the masks of the layers it
touched before and after, so undo and redo never recompute anything. A new
entry clears the redo part. Listeners are plain callables called after every
change (the GUI connects them to Qt signals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.pruning.masks import PackedMask
from core.pruning.operations import Operation

MaskMap = dict[str, PackedMask | None]


@dataclass(frozen=True)
class Entry:
    """One applied operation and the masks it changed (``None`` = nothing pruned)."""

    op: Operation
    before: MaskMap
    after: MaskMap

    @property
    def label(self) -> str:
        """The operation's human label."""
        return self.op.label


class History:
    """A linear undo stack: ``entries[:cursor]`` are applied, the rest can be redone."""

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._cursor = 0
        self._listeners: list[Callable[[], None]] = []

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

    def can_undo(self) -> bool:
        """Whether there is an applied entry."""
        return self._cursor > 0

    def can_redo(self) -> bool:
        """Whether there is an undone entry."""
        return self._cursor < len(self._entries)

    def push(self, entry: Entry) -> None:
        """Record a newly applied entry (drops anything that could be redone)."""
        del self._entries[self._cursor :]
        self._entries.append(entry)
        self._cursor += 1
        self._notify()

    def step_back(self) -> Entry:
        """Move the cursor back over the last applied entry and return it."""
        if not self.can_undo():
            raise IndexError("nothing to undo")
        self._cursor -= 1
        self._notify()
        return self._entries[self._cursor]

    def step_forward(self) -> Entry:
        """Move the cursor over the next undone entry and return it."""
        if not self.can_redo():
            raise IndexError("nothing to redo")
        self._cursor += 1
        self._notify()
        return self._entries[self._cursor - 1]

    def clear(self) -> None:
        """Forget every entry (after an operation that cannot be undone)."""
        self._entries.clear()
        self._cursor = 0
        self._notify()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
