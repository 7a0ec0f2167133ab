"""Number formatting shared by the panels (statistics, speed, cost and global layer tables)."""

from __future__ import annotations


def format_count(n: int | None) -> str:
    """``9,850``; ``n/a`` for None."""
    return "n/a" if n is None else f"{n:,}"


def format_si(n: int | None) -> str:
    """``1.20 M``, ``3.4 G``, ``980``; ``n/a`` for None."""
    if n is None:
        return "n/a"
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:#.3g}".rstrip(".") + f" {unit}"
    return f"{n:,}"


def format_percent(fraction: float) -> str:
    """A fraction as a percentage with one decimal: ``0.125`` → ``12.5%``."""
    return f"{100.0 * fraction:.1f}%"
