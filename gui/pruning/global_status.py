"""What the global pruning panel says: its status line and its warning, worded.

The panel (:class:`~gui.pruning.global_panel.GlobalPanel`) shows what it would
do, that a plan or an Apply is under way, what a plan would prune and how many
layers it would prune away entirely; the sentences are made here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.pruning.global_prune import GlobalPlan
    from core.pruning.operations import GlobalPrune
    from gui.pruning.layer_table import LayerRow

#: The status while a plan of the panel's op is on its way.
PLANNING = "Planning…"


def describe(op: GlobalPrune, rows: Iterable[LayerRow]) -> str:
    """How many of the remaining weights of the included ``rows`` ``op`` prunes."""
    remaining = sum(row.numel - row.pruned for row in rows if row.included)
    count = round(float(op.amount) * remaining)
    return f"Prunes {count:,} of the {remaining:,} remaining weights in {len(op.targets)} layers"


def applying_text(op: GlobalPrune) -> str:
    """The status while ``op`` is being applied."""
    return f"Applying — {op.label}…"


def applied_text(op: GlobalPrune) -> str:
    """The status once ``op`` is applied."""
    return f"Applied — {op.label}"


def plan_text(plan: GlobalPlan) -> str:
    """The status showing a plan: how many weights it would prune (nothing is applied)."""
    return f"Plan — not applied: {plan.pruned:,} weights would be pruned"


def wiped_text(wiped: tuple[str, ...]) -> str:
    """The warning that the plan prunes the layers ``wiped`` away entirely."""
    noun = "layer" if len(wiped) == 1 else "layers"
    return f"⚠  {len(wiped)} {noun} would be pruned away entirely"
