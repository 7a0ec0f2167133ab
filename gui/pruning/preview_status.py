"""What a preview of the layer controls says Apply will do, as a status line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gui.widgets.forms import PREVIEW_STYLE, WARNING_STYLE

if TYPE_CHECKING:
    from core.pruning.masks import PackedMask
    from core.pruning.session import PruningSession

#: The status while a preview of the current controls is on its way.
PREVIEW_PENDING = "Preview — not applied"


def preview_status(
    session: PruningSession, masks: Mapping[str, PackedMask | None]
) -> tuple[str, str]:
    """The share of weights the previewed ``masks`` prune, as a status line and its style.

    A warning when they would prune every weight of a layer (it then passes nothing on).
    """
    total = sum(session.info(name).numel for name in masks)
    pruned = sum(0 if mask is None else mask.pruned for mask in masks.values())
    share = pruned / total if total else 0.0
    emptied = [
        name
        for name, mask in masks.items()
        if mask is not None and mask.pruned == session.info(name).numel
    ]
    text = f"{PREVIEW_PENDING}: {share:.1%} of {total:,} weights would be pruned"
    if not emptied:
        return text, PREVIEW_STYLE
    which = "the layer" if len(masks) == 1 else f"{len(emptied)} of {len(masks)} layers"
    return (
        f"Careful: Apply prunes every weight of {which} (the layer then passes nothing on). "
        + text.removeprefix(f"{PREVIEW_PENDING}: "),
        WARNING_STYLE,
    )
