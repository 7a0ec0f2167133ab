"""Building the model a :class:`~core.io.references.ModelReference` names.

A built-in demo, a factory (with its weights file, torch.nn.utils.prune's masks
taken out), a Hugging Face-style model folder, a TorchScript file or a
torch.save file. Saved sessions rebuild their model through here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.demos import load_demo
from core.io.load_errors import masks_note
from core.io.model_folders import open_folder
from core.io.opened_model import OpenedModel
from core.io.references import ModelReference, import_callable, on_sys_path
from core.io.state_dicts import load_state, read_state_file, split_torch_pruned
from core.io.whole_model_files import open_torch_file, open_torchscript


def open_reference(ref: ModelReference, trust: bool, token: CancelToken) -> Job[OpenedModel]:
    """Build the model a reference names."""
    if ref.kind == "demo":
        return _open_demo(ref.target)
    if ref.kind == "factory":
        return (yield from _open_factory(ref, token))
    if ref.kind == "folder":
        return open_folder(Path(ref.target), trust)
    path = Path(ref.target)
    if not path.is_file():
        raise PruningError(f"{ref.target}: no such file")
    if ref.kind == "torchscript":
        return open_torchscript(path)
    return (yield from open_torch_file(path, trust, token))


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
    state, notes = yield from read_state_file(file, token)
    state, masks = split_torch_pruned(state)
    yield from load_state(model, state, file, ref.describe(), token)
    if masks:
        notes = (*notes, masks_note(masks))
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
