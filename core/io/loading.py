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
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.common.errors import PruningError, first_line
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job, scaled
from core.demos import load_demo
from core.io.pickle_scan import Unsafe, load_weights_only
from core.io.references import ModelReference, import_callable, on_sys_path, parse_model_spec
from core.io.torch_interop import adopt_masks, covering_options, strip_torch_pruning
from core.pruning.operations import operation_from_dict
from core.pruning.session import PruningSession
from core.pruning.slim import layer_shapes, rebuild_slim

if TYPE_CHECKING:
    from core.io.checkpoints import SavedSession

__all__ = [
    "FactoryRequired",
    "OpenedModel",
    "StateMismatch",
    "TrustRequired",
    "open_model",
    "open_model_job",
    "open_session",
]

SESSION_SUFFIX = ".prunescope"
"""Suffix of PruneScope's saved sessions (``core.io.checkpoints.SESSION_SUFFIX``)."""

STATE_ENTRIES = ("state_dict", "model_state_dict", "model")
"""Entries of a training checkpoint (a dict) that may hold the model's state_dict."""

EXAMPLE_TOKENS = 8
"""Length of the token-id example input made for a Hugging Face model."""

LOAD_STEPS = 20
"""A state_dict is loaded into the model in about this many parts (progress, cancel)."""

SHOWN = 5
"""Most names listed per kind of mismatch."""

TARGET_OPTIONS = ("include_bias", "include_embeddings", "include_other")
"""The session options a saved session records as its ``target_options``."""

_JIT_NOTICE = "`torch.jit.load` is deprecated"
"""torch's deprecation warning on every ``torch.jit.load``; TorchScript files still load."""


# --------------------------------------------------------------------- errors


class TrustRequired(PruningError):
    """A whole pickled model: unpickling it would run code from the file.

    Nothing was unpickled. ``classes`` are the classes and functions the
    pickle refers to (found without running it); open the file again with
    ``trust=True`` (``--trust`` on the command line, the trust dialog in the
    window) if the user made it or trusts where it came from.
    """

    def __init__(self, path: Path, classes: Sequence[str]) -> None:
        self.path = path
        self.classes = tuple(classes)
        super().__init__(
            f"{path.name} holds a pickled Python object ({_short(self.classes)}); "
            "opening it unpickles it, which can run any code the file contains. Open it "
            "only if you made it or trust where it came from: pass --trust on the command "
            "line, or confirm in the window's dialog. Safer: save a state_dict "
            "(torch.save(model.state_dict(), path)) and open it with its factory"
        )


class FactoryRequired(PruningError):
    """A weights-only file (a state_dict): the code that builds the model must be named."""

    def __init__(self, path: Path, count: int | None = None) -> None:
        self.path = path
        held = "a state_dict" if count is None else f"a state_dict ({_count(count, 'tensor')})"
        super().__init__(
            f"{path.name} holds {held}, only weights: name the code that builds the model. "
            f"On the command line, give MODEL as package.module:factory with --weights "
            f"{path.name} (and --arg key=value for its arguments); in the window, name the "
            "factory in the Open dialog"
        )


class StateMismatch(PruningError):
    """A state_dict that does not fit the model: missing, unexpected or mis-shaped keys."""

    def __init__(
        self,
        path: Path,
        model: str,
        missing: Sequence[str],
        unexpected: Sequence[str],
        misshaped: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.path = path
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.misshaped = tuple(misshaped)
        parts = []
        if missing:
            parts.append(f"{_count(len(missing), 'missing key')} ({_short(missing)})")
        if unexpected:
            parts.append(f"{_count(len(unexpected), 'unexpected key')} ({_short(unexpected)})")
        if misshaped:
            shapes = [f"{n}: file {list(f)}, model {list(m)}" for n, f, m in misshaped]
            parts.append(f"{_count(len(misshaped), 'key')} of another shape ({_short(shapes)})")
        super().__init__(
            f"{path.name} does not match {model}: {'; '.join(parts)}. Check the factory "
            "and its arguments"
        )


# --------------------------------------------------------------------- result


@dataclass(eq=False)
class OpenedModel:
    """A model opened by :func:`open_model_job`, with what a session needs to start on it.

    ``reference`` rebuilds it (None when it cannot be rebuilt); ``has_data`` is
    True for the digits demos (accuracy can be measured); ``torch_masks`` are
    the masks of a model pruned with torch.nn.utils.prune and ``saved_state``
    a reopened PruneScope session, both put on the session by
    :func:`open_session`; ``notes`` are things the user should know.
    """

    model: nn.Module
    name: str
    reference: ModelReference | None
    example_input: torch.Tensor | None = None
    has_data: bool = False
    torch_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    saved_state: SavedSession | None = None
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------- entry points


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
        opened = yield from _open_reference(source, trust, token)
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
        return _restore_saved(opened.model, opened.saved_state, options)
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


# --------------------------------------------------------------------- references


def _open_reference(ref: ModelReference, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """Build the model a reference names."""
    if ref.kind == "demo":
        return _open_demo(ref.target)
    if ref.kind == "factory":
        return (yield from _open_factory(ref, token))
    if ref.kind == "folder":
        return _open_folder(Path(ref.target), trust)
    path = Path(ref.target)
    if not path.is_file():
        raise PruningError(f"{ref.target}: no such file")
    if ref.kind == "torchscript":
        return _open_torchscript(path)
    return (yield from _open_torch_file(path, trust, token))


def _open_demo(name: str) -> OpenedModel:
    """A built-in demo with its example input."""
    demo = load_demo(name)
    return OpenedModel(
        model=demo.model,
        name=f"demo {name}",
        reference=ModelReference("demo", name),
        example_input=demo.example_input,
        has_data=demo.has_data,
    )


def _open_factory(ref: ModelReference, token: CancelToken) -> Job[OpenedModel]:
    """The factory's model, with its weights file loaded (and torch's masks taken out)."""
    file = None if ref.weights is None else Path(ref.weights)
    model = build_factory(ref, search=() if file is None else (file.parent,))
    yield Progress(0.1, f"Built {ref.target}")
    if file is None:
        note = "no weights file: the factory's initial weights"
        return OpenedModel(model, ref.describe(), ref, notes=(note,))
    token.check()
    state, notes = yield from _read_state_file(file, token)
    state, masks = split_torch_pruned(state)
    yield from _load_state(model, state, file, ref.describe(), token)
    if masks:
        notes = (*notes, _masks_note(masks))
    return OpenedModel(model, ref.describe(), ref, torch_masks=masks, notes=notes)


def build_factory(ref: ModelReference, search: Sequence[Path] = ()) -> nn.Module:
    """Call a factory reference's callable with its arguments (its own initial weights).

    The module is imported from the import path, or else from the folders in
    ``search`` (each put on ``sys.path`` only while importing and building).

    Raises:
        PruningError: the module, the callable or the model cannot be had.
    """
    factory = import_callable(ref.target, search)
    with on_sys_path(search):  # what the factory imports when called
        try:
            model = factory(**ref.kwargs)
        except Exception as exc:  # the user's code raises anything
            raise PruningError(
                f"{ref.describe()}: building the model failed ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(model, nn.Module):
        raise PruningError(f"{ref.target} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


# --------------------------------------------------------------------- files


def _open_file(path: Path, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """Open a file on its own: a session, TorchScript, or a pickled model (state_dicts refused)."""
    if not path.is_file():
        raise PruningError(f"{path}: no such file")
    kind = _file_kind(path)
    if kind == "session":
        return (yield from _open_saved_session(path, trust, token))
    if kind == "torchscript":
        return _open_torchscript(path)
    if kind == "safetensors":
        if _is_slim(path):
            return (yield from _open_saved_session(path, trust, token, slim=True))
        raise FactoryRequired(path)
    return (yield from _open_torch_file(path, trust, token))


def _file_kind(path: Path) -> str:
    """``"session"``, ``"safetensors"``, ``"torchscript"`` or ``"torch"`` (torch.save or pickle)."""
    if path.suffix.lower() == SESSION_SUFFIX:
        return "session"
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        return "safetensors"
    if zipfile.is_zipfile(path) and _is_torchscript(path):
        return "torchscript"
    return "torch"


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors header: an 8-byte little-endian length, then a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return bool(0 < length <= path.stat().st_size - 8)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive has a ``code/`` folder or ``constants.pkl`` in its top folder."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    inner = [name.split("/", 1)[1] for name in names if "/" in name]
    return any(name.startswith("code/") or name == "constants.pkl" for name in inner)


def _open_torchscript(path: Path) -> OpenedModel:
    """A TorchScript module (``torch.jit.load``; runs no Python code from the file)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _JIT_NOTICE, DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:  # torch raises RuntimeError and others on bad archives
        raise PruningError(f"{path.name}: could not be read as TorchScript ({exc})") from exc
    note = "TorchScript hides layer types: every parameter of 2+ dimensions can be pruned"
    return OpenedModel(model, path.name, ModelReference("torchscript", str(path)), notes=(note,))


def _open_torch_file(path: Path, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """A torch.save file or pickle on its own: a whole model (with trust), never a state_dict."""
    yield Progress(0.1, f"Reading {path.name}")
    loaded = load_weights_only(path)
    token.check()
    if isinstance(loaded, Unsafe):
        _refuse_main_classes(path, loaded.classes)
        if not trust:
            raise TrustRequired(path, loaded.classes)
        return (yield from _open_pickle(path, token))
    found = _state_dict(loaded)
    if found is not None:
        raise FactoryRequired(path, len(found[0]))
    raise PruningError(f"{path.name} holds a {type(loaded).__name__}, not a model")


def _refuse_main_classes(path: Path, classes: Sequence[str]) -> None:
    """A class from a script's ``__main__`` cannot be found again: say what to save instead."""
    main = sys.modules.get("__main__")
    lost = [
        name
        for name in classes
        if name.startswith("__main__.") and not hasattr(main, name.split(".", 1)[1])
    ]
    if lost:
        raise PruningError(_main_message(path, lost[0].split(".", 1)[1]))


def _main_message(path: Path, name: str) -> str:
    return (
        f"{path.name} holds a model whose class {name} was defined in a script run as "
        "__main__, so it cannot be found again. In that script, save the weights: "
        f"torch.save(model.state_dict(), 'weights.pt'); move {name} into a module (e.g. "
        f"mymodel.py beside the weights) and open it with its factory, mymodel:{name} "
        "with --weights weights.pt on the command line, or in the window's Open dialog"
    )


def _open_pickle(path: Path, token: CancelToken) -> Job[OpenedModel]:
    """Unpickle a trusted whole-model file, its folder on the import path meanwhile."""
    yield Progress(0.3, f"Unpickling {path.name}")
    try:
        with on_sys_path([path.parent]):
            obj = torch.load(
                path, map_location="cpu", weights_only=False, mmap=zipfile.is_zipfile(path)
            )
    except ModuleNotFoundError as exc:
        raise PruningError(
            f"{path.name} needs the module {exc.name}, which is neither installed nor beside "
            "the file: install it, put it beside the file, or add its folder to PYTHONPATH"
        ) from exc
    except AttributeError as exc:
        if "__main__" in str(exc):
            name = str(exc).split("'")[1] if "'" in str(exc) else "the model's class"
            raise PruningError(_main_message(path, name)) from exc
        raise PruningError(f"{path.name}: could not be unpickled ({exc})") from exc
    except Exception as exc:  # the file's own code raises anything
        raise PruningError(f"{path.name}: could not be unpickled ({exc})") from exc
    token.check()
    if not isinstance(obj, nn.Module):
        if _state_dict(obj) is not None:
            raise FactoryRequired(path)
        raise PruningError(f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module")
    try:
        masks = strip_torch_pruning(obj)
    except PruningError as exc:
        raise PruningError(f"{path.name}: {exc}") from exc
    notes = (_masks_note(masks),) if masks else ()
    reference = ModelReference("pickle", str(path))
    return OpenedModel(obj, path.name, reference, torch_masks=masks, notes=notes)


# --------------------------------------------------------------------- state_dicts


def _read_state_file(
    path: Path, token: CancelToken
) -> Job[tuple[dict[str, torch.Tensor], tuple[str, ...]]]:
    """A state_dict file's tensors (torch, safetensors or sparse), and notes on where they were.

    Raises:
        PruningError: the file is missing, unreadable, or holds something else.
    """
    if not path.is_file():
        raise PruningError(f"{path}: no such weights file")
    kind = _file_kind(path)
    if kind == "session":
        raise PruningError(f"{path.name} is a saved session: open it on its own, without a factory")
    if kind == "torchscript":
        raise PruningError(f"{path.name} is a TorchScript model: open it on its own")
    if kind == "safetensors":
        if _is_slim(path):
            raise PruningError(
                f"{path.name} is a slim model: open it on its own, without a factory"
            )
        return (yield from _read_safetensors(path, token)), ()
    yield Progress(0.2, f"Reading {path.name}")
    loaded = load_weights_only(path)
    if isinstance(loaded, Unsafe):
        raise PruningError(
            f"{path.name} holds a pickled Python object ({_short(loaded.classes)}), not a "
            "state_dict: open it on its own (it needs trust), or save model.state_dict()"
        )
    found = _state_dict(loaded)
    if found is None:
        raise PruningError(f"{path.name} holds a {type(loaded).__name__}, not a state_dict")
    state, entry = found
    notes = () if entry is None else (f"weights taken from the file's {entry!r} entry",)
    return state, notes


def _read_safetensors(path: Path, token: CancelToken) -> Job[dict[str, torch.Tensor]]:
    """A safetensors file's tensors, memory-mapped; a PruneScope sparse file made dense."""
    if _is_sparse(path):
        from core.io.checkpoints import read_sparse_job

        return (yield from scaled(read_sparse_job(path, token), 0.2, 0.7))
    from safetensors import SafetensorError, safe_open

    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            names = list(handle.keys())
            for index, name in enumerate(names):
                token.check()
                state[name] = handle.get_tensor(name)
                if index % 16 == 0:
                    yield Progress(0.2 + 0.5 * index / len(names), f"Reading {path.name}")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise PruningError(f"{path.name}: could not be read as safetensors ({exc})") from exc
    return state


def _is_sparse(path: Path) -> bool:
    """Whether ``path`` is PruneScope's sparse format (False while that format is unavailable)."""
    try:
        from core.io.checkpoints import is_sparse_file
    except ImportError:
        return False
    return is_sparse_file(path)


def _is_slim(path: Path) -> bool:
    """Whether ``path`` is PruneScope's slim format."""
    from core.io.checkpoints import is_slim_file

    return is_slim_file(path)


def _state_dict(obj: Any) -> tuple[dict[str, torch.Tensor], str | None] | None:
    """``obj`` as a state_dict, or the one in a checkpoint's entry (named), or None."""
    if _is_tensor_map(obj):
        return dict(obj), None
    if isinstance(obj, Mapping):
        for entry in STATE_ENTRIES:
            if _is_tensor_map(obj.get(entry)):
                return dict(obj[entry]), entry
    return None


def _is_tensor_map(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in obj.items()
    )


def split_torch_pruned(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A state_dict in torch.nn.utils.prune's format made plain, and its masks.

    Each ``<name>_orig``/``<name>_mask`` pair becomes ``<name>`` (the original
    values) and a bool mask (True = kept) under ``<name>``. Other keys pass through.
    """
    plain: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        base = key.removesuffix("_orig")
        if key.endswith("_orig") and base + "_mask" in state:
            plain[base] = value
            masks[base] = state[base + "_mask"].detach().cpu() != 0
        elif not (key.endswith("_mask") and key.removesuffix("_mask") + "_orig" in state):
            plain[key] = value
    return plain, masks


def _load_state(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: Path,
    label: str,
    token: CancelToken,
) -> Job[None]:
    """Copy a state_dict into ``model`` in parts (progress, cancel), after checking it fits.

    A key missing from ``state`` is fine when another name of the same tensor
    (tied weights) is there.

    Raises:
        StateMismatch: missing, unexpected or mis-shaped keys.
    """
    check_fits(model, state, path, label)
    keys = list(state)
    step = max(1, -(-len(keys) // LOAD_STEPS))
    for start in range(0, len(keys), step):
        token.check()
        part = {key: state[key] for key in keys[start : start + step]}
        model.load_state_dict(part, strict=False)
        yield Progress(0.7 + 0.25 * (start + step) / len(keys), "Loading weights")


def check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path, label: str) -> None:
    """Raise :class:`StateMismatch` unless ``state`` has every tensor of ``model``, shaped alike."""
    expected = model.state_dict(keep_vars=True)
    names: dict[int, list[str]] = {}
    for key, tensor in expected.items():
        names.setdefault(id(tensor), []).append(key)
    missing = [
        key
        for key, tensor in expected.items()
        if not any(name in state for name in names[id(tensor)])
    ]
    unexpected = [key for key in state if key not in expected]
    misshaped = [
        (key, tuple(value.shape), tuple(expected[key].shape))
        for key, value in state.items()
        if key in expected and tuple(value.shape) != tuple(expected[key].shape)
    ]
    if missing or unexpected or misshaped:
        raise StateMismatch(path, label, missing, unexpected, misshaped)


# --------------------------------------------------------------------- model folders


def _open_folder(folder: Path, trust: bool) -> OpenedModel:
    """A Hugging Face-style model folder through ``transformers``, offline."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise PruningError(f"{folder.name}: not a model folder (it has no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PruningError(f"{folder.name}/config.json: not readable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise PruningError(f"{folder.name}/config.json: not a JSON object")
    with _offline():
        try:
            import transformers
        except ImportError as exc:
            raise PruningError(
                f"{folder.name}: opening model folders needs the transformers package; install "
                "PruneScope's hf extra (pip install 'prunescope[hf]')"
            ) from exc
        model = _from_pretrained(transformers, folder, config, trust)
    if not isinstance(model, nn.Module):
        raise PruningError(f"{folder.name}: transformers gave a {type(model).__name__}")
    return OpenedModel(
        model=model,
        name=folder.name,
        reference=ModelReference("folder", str(folder)),
        example_input=_token_input(config),
    )


def _from_pretrained(transformers: Any, folder: Path, config: dict[str, Any], trust: bool) -> Any:
    """The folder's model class (``config.architectures``, else AutoModel), loaded locally."""
    architectures = config.get("architectures") or []
    name = architectures[0] if isinstance(architectures, list) and architectures else None
    model_class = getattr(transformers, str(name), None) if name else None
    extra: dict[str, Any] = {}
    if model_class is None:
        model_class = transformers.AutoModel
        extra["trust_remote_code"] = trust
    try:
        return model_class.from_pretrained(str(folder), local_files_only=True, **extra)
    except Exception as exc:  # transformers raises OSError, ValueError and more
        raise PruningError(
            f"{folder.name}: transformers could not open it ({first_line(exc)})"
        ) from exc


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face libraries offline and quiet (no progress bars) for the duration."""
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(dict.fromkeys(saved, "1"))
    try:
        with _no_progress_bars():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off for the duration (the caller shows progress)."""
    try:
        hf_logging: Any = importlib.import_module("transformers.utils.logging")
    except ImportError:
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _token_input(config: Mapping[str, Any]) -> torch.Tensor | None:
    """Token ids ``(1, 8)`` within the vocabulary, for models that take tokens."""
    vocab = config.get("vocab_size")
    if not isinstance(vocab, int) or vocab <= 0:
        return None
    length = EXAMPLE_TOKENS
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        length = min(length, positions)
    return (torch.arange(length) % vocab).unsqueeze(0)


# --------------------------------------------------------------------- saved sessions


def _open_saved_session(
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
        base = yield from _open_reference(ref, trust, token)
    token.check()
    note = f"reopened the session saved on {ref.describe()}"
    if slim:
        note = f"reopened the slim model of {ref.describe()}"
    if saved.layer_shapes is not None:
        _shrink(base.model, saved.layer_shapes, path)
    yield from _load_state(base.model, saved.weights, path, ref.describe(), token)
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


def _restore_saved(
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


# --------------------------------------------------------------------- messages


def _masks_note(masks: Mapping[str, torch.Tensor]) -> str:
    return (
        f"pruned with torch.nn.utils.prune: its masks on {_count(len(masks), 'parameter')} "
        "are put on the session"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _short(names: Sequence[str]) -> str:
    """The first :data:`SHOWN` names, and how many more."""
    shown = ", ".join(names[:SHOWN])
    more = len(names) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
