"""Exceptions raised by the pruning engine.

Every error names the parameter (layer) it concerns where there is one, so a
user reading a dialog knows what to fix. All derive from :class:`PruningError`.
"""

from __future__ import annotations


class PruningError(ValueError):
    """Base class for every error the engine raises on bad input or state."""


class UnknownParameterError(PruningError, KeyError):
    """A parameter name that the session does not know (or does not prune)."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = ""
        if known:
            shown = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
            hint = f" (known parameters: {shown})"
        super().__init__(f"unknown parameter {name!r}{hint}")
        self.name = name

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class InvalidAmountError(PruningError):
    """An amount outside [0, 1] or above the number of prunable units."""


class InvalidMaskError(PruningError):
    """A user-supplied mask of the wrong shape or dtype."""


class UnsupportedParameterError(PruningError):
    """A method applied to a parameter it cannot handle (e.g. structured on 1-D)."""


class NonFiniteWeightsError(PruningError):
    """A parameter holds NaN or infinite values, so magnitudes cannot be ranked."""


class DiskSpaceError(PruningError, OSError):
    """Not enough free disk space to spill original values."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none),
    for one-line messages that quote a library's error."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class JobCancelled(Exception):
    """Raised inside a job when its cancel token was set; the session is unchanged."""
