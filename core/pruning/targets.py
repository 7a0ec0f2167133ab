"""Which parameters of a model can be pruned, by stable qualified name."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

#: Module types whose ``weight`` is pruned by default.
DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, _ConvNd)
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


@dataclass(frozen=True)
class TargetInfo:
    """A prunable parameter: where it lives and what it is."""

    name: str
    module_name: str
    module_type: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    aliases: tuple[str, ...] = ()

    @property
    def numel(self) -> int:
        """Number of entries."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def is_transposed_conv(self) -> bool:
        """ConvTranspose weights store ``(in, out, ...)``: rows are inputs."""
        return self.module_type.startswith("ConvTranspose")


def find_targets(
    model: nn.Module,
    *,
    include_bias: bool = False,
    include_embeddings: bool = False,
    include_other: bool = False,
) -> list[TargetInfo]:
    """List the prunable parameters of ``model`` in definition order.

    Defaults: weights of Linear and Conv1d/2d/3d/ConvTranspose layers. Embedding
    weights, other parameters with 2+ dimensions and biases are opt-in. A tensor
    shared under several names (tied weights) appears once, under its first
    name, with the other names in ``aliases``.
    """
    names: dict[int, list[str]] = {}
    params: dict[int, torch.Tensor] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
        params[id(param)] = param
    modules = dict(model.named_modules(remove_duplicate=False))
    found: list[TargetInfo] = []
    for key, all_names in names.items():
        tensor = params[key]
        # A tied tensor is a target if any of its names qualifies (e.g. an LM head
        # tied to an embedding), and is named by the first name that does.
        chosen = None
        for name in all_names:
            module_name, _, attr = name.rpartition(".")
            module = modules[module_name]
            if _wanted(module, attr, tensor, include_bias, include_embeddings, include_other):
                chosen = (name, module_name, module)
                break
        if chosen is None:
            continue
        name, module_name, module = chosen
        found.append(
            TargetInfo(
                name=name,
                module_name=module_name,
                module_type=type(module).__name__,
                shape=tuple(tensor.shape),
                dtype=tensor.dtype,
                device=tensor.device,
                aliases=tuple(a for a in all_names if a != name),
            )
        )
    return found


def _wanted(
    module: nn.Module,
    attr: str,
    param: torch.Tensor,
    include_bias: bool,
    include_embeddings: bool,
    include_other: bool,
) -> bool:
    if not param.is_floating_point():
        return False
    if attr == "bias":
        return include_bias
    if attr == "weight" and isinstance(module, DEFAULT_TYPES):
        return True
    if isinstance(module, EMBEDDING_TYPES):
        return include_embeddings
    return include_other and param.dim() >= 2


def target_info(model: nn.Module, name: str) -> TargetInfo:
    """Any floating-point parameter of ``model`` described as a target (whatever its kind).

    Used to make parameters targets on demand (e.g. the batch norm scale and shift
    that group pruning holds at zero). The tensor's other names are its aliases.

    Raises:
        KeyError: ``name`` is not a floating-point parameter of ``model``.
    """
    names: dict[int, list[str]] = {}
    params: dict[str, torch.Tensor] = {}
    for each, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(each)
        params[each] = param
    tensor = params.get(name)
    if tensor is None or not tensor.is_floating_point():
        raise KeyError(name)
    module_name = name.rpartition(".")[0]
    module = dict(model.named_modules(remove_duplicate=False))[module_name]
    return TargetInfo(
        name=name,
        module_name=module_name,
        module_type=type(module).__name__,
        shape=tuple(tensor.shape),
        dtype=tensor.dtype,
        device=tensor.device,
        aliases=tuple(a for a in names[id(tensor)] if a != name),
    )
