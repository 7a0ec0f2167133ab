"""Interoperability with ``torch.nn.utils.prune``'s own format.

torch keeps ``weight_orig`` (a parameter), ``weight_mask`` (a float buffer)
and a forward pre-hook that recomputes ``weight``. :func:`to_torch_pruned`
produces that format from a session (so ``prune.is_pruned`` is true and
``prune.remove`` works); :func:`session_from_torch_pruned` adopts a model
pruned with torch into a session, keeping its originals for undo.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from core.pruning.methods import CustomMask
from core.pruning.operations import LayerPrune
from core.pruning.session import PruningSession
from core.pruning.targets import find_targets


def to_torch_pruned(session: PruningSession) -> nn.Module:
    """A deep copy of the session's model in torch's pruned format.

    Layers with a mask get ``<name>_orig`` holding the original values and
    ``<name>_mask``; unpruned layers stay plain. The session is unchanged.
    """
    model = copy.deepcopy(session.model)
    for name in session.names:
        if session.packed_mask(name) is None:
            continue
        info = session.info(name)
        module = model.get_submodule(info.module_name)
        attr = name.rpartition(".")[2]
        with torch.no_grad():
            getattr(module, attr).copy_(session.original(name))
        prune.custom_from_mask(module, attr, mask=session.mask(name).to(info.device))
    return model


def session_from_torch_pruned(model: nn.Module, **session_options: Any) -> PruningSession:
    """Adopt a model pruned with torch.nn.utils.prune into a new session.

    Every torch reparametrisation is removed (the model becomes plain again,
    with original values restored), then one undoable "custom mask" operation
    per pruned parameter re-applies torch's mask. Parameters torch pruned that
    the default targets leave out (biases, embeddings) are included.
    """
    imported: dict[str, torch.Tensor] = {}
    for module_name, module in model.named_modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if not isinstance(hook, prune.BasePruningMethod):
                continue
            attr = hook._tensor_name
            original = getattr(module, attr + "_orig").detach().clone()
            mask = getattr(module, attr + "_mask").detach() != 0
            prune.remove(module, attr)
            module._forward_pre_hooks.pop(key, None)
            with torch.no_grad():
                getattr(module, attr).copy_(original)
            imported[f"{module_name}.{attr}" if module_name else attr] = mask.cpu()
    options = dict(session_options)
    defaults = {info.name for info in find_targets(model)}
    if any(name not in defaults for name in imported):
        options.setdefault("include_bias", True)
        options.setdefault("include_embeddings", True)
        options.setdefault("include_other", True)
    session = PruningSession(model, **options)
    for name, mask in imported.items():
        session.apply(LayerPrune((name,), CustomMask(mask), mode="set"))
    return session
