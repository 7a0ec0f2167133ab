"""Opening models and saving pruned ones.

Opening a whole-model file means unpickling, which runs code from the file:
:func:`load_whole_model` is only to be called after the user said they trust
it. Saving writes a plain state_dict (safetensors by default: no pickle; or
torch's ``.pt``) of the pruned weights, plus the recipe beside it, so the file
loads into the unmodified model class anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_model
from torch import nn

from core.common.errors import PruningError
from core.io.recipe import save_recipe
from core.pruning.session import PruningSession

MODEL_SUFFIXES = (".pt", ".pth", ".bin")
STATE_SUFFIXES = (".safetensors", ".pt", ".pth")


def load_whole_model(path: str | os.PathLike[str]) -> nn.Module:
    """Load a model saved with ``torch.save(model)``. **Runs code from the file.**

    Raises:
        PruningError: the file is missing, unreadable or holds no ``nn.Module``
            (a state_dict alone cannot be opened without its model class).
    """
    path = Path(path)
    if not path.is_file():
        raise PruningError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupted or foreign files raise many types
        raise PruningError(f"{path.name}: could not be read as a PyTorch file ({exc})") from exc
    if isinstance(obj, dict):
        raise PruningError(
            f"{path.name} holds a state_dict, not a model: it needs its model class to be "
            "built first. Save the whole model with torch.save(model, path) to open it here."
        )
    if not isinstance(obj, nn.Module):
        raise PruningError(f"{path.name} holds a {type(obj).__name__}, not a torch.nn.Module")
    return obj.eval()


def recipe_path_for(path: str | os.PathLike[str]) -> Path:
    """The recipe path beside a checkpoint: ``m.safetensors`` → ``m.recipe.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".recipe.json")


def save_pruned(session: PruningSession, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the pruned model's state_dict to ``path`` and its recipe beside it.

    The suffix picks the format: ``.safetensors`` (no pickle) or ``.pt``/``.pth``
    (``torch.save``). Files are written to a temporary name first, so a failure
    never leaves a half-written checkpoint. Returns (checkpoint, recipe) paths.
    """
    path = Path(path)
    if path.suffix not in STATE_SUFFIXES:
        raise PruningError(f"{path.name}: choose a .safetensors or .pt file name")
    recipe = recipe_path_for(path)
    partial = path.with_name(path.name + ".partial")
    try:
        if path.suffix == ".safetensors":
            save_model(session.model, str(partial))
        else:
            torch.save(session.model.state_dict(), partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    partial_recipe = recipe.with_name(recipe.name + ".partial")
    try:
        save_recipe(session, partial_recipe)
        os.replace(partial_recipe, recipe)
    finally:
        partial_recipe.unlink(missing_ok=True)
    return path, recipe
