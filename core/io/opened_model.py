"""What the loader (:mod:`core.io.loading`) hands back: a model and what a session needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.io.references import ModelReference

if TYPE_CHECKING:
    from core.io.checkpoints import SavedSession


@dataclass(eq=False)
class OpenedModel:
    """A model opened by :func:`~core.io.loading.open_model_job`, with what a session needs.

    ``reference`` rebuilds it (None when it cannot be rebuilt); ``has_data`` is
    True for the digits demos (accuracy can be measured); ``torch_masks`` are
    the masks of a model pruned with torch.nn.utils.prune and ``saved_state``
    a reopened PruneScope session, both put on the session by
    :func:`~core.io.loading.open_session`; ``notes`` are things the user should know.
    """

    model: nn.Module
    name: str
    reference: ModelReference | None
    example_input: torch.Tensor | None = None
    has_data: bool = False
    torch_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    saved_state: SavedSession | None = None
    notes: tuple[str, ...] = ()
