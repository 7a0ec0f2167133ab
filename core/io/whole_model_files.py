"""Files that hold a whole model, not just weights: TorchScript archives and pickled modules.

TorchScript loads without running Python code from the file. A pickled module
(``torch.save(model)``) does run it, so it is opened only with ``trust``; a
state_dict found instead is refused with :class:`~core.io.load_errors.FactoryRequired`.
"""

from __future__ import annotations

import sys
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.io.load_errors import FactoryRequired, TrustRequired, masks_note
from core.io.opened_model import OpenedModel
from core.io.pickle_scan import Unsafe, load_weights_only
from core.io.references import ModelReference, on_sys_path
from core.io.state_dicts import find_state_dict
from core.io.torch_interop import strip_torch_pruning

_JIT_NOTICE = "`torch.jit.load` is deprecated"
"""torch's deprecation warning on every ``torch.jit.load``; TorchScript files still load."""


def open_torchscript(path: Path) -> OpenedModel:
    """A TorchScript module (``torch.jit.load``; runs no Python code from the file)."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _JIT_NOTICE, DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
    except Exception as exc:  # torch raises RuntimeError and others on bad archives
        raise PruningError(f"{path.name}: could not be read as TorchScript ({exc})") from exc
    note = "TorchScript hides layer types: every parameter of 2+ dimensions can be pruned"
    return OpenedModel(model, path.name, ModelReference("torchscript", str(path)), notes=(note,))


def open_torch_file(path: Path, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """A torch.save file or pickle on its own: a whole model (with trust), never a state_dict."""
    yield Progress(0.1, f"Reading {path.name}")
    loaded = load_weights_only(path)
    token.check()
    if isinstance(loaded, Unsafe):
        _refuse_main_classes(path, loaded.classes)
        if not trust:
            raise TrustRequired(path, loaded.classes)
        return (yield from _open_pickle(path, token))
    found = find_state_dict(loaded)
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
        if find_state_dict(obj) is not None:
            raise FactoryRequired(path)
        raise PruningError(f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module")
    try:
        masks = strip_torch_pruning(obj)
    except PruningError as exc:
        raise PruningError(f"{path.name}: {exc}") from exc
    notes = (masks_note(masks),) if masks else ()
    reference = ModelReference("pickle", str(path))
    return OpenedModel(obj, path.name, reference, torch_masks=masks, notes=notes)
