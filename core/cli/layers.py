"""Choosing layers by name or glob pattern: ``--layers fc1.weight,layer1.*`` and ``--cap``.

A pattern matches a prunable parameter's name (``layer1.0.conv1.weight``), one
of its aliases (tied weights), or its module's name (``layer1.0.conv1``), with
shell-style wildcards (``*``, ``?``, ``[...]``), case-sensitive. Every pattern
must match something, so a typo fails instead of silently pruning less.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from core.common.errors import PruningError
from core.pruning.session import PruningSession


def split_patterns(text: str) -> list[str]:
    """``"a, b.*,"`` as ``["a", "b.*"]`` (empty items dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def matching(
    session: PruningSession, pattern: str, among: Iterable[str] | None = None
) -> list[str]:
    """The session's parameters (of ``among``, default all) that ``pattern`` matches, in order."""
    names = session.names if among is None else list(among)
    found = []
    for name in names:
        info = session.info(name)
        keys = (name, *info.aliases, info.module_name)
        if any(fnmatchcase(key, pattern) for key in keys):
            found.append(name)
    return found


def select_layers(session: PruningSession, patterns: str | None) -> tuple[str, ...]:
    """The parameters ``--layers`` names, in model order; when None, all those the target
    options chose (not the biases and norm parameters a group prune holds).

    Raises:
        PruningError: a pattern that matches no prunable parameter (the message
            lists some that exist), or a model without prunable parameters.
    """
    if not session.names:
        raise PruningError("the model has no prunable layers (Linear or Conv weights)")
    if patterns is None:
        return tuple(session.weight_names)
    wanted = split_patterns(patterns)
    if not wanted:
        raise PruningError("--layers is empty")
    chosen: set[str] = set()
    for pattern in wanted:
        found = matching(session, pattern)
        if not found:
            raise PruningError(f"--layers: {pattern!r} matches no prunable layer{_known(session)}")
        chosen.update(found)
    return tuple(name for name in session.names if name in chosen)


def resolve_caps(
    session: PruningSession, caps: Sequence[tuple[str, float]], targets: Sequence[str]
) -> tuple[tuple[str, float], ...]:
    """``--cap`` patterns resolved to the targets they match: ``(name, max_sparsity)`` pairs.

    A later cap on the same layer wins.

    Raises:
        PruningError: a cap pattern that matches none of ``targets``.
    """
    resolved: dict[str, float] = {}
    for pattern, fraction in caps:
        found = matching(session, pattern, targets)
        if not found:
            raise PruningError(
                f"--cap: {pattern!r} matches none of the layers being pruned{_known(session)}"
            )
        resolved.update(dict.fromkeys(found, fraction))
    return tuple(resolved.items())


def _known(session: PruningSession) -> str:
    names = session.names
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f" (prunable layers: {shown})"
