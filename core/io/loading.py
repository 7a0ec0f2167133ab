"""Opening models the way people have them: one loader for the window and the command line.

:func:`open_model_job` takes a model spec (see
:func:`~core.io.references.parse_model_spec`), a :class:`~pathlib.Path` or a
:class:`~core.io.references.ModelReference` and opens:

* a built-in demo (``demo:cnn``, ``demo:mlp``, ``demo:resnet18``);
* a factory ``package.module:factory`` (keyword arguments as JSON values) with
  a state_dict file: ``.pt``/``.pth``/``.bin`` (``torch.load`` with
  ``weights_only=True``, memory-mapped), ``.safetensors`` (memory-mapped), or
  PruneScope's ``sparse`` format. The module is imported from the import path
  or else from the weights file's folder. A file that does not fit the model
  gives a :class:`StateMismatch` listing missing, unexpected and mis-shaped keys;
* a Hugging Face-style model folder (``config.json`` plus weights) through
  ``transformers``, when installed, never downloading anything;
* a TorchScript file (``torch.jit.load``);
* a whole pickled module (``torch.save(model)``): unpickling runs code from
  the file, so :class:`TrustRequired` is raised before anything is unpickled
  unless the caller passes ``trust=True``. Every other path loads with
  ``weights_only=True`` or safetensors;
* a model pruned with ``torch.nn.utils.prune`` (a whole module, or a
  state_dict with ``*_orig``/``*_mask`` keys): the plain model with its
  original values, torch's masks in :attr:`OpenedModel.torch_masks`;
* a PruneScope session (``.prunescope``): the model rebuilt from its
  reference, the saved weights loaded, the saved state in
  :attr:`OpenedModel.saved_state`;
* a PruneScope ``slim`` file (a physically slimmed model, ``.safetensors``): as a
  session. The rebuilt architecture of either is shrunk to the stored layer
  shapes where they differ (:func:`~core.pruning.slim.rebuild_slim`) before
  the weights are loaded.

:func:`open_session` then starts a :class:`~core.pruning.session.PruningSession`
on the opened model with torch's masks applied or the saved state put back.
Every error is a :class:`~core.common.errors.PruningError` naming the file and
what to do.

This module dispatches; the work is done by :mod:`core.io.file_kinds` (what a
file is), :mod:`core.io.referenced_models` (demos, factories),
:mod:`core.io.state_dicts` (weights files), :mod:`core.io.whole_model_files`
(TorchScript, pickled modules), :mod:`core.io.model_folders` (Hugging Face
folders) and :mod:`core.io.saved_sessions` (PruneScope's sessions and slim
files); the errors are in :mod:`core.io.load_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.common.errors import PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.io.file_kinds import SESSION_SUFFIX as SESSION_SUFFIX
from core.io.file_kinds import file_kind, is_slim
from core.io.load_errors import SHOWN as SHOWN
from core.io.load_errors import FactoryRequired, StateMismatch, TrustRequired
from core.io.model_folders import EXAMPLE_TOKENS as EXAMPLE_TOKENS
from core.io.opened_model import OpenedModel
from core.io.referenced_models import build_factory as build_factory
from core.io.referenced_models import open_reference
from core.io.references import ModelReference, parse_model_spec
from core.io.saved_sessions import TARGET_OPTIONS as TARGET_OPTIONS
from core.io.saved_sessions import open_saved_session, restore_saved
from core.io.state_dicts import LOAD_STEPS as LOAD_STEPS
from core.io.state_dicts import STATE_ENTRIES as STATE_ENTRIES
from core.io.state_dicts import check_fits as check_fits
from core.io.state_dicts import split_torch_pruned as split_torch_pruned
from core.io.torch_interop import adopt_masks
from core.io.whole_model_files import open_torch_file, open_torchscript
from core.pruning.session import PruningSession

__all__ = [
    "FactoryRequired",
    "OpenedModel",
    "StateMismatch",
    "TrustRequired",
    "open_model",
    "open_model_job",
    "open_session",
]


def open_model(
    spec: str | Path | ModelReference,
    *,
    weights: str | None = None,
    args: Mapping[str, Any] | None = None,
    trust: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> OpenedModel:
    """:func:`open_model_job` run to completion in the calling thread."""
    return run_job(open_model_job(spec, weights=weights, args=args, trust=trust, token=token))


def open_model_job(
    spec: str | Path | ModelReference,
    *,
    weights: str | None = None,
    args: Mapping[str, Any] | None = None,
    trust: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[OpenedModel]:
    """Open a model (see the module docstring), yielding progress; checks ``token`` between steps.

    ``spec`` is a spec string, a path or a reference; ``weights`` and ``args``
    go with a factory spec. ``trust`` allows unpickling a whole pickled model
    (and a model folder's own code). The model comes back in eval mode.

    Raises:
        TrustRequired: a whole pickled model and ``trust`` is False (nothing ran).
        FactoryRequired: a state_dict file given without a factory.
        StateMismatch: the weights do not fit the factory's model.
        PruningError: anything else that keeps the model from opening.
        JobCancelled: ``token`` was cancelled.
    """
    source = _source(spec, weights, args)
    label = source.name if isinstance(source, Path) else source.describe()
    yield Progress(0.0, f"Opening {label}")
    token.check()
    if isinstance(source, Path):
        opened = yield from _open_file(source, trust, token)
    else:
        opened = yield from open_reference(source, trust, token)
    token.check()
    opened.model.eval()
    yield Progress(1.0, f"Opened {opened.name}")
    return opened


def open_session(opened: OpenedModel, **session_options: Any) -> PruningSession:
    """A :class:`PruningSession` on an opened model, its masks or saved state put back.

    torch's masks become one undoable custom-mask operation per tensor (as
    :func:`~core.io.torch_interop.session_from_torch_pruned` does); a saved
    session's masks, originals, permanent parts and record of operations go
    back with :meth:`~core.pruning.session.PruningSession.load_state`. The
    example input is the opened one unless the options give another.
    TorchScript hides layer types, so every parameter of 2+ dimensions is a
    target there unless the options say otherwise.

    Raises:
        PruningError: the masks or the saved state do not fit the model.
    """
    options = dict(session_options)
    options.setdefault("example_input", opened.example_input)
    if isinstance(opened.model, torch.jit.ScriptModule):
        options.setdefault("include_other", True)
    if opened.saved_state is not None and opened.torch_masks:
        raise PruningError(f"{opened.name}: both torch's masks and a saved state to put back")
    if opened.saved_state is not None:
        return restore_saved(opened.model, opened.saved_state, options)
    if opened.torch_masks:
        return adopt_masks(opened.model, opened.torch_masks, **options)
    return PruningSession(opened.model, **options)


def _source(
    spec: str | Path | ModelReference, weights: str | None, args: Mapping[str, Any] | None
) -> ModelReference | Path:
    """What ``spec`` names: a reference, or the absolute path of a file to open."""
    if isinstance(spec, ModelReference):
        if weights is not None or args:
            raise PruningError(
                f"{spec.describe()}: a reference carries its own weights and arguments"
            )
        return spec
    return parse_model_spec(str(spec), weights=weights, args=args)


def _open_file(path: Path, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """Open a file on its own: a session, TorchScript, or a pickled model (state_dicts refused)."""
    if not path.is_file():
        raise PruningError(f"{path}: no such file")
    kind = file_kind(path)
    if kind == "session":
        return (yield from open_saved_session(path, trust, token))
    if kind == "torchscript":
        return open_torchscript(path)
    if kind == "safetensors":
        if is_slim(path):
            return (yield from open_saved_session(path, trust, token, slim=True))
        raise FactoryRequired(path)
    return (yield from open_torch_file(path, trust, token))
