"""What the window shows: a model with its name, data and prepared session.

:func:`open_job` opens a file, folder, demo or factory in a worker and
prepares its session there; :func:`load_builtin_demo` builds a demo at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.common.jobs import CancelToken, Job, Progress
from core.demos import DigitsData, load_digits
from core.io.loading import open_model_job, open_session
from core.io.references import ModelReference
from core.pruning.session import PruningSession
from gui.session.target_kinds import model_key


@dataclass
class LoadedModel:
    """What the window is showing: a model, its name, and optional demo data."""

    model: nn.Module
    name: str
    example_input: torch.Tensor | None = None
    data: DigitsData | None = None
    source: str = ""  # file path, or "" for a built-in demo
    #: How to build the model again (saved in session checkpoints), when known.
    reference: ModelReference | None = None
    #: A session prepared in a worker (masks or a saved state put back); else a fresh one.
    session: PruningSession | None = None
    #: What the loader wants the user to know.
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The identity choices made for this model are remembered under (see ``model_key``)."""
        return model_key(self.source, self.reference, self.model)


@dataclass(frozen=True)
class OpenRequest:
    """What to open (a file, folder, demo or factory), as the user asked for it."""

    spec: str
    weights: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    trust: bool = False

    @property
    def source(self) -> str:
        """The file (or spec) the model comes from."""
        return self.weights or self.spec


def open_job(
    request: OpenRequest, history_budget: int, kinds: Mapping[str, bool], token: CancelToken
) -> Job[LoadedModel]:
    """Open what ``request`` names and prepare its session (``kinds``: prunable parameters)."""
    opened = yield from open_model_job(
        request.spec,
        weights=request.weights,
        args=dict(request.args),
        trust=request.trust,
        token=token,
    )
    yield Progress(0.95, "preparing the session")
    session = open_session(opened, history_budget=history_budget, **kinds)
    data = load_digits() if opened.has_data else None
    return LoadedModel(
        opened.model,
        opened.name,
        opened.example_input,
        data,
        source=request.source,
        reference=opened.reference,
        session=session,
        notes=opened.notes,
    )


def load_builtin_demo(name: str = "cnn") -> LoadedModel:
    """A built-in demo model with its example input and (for digits models) data."""
    from core.demos import load_demo

    demo = load_demo(name)
    data = load_digits() if demo.has_data else None
    reference = ModelReference("demo", name)  # so a saved session can rebuild it
    return LoadedModel(demo.model, f"demo {name}", demo.example_input, data, reference=reference)
