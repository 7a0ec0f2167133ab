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
VERSION = 1


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
            PruningError: not a recipe, a newer version, or a malformed operation.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise PruningError("this file is not a PruneScope recipe")
        version = data.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise PruningError(
                f"recipe version {version!r} is newer than this PruneScope understands ({VERSION})"
            )
        ops = tuple(operation_from_dict(op) for op in data.get("operations", []))
        return cls(ops, dict(data.get("target_options", {})), str(data.get("torch_version", "")))


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
        PruningError: unreadable JSON or not a valid recipe.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise PruningError(f"{path}: not valid JSON ({exc})") from None
    return Recipe.from_dict(data)


def replay_job(
    session: PruningSession, recipe: Recipe, token: CancelToken = NEVER_CANCELLED
) -> Job[None]:
    """A job applying every operation of ``recipe`` to ``session`` in order.

    Cancelled or failed, the operations already replayed are undone again.
    """
    applied = 0
    count = len(recipe.operations) or 1
    try:
        for i, op in enumerate(recipe.operations):
            yield from scaled(session.apply_job(op, token), i / count, (i + 1) / count)
            applied += 1
    except BaseException:
        for _ in range(min(applied, session.history.cursor)):
            session.undo()
        raise
    yield Progress(1.0, f"replayed {len(recipe.operations)} operations")
