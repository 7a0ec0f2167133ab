"""Noticing tensors changed behind a session's back (an optimiser step, ``p.data`` writes).

A :class:`TensorWatch` remembers each watched tensor's version counter, storage
pointer and a fingerprint of a few sampled values after the session last touched
it; :func:`follow_replaced_parameters` points a state's layers at parameters
replaced by other objects or converted to another dtype, device or shape. See
:meth:`~core.pruning.session.PruningSession.check_outside_changes`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch
from torch import nn

from core.common.errors import PruningError
from core.pruning.model_state import ModelState

#: Values sampled per parameter to notice ``.data`` writes.
_FINGERPRINT_SAMPLES = 64


@dataclasses.dataclass(frozen=True)
class _Seen:
    """What a parameter looked like after the session last touched it."""

    version: int
    pointer: int
    fingerprint: bytes


class TensorWatch:
    """What a model's parameters, and the buffers asked for, looked like when last remembered."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._buffers: set[str] = set()

    def watch_buffers(self, names: Iterable[str]) -> None:
        """Watch these buffers too from now on (missing ones are skipped when looking)."""
        self._buffers.update(names)

    def remember(self, model: nn.Module) -> None:
        """Take the watched tensors of ``model`` as they are now."""
        self._seen = {name: _seen(t) for name, t in self._watched(model).items()}

    def changed(self, model: nn.Module) -> list[str]:
        """The watched tensors of ``model`` that are not as last remembered, in model order."""
        seen = {name: _seen(t) for name, t in self._watched(model).items()}
        return [name for name, now in seen.items() if self._seen.get(name) != now]

    def _watched(self, model: nn.Module) -> dict[str, torch.Tensor]:
        tensors: dict[str, torch.Tensor] = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        tensors.update({name: buffers[name] for name in self._buffers if name in buffers})
        return tensors


def follow_replaced_parameters(state: ModelState) -> list[str]:
    """Point layers at parameters replaced or converted outside; the names concerned.

    A layer converted to another dtype or device loses its stored originals (its
    pruning becomes permanent); one with a new shape loses its mask.

    Raises:
        PruningError: a prunable parameter is gone from the model.
    """
    params = dict(state.model.named_parameters(remove_duplicate=False))
    followed = []
    for name, layer in state.layers.items():
        param = params.get(name)
        if param is None:
            raise PruningError(
                f"{name} is no longer a parameter of the model; open the model again"
            )
        info = layer.info
        now = (tuple(param.shape), param.dtype, param.device)
        if param is layer.param and now == (info.shape, info.dtype, info.device):
            continue
        followed.append(name)
        layer.param = param
        if now == (info.shape, info.dtype, info.device):
            continue
        layer.info = dataclasses.replace(info, shape=now[0], dtype=now[1], device=now[2])
        state.vault.forget(name)  # originals in the old dtype or shape cannot come back
        if now[0] != info.shape:
            layer.mask = layer.floor = None
        else:
            layer.floor = layer.mask
    return followed


def _seen(param: torch.Tensor) -> _Seen:
    """Version counter, storage pointer and a few sampled values of ``param``."""
    flat = param.detach().reshape(-1)
    if flat.numel() > _FINGERPRINT_SAMPLES:
        steps = torch.arange(_FINGERPRINT_SAMPLES, dtype=torch.int64)
        positions = steps * (flat.numel() - 1) // (_FINGERPRINT_SAMPLES - 1)
        flat = flat[positions.to(flat.device)]
    sample = flat.to("cpu", copy=True)
    if sample.dtype == torch.bfloat16:
        sample = sample.view(torch.int16)
    return _Seen(param._version, param.data_ptr(), sample.numpy().tobytes())
