"""Reopening PruneScope's saved sessions (``.prunescope``) and slim files.

The model is rebuilt from the reference the file records, given the stored
layer shapes where a slimmed model differs, and the saved weights are loaded;
:func:`restore_saved` then starts a session with the saved masks, originals,
permanent parts and record of operations put back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, scaled
from core.io.opened_model import OpenedModel
from core.io.referenced_models import build_factory, open_reference
from core.io.references import ModelReference
from core.io.state_dicts import load_state
from core.io.torch_interop import covering_options
from core.pruning.operations import operation_from_dict
from core.pruning.session import PruningSession
from core.pruning.slim import layer_shapes, rebuild_slim

if TYPE_CHECKING:
    from core.io.checkpoints import SavedSession

TARGET_OPTIONS = ("include_bias", "include_embeddings", "include_other")
"""The session options a saved session records as its ``target_options``."""


def open_saved_session(
    path: Path, trust: bool, token: CancelToken, slim: bool = False
) -> Job[OpenedModel]:
    """A PruneScope session: the model rebuilt from its reference, the saved weights loaded.

    ``slim``: a slim file; the rebuilt architecture gets its stored layer shapes first.
    """
    try:
        from core.io.checkpoints import SLIM_REFERENCES, read_session_job, read_slim_job
    except ImportError as exc:
        raise PruningError(f"{path.name}: this PruneScope cannot read sessions") from exc
    reader = read_slim_job if slim else read_session_job
    saved = yield from scaled(reader(path, token), 0.0, 0.5)
    token.check()
    if saved.reference is None:
        raise PruningError(
            f"{path.name}: the session does not say how to build its model, so it cannot be "
            "reopened; open the model itself, then apply the recipe saved beside the session"
        )
    try:
        ref = ModelReference.from_dict(saved.reference)
    except PruningError as exc:
        raise PruningError(f"{path.name}: {exc}") from exc
    if slim and ref.kind not in SLIM_REFERENCES:
        raise PruningError(f"{path.name}: a slim model is rebuilt from a demo or a factory only")
    if ref.kind == "factory":
        search = [path.parent] + ([Path(ref.weights).parent] if ref.weights else [])
        base = OpenedModel(build_factory(ref, search), ref.describe(), ref)
    else:
        base = yield from open_reference(ref, trust, token)
    token.check()
    note = f"reopened the session saved on {ref.describe()}"
    if slim:
        note = f"reopened the slim model of {ref.describe()}"
    if saved.layer_shapes is not None:
        _shrink(base.model, saved.layer_shapes, path)
    yield from load_state(base.model, saved.weights, path, ref.describe(), token)
    return OpenedModel(
        model=base.model,
        name=path.name,
        reference=ref,
        example_input=base.example_input if saved.example_input is None else saved.example_input,
        has_data=base.has_data,
        saved_state=saved,
        notes=(note,),
    )


def _shrink(model: nn.Module, shapes: Mapping[str, Any], path: Path) -> None:
    """Give the rebuilt model the saved layer shapes where they differ (a slimmed model).

    Layers the model lacks are left to the state_dict check, which lists every mismatch.
    """
    current = layer_shapes(model)
    changed = {
        name: entry for name, entry in shapes.items() if name in current and current[name] != entry
    }
    if changed:
        try:
            rebuild_slim(model, changed)
        except PruningError as exc:
            raise PruningError(f"{path.name}: {exc}") from exc


def restore_saved(
    model: nn.Module, saved: SavedSession, options: Mapping[str, Any]
) -> PruningSession:
    """A session with a saved state put back (masks, originals, permanent parts, record).

    The targets are chosen as when the session was saved (its ``target_options``),
    widened if a saved layer is not among them.
    """
    saved_options = saved.metadata.get("target_options")
    if isinstance(saved_options, Mapping):
        chosen = {k: bool(v) for k, v in saved_options.items() if k in TARGET_OPTIONS}
        options = {**chosen, **options}
    session = PruningSession(model, **covering_options(model, saved.masks, options))
    try:
        # Group pruning makes biases and norm scales and shifts targets on demand.
        session.add_targets(name for name in saved.masks if not session.prunes(name))
        operations = [operation_from_dict(data, replay=False) for data in saved.operations]
        session.load_state(saved.masks, saved.originals, saved.floors, operations)
        measured = saved.metadata.get("measurements")
        if isinstance(measured, Mapping):  # what was measured in the saved state
            session.history.measurements().update(measured)
    except BaseException:
        session.close()
        raise
    return session
