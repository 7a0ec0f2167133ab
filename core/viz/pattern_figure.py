"""The pattern lab's figure, without Qt: settings, the matrix and each column's outcome.

The lab (``gui.pattern_lab``) prunes one seeded N x N matrix by five methods
side by side. This module decides what each column shows: which engine
``PruningMethod`` runs it, its title, its mask (or why the method does not
apply) and the captions under it. Everything here is plain Python and torch,
so it can be tested and reused without a display.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.common.errors import PruningError
from core.pruning.methods import (
    BlockSparsity,
    L1Unstructured,
    LnStructured,
    NMSparsity,
    PruningMethod,
)

KEYS: tuple[str, ...] = ("unstructured", "rows", "columns", "n_m", "block")
"""The lab's columns, left to right."""
LEVELS: tuple[float, float] = (-2.0, 2.0)
"""Weights are clipped to, and coloured over, this range."""
MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 4, 32, 8
VALUE_TEXT_MAX_SIZE = 10
"""Cell values are written into the cells up to this matrix size."""
METHOD_CLASSES: dict[str, type[PruningMethod]] = {
    "unstructured": L1Unstructured,
    "rows": LnStructured,
    "columns": LnStructured,
    "n_m": NMSparsity,
    "block": BlockSparsity,
}
"""The engine class behind each column."""


@dataclass(frozen=True)
class LabSettings:
    """Everything that decides what the lab shows."""

    size: int = DEFAULT_SIZE
    seed: int = 0
    amount: float = 0.25
    nm: tuple[int, int] = (2, 4)
    block: tuple[int, int] = (2, 2)


@dataclass(frozen=True)
class ColumnResult:
    """One column's outcome: the mask (None when the method does not apply) and a note."""

    mask: torch.Tensor | None
    note: str


def random_matrix(size: int, seed: int) -> torch.Tensor:
    """The lab's matrix: ``size`` x ``size`` draws of N(0, 1), seeded, clipped to ±2."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, size, generator=generator).clamp_(*LEVELS)


def lab_method(key: str, settings: LabSettings) -> PruningMethod:
    """The engine method behind column ``key``.

    Raises:
        PruningError: the parameters are invalid (e.g. N > M).
    """
    amount = float(settings.amount)
    if key == "unstructured":
        return L1Unstructured(amount)
    if key in ("rows", "columns"):
        return LnStructured(amount, n=2, dim=0 if key == "rows" else 1)
    if key == "n_m":
        return NMSparsity(*settings.nm)
    if key == "block":
        return BlockSparsity(amount, *settings.block)
    raise KeyError(key)


def column_title(key: str, settings: LabSettings) -> tuple[str, str]:
    """The header of column ``key``: a title and a one-line subtitle."""
    n, m = settings.nm
    rows, cols = settings.block
    return {
        "unstructured": ("Unstructured", "smallest |w|"),
        "rows": ("By rows", "dim 0, L2 norm"),
        "columns": ("By columns", "dim 1, L2 norm"),
        "n_m": (f"N:M ({n}:{m})", f"{n} kept per {m}"),
        "block": (f"Block ({rows}×{cols})", "L2 norm per block"),
    }[key]


def nm_problem(settings: LabSettings) -> str | None:
    """Why N:M cannot run on this matrix, or None when it can."""
    n, m = settings.nm
    if n > m:
        return f"N={n} must not exceed M={m}"
    if settings.size % m:
        return f"M={m} does not divide {settings.size} columns"
    return None


def compute_column(key: str, matrix: torch.Tensor, settings: LabSettings) -> ColumnResult:
    """Run the engine's method for ``key`` on ``matrix`` and describe the outcome."""
    if key == "n_m" and (problem := nm_problem(settings)) is not None:
        return ColumnResult(None, problem)
    try:
        mask = lab_method(key, settings).compute_mask(matrix)
    except PruningError as exc:
        return ColumnResult(None, str(exc))
    return ColumnResult(mask, _column_note(key, matrix, mask, settings))


def _column_note(key: str, matrix: torch.Tensor, mask: torch.Tensor, s: LabSettings) -> str:
    if key == "unstructured":
        pruned = matrix.abs()[~mask]
        return f"all |w| ≤ {float(pruned.max()):.2f}" if pruned.numel() else "none zeroed"
    if key == "rows":
        return f"{int((~mask.any(dim=1)).sum())} of {s.size} rows"
    if key == "columns":
        return f"{int((~mask.any(dim=0)).sum())} of {s.size} columns"
    if key == "n_m":
        return "amount not used"
    rows, cols = s.block
    grid = (-(-s.size // rows), -(-s.size // cols))
    kept = torch.zeros(grid, dtype=torch.bool)
    for r in range(grid[0]):
        for c in range(grid[1]):
            kept[r, c] = mask[r * rows : (r + 1) * rows, c * cols : (c + 1) * cols].any()
    return f"{int((~kept).sum())} of {kept.numel()} blocks"


def sparsity_caption(mask: torch.Tensor) -> str:
    """``"25.0% pruned: 16 of 64"`` for ``mask``."""
    total = mask.numel()
    pruned = total - int(mask.sum())
    return f"{100.0 * pruned / total:.1f}% pruned: {pruned} of {total}"


def format_value(value: float) -> str:
    """A cell value with one decimal, never ``-0.0``."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def method_tooltip(key: str, settings: LabSettings) -> str:
    """The method's one-sentence summary and the exact engine call the column runs."""
    summary = METHOD_CLASSES[key].summary
    try:
        call = repr(lab_method(key, settings))
    except PruningError as exc:
        return f"{summary}\n\nNot applicable here: {exc}"
    return f"{summary}\n\nEngine: {call}.compute_mask(matrix)"
