"""Recipes: the operations that produced a pruned state, as a versioned JSON file.

A recipe replays on a fresh copy of the same model to bit-identical masks
(with the same torch version: random methods carry their seeds, global
pruning breaks ties deterministically).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from core.common.errors import PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, scaled
from core.pruning.operations import Operation, operation_from_dict
from core.pruning.session import PruningSession

FORMAT = "prunescope-recipe"
#: The history budget while a replay runs: nothing is dropped until it is over.
_UNBOUNDED = 1 << 62
VERSION = 1
#: The keyword arguments of :class:`PruningSession` that choose its targets.
TARGET_OPTIONS = ("include_bias", "include_embeddings", "include_other")


@dataclass(frozen=True)
class Recipe:
    """An ordered list of operations plus how targets were chosen."""

    operations: tuple[Operation, ...]
    target_options: dict[str, bool] = field(default_factory=dict)
    torch_version: str = torch.__version__

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "torch_version": self.torch_version,
            "target_options": dict(self.target_options),
            "operations": [op.to_dict() for op in self.operations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Parse :meth:`to_dict` output, checking format and version.

        Raises:
            PruningError: not a recipe, a bad or newer version, malformed
                operations or target options, or an operation a recipe cannot replay.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PruningError("this file is not a PruneScope recipe")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise PruningError(f"recipe version {version!r} is not a version number")
        if version > VERSION:
            raise PruningError(
                f"recipe version {version!r} is newer than this PruneScope understands ({VERSION})"
            )
        raw_ops = data.get("operations", [])
        if not isinstance(raw_ops, list):
            raise PruningError(f"recipe operations must be a list, got {type(raw_ops).__name__}")
        options = data.get("target_options", {})
        if not (
            isinstance(options, dict)
            and all(key in TARGET_OPTIONS for key in options)
            and all(isinstance(value, bool) for value in options.values())
        ):
            raise PruningError(
                f"recipe target options {options!r} are not a map of {', '.join(TARGET_OPTIONS)} "
                "to true/false"
            )
        ops = tuple(_operation(op) for op in raw_ops)
        return cls(ops, dict(options), str(data.get("torch_version", "")))


def _operation(data: Any) -> Operation:
    """:func:`operation_from_dict`, with every malformed input as a PruningError."""
    if not isinstance(data, dict):
        raise PruningError(f"malformed operation {data!r}: not an object")
    try:
        return operation_from_dict(data)
    except PruningError:
        raise
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise PruningError(f"malformed operation {data!r}: {exc}") from None


def recipe_of(session: PruningSession) -> Recipe:
    """The recipe that reproduces the session's current state."""
    return Recipe(tuple(session.operations), dict(session.target_options))


def save_recipe(session: PruningSession, path: str | os.PathLike[str]) -> None:
    """Write the session's recipe as JSON."""
    text = json.dumps(recipe_of(session).to_dict(), indent=2)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read a recipe file.

    Raises:
        PruningError: a missing or unreadable file, not JSON, or not a valid recipe.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise PruningError(f"{path}: no such file") from None
    except OSError as exc:
        raise PruningError(f"{path}: could not be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PruningError(f"{path}: not valid JSON (not a UTF-8 text file)") from None
    except json.JSONDecodeError as exc:
        raise PruningError(f"{path}: not valid JSON ({exc})") from None
    return Recipe.from_dict(data)


def replay_job(
    session: PruningSession, recipe: Recipe, token: CancelToken = NEVER_CANCELLED
) -> Job[None]:
    """A job applying every operation of ``recipe`` to ``session`` in order.

    The targets are checked first, so a recipe for another model fails before
    anything changes. Cancelled or failed, the operations already replayed are
    undone again and the session is as before, with one exception: an
    operation that cannot be undone (make permanent) drops original values.
    Once one has been replayed the job no longer stops on cancel, and a
    failure after it leaves the session as that operation left it.

    Raises:
        UnknownParameterError: an operation names a parameter the session lacks.
        PruningError: an operation cannot be applied (the message names it).
        JobCancelled: cancelled before any operation that cannot be undone.
    """
    for op in recipe.operations:
        if not op.replayable:
            break  # e.g. a replaced model: later targets belong to the new model
        for name in op.targets:
            session.info(name)  # UnknownParameterError names it and the known ones
    recorded = 0  # history entries pushed since the start or the last non-undoable operation
    count = len(recipe.operations) or 1
    budget = session.history.budget
    session.history.set_budget(max(budget, _UNBOUNDED))  # every replayed step stays undoable
    try:
        for i, op in enumerate(recipe.operations):
            try:
                entry = yield from scaled(session.apply_job(op, token), i / count, (i + 1) / count)
            except BaseException:
                for _ in range(min(recorded, session.history.cursor)):
                    session.undo()
                if recorded:
                    session.history.drop_redo()  # the replayed steps are gone, not redoable
                raise
            if not op.undoable:
                recorded = 0
                token = NEVER_CANCELLED  # what came before can no longer be restored
            elif entry is not None:  # None: nothing changed, nothing recorded
                recorded += 1
    finally:
        session.history.set_budget(budget)
    yield Progress(1.0, f"replayed {len(recipe.operations)} operations")
