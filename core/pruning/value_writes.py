"""Reading and writing the values of a model's parameters and buffers, masks kept.

Writes go through :func:`write_value`, which keeps a pruned layer's pruned
entries at zero and re-bases the stored originals of its kept entries, so a
later undo never writes stale values back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from core.common.errors import PruningError, UnknownParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.common.tensors import writable_flat
from core.pruning.mask_application import zero_pruned
from core.pruning.model_state import ModelState


def model_tensors(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The named parameters or buffers of ``model`` (state_dict names, tied names too).

    Raises:
        UnknownParameterError: a name that is neither.
    """
    known: dict[str, torch.Tensor] = dict(model.named_parameters(remove_duplicate=False))
    known.update(model.named_buffers(remove_duplicate=False))
    tensors: dict[str, torch.Tensor] = {}
    for name in names:
        if name not in known:
            raise UnknownParameterError(name, list(known))
        tensors[name] = known[name]
    return tensors


def read_values(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """CPU copies of the named parameters or buffers of ``model`` (state_dict names)."""
    tensors = model_tensors(model, names)
    return {name: t.detach().to("cpu", copy=True) for name, t in tensors.items()}


def write_values_job(
    state: ModelState,
    values: Mapping[str, torch.Tensor],
    dense_copy: Callable[[], nn.Module],
    token: CancelToken = NEVER_CANCELLED,
) -> Job[dict[str, torch.Tensor]]:
    """Write new values into parameters or buffers of ``state``'s model; all or nothing.

    Before the first write ever, ``dense_copy()`` becomes the state's
    ``dense_reference`` (kept values are about to change). Returns CPU copies of
    the values before.

    Raises:
        PruningError: a value of another shape than its tensor.
        UnknownParameterError: a name that is neither a parameter nor a buffer.
    """
    tensors = model_tensors(state.model, values)
    for name, value in values.items():
        if tuple(value.shape) != tuple(tensors[name].shape):
            raise PruningError(
                f"{name}: new values have shape {tuple(value.shape)}, "
                f"the model's have {tuple(tensors[name].shape)}"
            )
    before = read_values(state.model, tensors)
    if state.dense_reference is None:  # kept values are about to change
        state.dense_reference = dense_copy()
    try:
        for i, (name, value) in enumerate(values.items()):
            token.check()
            write_value(state, name, tensors[name], value)
            yield Progress((i + 1) / len(values), f"updated {name}")
    except BaseException:
        for name, old in before.items():
            write_value(state, name, tensors[name], old)
        raise
    return before


def write_value(state: ModelState, name: str, tensor: torch.Tensor, value: torch.Tensor) -> None:
    """Copy ``value`` into ``tensor``; for a pruned layer keep pruned entries zero."""
    with torch.no_grad():
        tensor.copy_(value.to(tensor.device, tensor.dtype))
    if not state.prunes(name):
        return
    layer = state.layer(name)
    if layer.mask is None:
        state.vault.forget(layer.info.name)
        return
    state.vault.forget_positions(layer.info.name, layer.mask)
    with writable_flat(layer.param) as flat:
        zero_pruned(flat, layer.mask)
