"""Opening models and saving pruned ones.

Opening a whole-model file means unpickling, which runs code from the file:
:func:`load_whole_model` is only to be called after the user said they trust
it. Saving goes through :mod:`core.io.checkpoints` (every format, atomic writes,
the recipe beside the file under its full name).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from core.common.errors import PruningError
from core.io.checkpoints import format_for_path, recipe_path_for, save
from core.pruning.session import PruningSession

MODEL_SUFFIXES = (".pt", ".pth", ".bin")


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


def save_pruned(session: PruningSession, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Save the pruned model to ``path`` in the format its name implies, and its recipe beside it.

    See :mod:`core.io.checkpoints` (``.safetensors``/``.pt``: the state_dict,
    ``.prunescope``: the session, ``.pt2``: torch.export, ``.onnx``: ONNX).
    Writes are atomic. Returns (file, recipe) paths.
    """
    saved = save(session, path, format_for_path(path))
    return saved.path, recipe_path_for(saved.path)
