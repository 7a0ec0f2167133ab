"""State_dicts for the loader (:mod:`core.io.loading`): reading them, checking, loading.

A weights file (torch, safetensors or PruneScope's sparse format) is read into
a plain ``{name: tensor}`` map, torch.nn.utils.prune's ``*_orig``/``*_mask``
pairs are split off, and the map is checked against the model and loaded into
it in parts, so the caller can show progress and cancel.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress, scaled
from core.io.file_kinds import file_kind, is_slim, is_sparse
from core.io.load_errors import StateMismatch, listed
from core.io.pickle_scan import Unsafe, load_weights_only

STATE_ENTRIES = ("state_dict", "model_state_dict", "model")
"""Entries of a training checkpoint (a dict) that may hold the model's state_dict."""

LOAD_STEPS = 20
"""A state_dict is loaded into the model in about this many parts (progress, cancel)."""


def read_state_file(
    path: Path, token: CancelToken
) -> Job[tuple[dict[str, torch.Tensor], tuple[str, ...]]]:
    """A state_dict file's tensors (torch, safetensors or sparse), and notes on where they were.

    Raises:
        PruningError: the file is missing, unreadable, or holds something else.
    """
    if not path.is_file():
        raise PruningError(f"{path}: no such weights file")
    kind = file_kind(path)
    if kind == "session":
        raise PruningError(f"{path.name} is a saved session: open it on its own, without a factory")
    if kind == "torchscript":
        raise PruningError(f"{path.name} is a TorchScript model: open it on its own")
    if kind == "safetensors":
        if is_slim(path):
            raise PruningError(
                f"{path.name} is a slim model: open it on its own, without a factory"
            )
        return (yield from _read_safetensors(path, token)), ()
    yield Progress(0.2, f"Reading {path.name}")
    loaded = load_weights_only(path)
    if isinstance(loaded, Unsafe):
        raise PruningError(
            f"{path.name} holds a pickled Python object ({listed(loaded.classes)}), not a "
            "state_dict: open it on its own (it needs trust), or save model.state_dict()"
        )
    found = find_state_dict(loaded)
    if found is None:
        raise PruningError(f"{path.name} holds a {type(loaded).__name__}, not a state_dict")
    state, entry = found
    notes = () if entry is None else (f"weights taken from the file's {entry!r} entry",)
    return state, notes


def _read_safetensors(path: Path, token: CancelToken) -> Job[dict[str, torch.Tensor]]:
    """A safetensors file's tensors, memory-mapped; a PruneScope sparse file made dense."""
    if is_sparse(path):
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


def find_state_dict(obj: Any) -> tuple[dict[str, torch.Tensor], str | None] | None:
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


def load_state(
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
