"""Interoperability with ``torch.nn.utils.prune``'s own format.

torch keeps ``weight_orig`` (a parameter), ``weight_mask`` (a float buffer)
and a forward pre-hook that recomputes ``weight``. :func:`to_torch_pruned`
produces that format from a session (so ``prune.is_pruned`` is true and
``prune.remove`` works); :func:`session_from_torch_pruned` adopts a model
pruned with torch into a session, keeping its originals for undo. The two halves of adopting
are public for models opened from files: :func:`strip_torch_pruning` makes a
model plain and returns torch's masks; :func:`adopt_masks` starts a session
with masks applied (also for masks read from a state_dict's ``*_mask`` keys).

Tied weights (one tensor under several names, e.g. an LM head sharing the
embedding's weight) have one mask in a session. In torch's format each module
using the tensor is reparametrised on its own: each gets ``<name>_orig`` (the
same shared parameter) and its own ``<name>_mask``, as
``prune.custom_from_mask`` on each module would give.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from core.common.errors import PruningError
from core.pruning.methods import CustomMask
from core.pruning.operations import LayerPrune
from core.pruning.session import PruningSession
from core.pruning.targets import find_targets


def to_torch_pruned(session: PruningSession) -> nn.Module:
    """A deep copy of the session's model in torch's pruned format.

    Layers with a mask get ``<name>_orig`` holding the original values and
    ``<name>_mask``; every module sharing a tied parameter is reparametrised
    with the same mask, so the copy computes what the session's model does.
    Unpruned layers stay plain. The session is unchanged.
    """
    model = copy.deepcopy(session.model)
    for name in session.names:
        if session.packed_mask(name) is None:
            continue
        info = session.info(name)
        mask = session.mask(name).to(info.device)
        for index, qualified in enumerate((name, *info.aliases)):
            module_name, _, attr = qualified.rpartition(".")
            module = model.get_submodule(module_name)
            if index == 0:  # the tensor is shared: restore its originals once
                with torch.no_grad():
                    getattr(module, attr).copy_(session.original(name))
            prune.custom_from_mask(module, attr, mask=mask)  # type: ignore[no-untyped-call]
    return model


@dataclass
class _Reparametrised:
    """One ``<attr>_orig``/``<attr>_mask`` pair that torch put on a module."""

    name: str  # qualified name of the effective tensor, e.g. "fc.weight"
    module: nn.Module
    attr: str
    original: nn.Parameter
    mask: torch.Tensor  # bool, on the CPU


def session_from_torch_pruned(model: nn.Module, **session_options: Any) -> PruningSession:
    """Adopt a model pruned with torch.nn.utils.prune into a new session.

    Every torch reparametrisation is removed (the model becomes plain again,
    with original values restored), then one undoable "custom mask" operation
    per pruned parameter re-applies torch's mask. Parameters torch pruned that
    the default targets leave out (biases, embeddings) are included. A tied
    parameter becomes one target; every module using it must carry the same
    mask (a module where it is not pruned counts as an all-kept mask).

    Raises:
        PruningError: a tied parameter is masked differently in its modules,
            or a pruned parameter cannot be a session target (e.g. a 1-D
            parameter that is not a bias). The model is then left in torch's
            format with the same masks and original values.
    """
    found, groups, originals = _strip(model)
    try:
        return adopt_masks(model, {entry.name: entry.mask for entry in found}, **session_options)
    except BaseException:
        _restore(found, groups, originals)
        raise


def strip_torch_pruning(model: nn.Module) -> dict[str, torch.Tensor]:
    """Make a model pruned with torch.nn.utils.prune plain again; return torch's masks.

    Each reparametrisation is removed and the original values are put back,
    so the model computes as if never pruned. The masks (bool, on the CPU) are
    keyed by every name torch pruned, tied names included; give them to
    :func:`adopt_masks`. A model torch did not prune gives an empty dict.

    Raises:
        PruningError: a tied parameter is masked differently in its modules
            (the model is then unchanged).
    """
    found, _, _ = _strip(model)
    return {entry.name: entry.mask for entry in found}


def adopt_masks(
    model: nn.Module, masks: Mapping[str, torch.Tensor], **session_options: Any
) -> PruningSession:
    """A new session on ``model`` with ``masks`` applied, one undoable operation per tensor.

    ``model`` holds the original values; each mask (True = kept) becomes a
    "custom mask" operation, so undo brings the pruned entries back. Names the
    default targets leave out widen the targets (biases, embeddings, other
    parameters). The names of one tied tensor must carry equal masks (a name
    of it without a mask counts as all kept).

    Raises:
        PruningError: a name is not a possible target, or a tied tensor's names
            carry different masks. The session is closed and the model unchanged.
    """
    session = PruningSession(model, **covering_options(model, masks, session_options))
    try:
        for name, mask in _one_mask_per_tensor(session, masks).items():
            session.apply(LayerPrune((name,), CustomMask(mask), mode="set"))
    except BaseException:
        session.close()
        raise
    return session


def covering_options(
    model: nn.Module, names: Iterable[str], session_options: Mapping[str, Any]
) -> dict[str, Any]:
    """Session options whose targets include ``names``.

    When a name is not among the default targets (Linear/Conv weights), biases,
    embeddings and other parameters are included, unless the options say otherwise.
    """
    options = dict(session_options)
    defaults = {n for info in find_targets(model) for n in (info.name, *info.aliases)}
    if any(name not in defaults for name in names):
        options.setdefault("include_bias", True)
        options.setdefault("include_embeddings", True)
        options.setdefault("include_other", True)
    return options


def _one_mask_per_tensor(
    session: PruningSession, masks: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``masks`` keyed by the session's names, a tied tensor's names folded into one."""
    folded: dict[str, torch.Tensor] = {}
    for name, mask in masks.items():
        if not session.prunes(name):
            raise PruningError(
                f"{name}: torch pruned it, but it is not among the session's targets "
                "(Linear/Conv/Embedding weights, biases and other parameters of 2+ "
                "dimensions can be)"
            )
        info = session.info(name)
        for other in (info.name, *info.aliases):
            seen = masks.get(other)
            if seen is None and not bool(mask.all()):
                raise PruningError(
                    f"{name} is pruned but shares its tensor with {other}, which is "
                    "not; a session prunes tied weights together"
                )
            if seen is not None and not torch.equal(seen, mask):
                raise PruningError(
                    f"{name} and {other} share one tensor but torch pruned them "
                    "with different masks; a session keeps one mask per tensor"
                )
        folded[info.name] = mask
    return folded


def _strip(
    model: nn.Module,
) -> tuple[list[_Reparametrised], dict[int, list[_Reparametrised]], dict[int, torch.Tensor]]:
    """Remove torch's reparametrisations, originals put back; what :func:`_restore` needs."""
    found = _reparametrised(model)
    groups: dict[int, list[_Reparametrised]] = {}
    for entry in found:
        groups.setdefault(id(entry.original), []).append(entry)
    _check_tied_masks(model, found, groups)
    originals = {key: entries[0].original.detach().clone() for key, entries in groups.items()}
    for entry in found:
        prune.remove(entry.module, entry.attr)  # type: ignore[no-untyped-call]
    for key, entries in groups.items():
        with torch.no_grad():
            entries[0].original.copy_(originals[key])
    return found, groups, originals


def _reparametrised(model: nn.Module) -> list[_Reparametrised]:
    """Every torch pruning reparametrisation in ``model``, in module order."""
    found: list[_Reparametrised] = []
    for module_name, module in model.named_modules(remove_duplicate=False):
        for hook in module._forward_pre_hooks.values():
            if not isinstance(hook, prune.BasePruningMethod):
                continue
            attr: str = hook._tensor_name
            name = f"{module_name}.{attr}" if module_name else attr
            if any(entry.module is module and entry.attr == attr for entry in found):
                continue  # a module reachable under two names
            original = getattr(module, attr + "_orig")
            mask = getattr(module, attr + "_mask").detach().cpu() != 0
            found.append(_Reparametrised(name, module, attr, original, mask))
    return found


def _check_tied_masks(
    model: nn.Module,
    found: list[_Reparametrised],
    groups: dict[int, list[_Reparametrised]],
) -> None:
    """Refuse tied parameters whose modules see different masks.

    A session keeps one mask per tensor; adopting such a model would change
    what some of its modules compute.
    """
    reparametrised = {(id(entry.module), entry.attr + "_orig") for entry in found}
    plain: dict[int, list[str]] = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for attr, param in module.named_parameters(recurse=False, remove_duplicate=False):
            if id(param) in groups and (id(module), attr) not in reparametrised:
                name = f"{module_name}.{attr}" if module_name else attr
                plain.setdefault(id(param), []).append(name)
    for key, entries in groups.items():
        first = entries[0]
        for other in entries[1:]:
            if not torch.equal(other.mask, first.mask):
                raise PruningError(
                    f"{first.name} and {other.name} share one tensor but torch pruned them "
                    "with different masks; a session keeps one mask per tensor"
                )
        if plain.get(key) and not bool(first.mask.all()):
            raise PruningError(
                f"{first.name} is pruned but shares its tensor with {plain[key][0]}, which is "
                "not; a session prunes tied weights together"
            )


def _restore(
    found: list[_Reparametrised],
    groups: dict[int, list[_Reparametrised]],
    originals: dict[int, torch.Tensor],
) -> None:
    """Put the model back in torch's format with its masks (after a failed adoption)."""
    for key, entries in groups.items():
        with torch.no_grad():
            entries[0].original.copy_(originals[key])
    for entry in found:
        mask = entry.mask.to(entry.original.device)
        prune.custom_from_mask(entry.module, entry.attr, mask=mask)  # type: ignore[no-untyped-call]
