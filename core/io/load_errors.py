"""What the loader (:mod:`core.io.loading`) says when a model cannot be opened as given.

The three errors a caller may answer (ask for trust, ask for a factory, show
the mismatched keys) and the small wording helpers the loader's messages share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from core.common.errors import PruningError

SHOWN = 5
"""Most names listed per kind of mismatch."""


class TrustRequired(PruningError):
    """A whole pickled model: unpickling it would run code from the file.

    Nothing was unpickled. ``classes`` are the classes and functions the
    pickle refers to (found without running it); open the file again with
    ``trust=True`` (``--trust`` on the command line, the trust dialog in the
    window) if the user made it or trusts where it came from.
    """

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        self.path = path
        self.classes = tuple(classes)
        super().__init__(
            f"{path.name} holds a pickled Python object ({listed(self.classes)}); "
            "opening it unpickles it, which can run any code the file contains. Open it "
            "only if you made it or trust where it came from: pass --trust on the command "
            "line, or confirm in the window's dialog. Safer: save a state_dict "
            "(torch.save(model.state_dict(), path)) and open it with its factory"
        )


class FactoryRequired(PruningError):
    """A weights-only file (a state_dict): the code that builds the model must be named."""

    def __init__(self, path: Path, count: int | None = None) -> None:
        self.path = path
        held = "a state_dict" if count is None else f"a state_dict ({counted(count, 'tensor')})"
        super().__init__(
            f"{path.name} holds {held}, only weights: name the code that builds the model. "
            f"On the command line, give MODEL as package.module:factory with --weights "
            f"{path.name} (and --arg key=value for its arguments); in the window, name the "
            "factory in the Open dialog"
        )


class StateMismatch(PruningError):
    """A state_dict that does not fit the model: missing, unexpected or mis-shaped keys."""

    def __init__(
        self,
        path: Path,
        model: str,
        missing: Sequence[str],
        unexpected: Sequence[str],
        misshaped: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.path = path
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.misshaped = tuple(misshaped)
        parts = []
        if missing:
            parts.append(f"{counted(len(missing), 'missing key')} ({listed(missing)})")
        if unexpected:
            parts.append(f"{counted(len(unexpected), 'unexpected key')} ({listed(unexpected)})")
        if misshaped:
            shapes = [f"{n}: file {list(f)}, model {list(m)}" for n, f, m in misshaped]
            parts.append(f"{counted(len(misshaped), 'key')} of another shape ({listed(shapes)})")
        super().__init__(
            f"{path.name} does not match {model}: {'; '.join(parts)}. Check the factory "
            "and its arguments"
        )


def masks_note(masks: Mapping[str, torch.Tensor]) -> str:
    """The note that a model's torch.nn.utils.prune masks go on the session."""
    return (
        f"pruned with torch.nn.utils.prune: its masks on {counted(len(masks), 'parameter')} "
        "are put on the session"
    )


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (``"3 keys"``)."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def listed(names: Sequence[str]) -> str:
    """The first :data:`SHOWN` names, and how many more."""
    shown = ", ".join(names[:SHOWN])
    more = len(names) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
