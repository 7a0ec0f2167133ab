"""What a model costs besides time, and how far its outputs are from another's.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (2 per
multiply-add, the dense formula of every aten op it knows); sparse layers,
whose kernels torch cannot see, add 2 per kept weight and input vector.
Parameters are the numbers a model stores as weights: its parameters, plus the
kept values and biases of sparse layers (whose weights are buffers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from core.speed.sparse_modules import TorchCsrLinear


@runtime_checkable
class _SparseLayer(Protocol):
    def stored_values(self) -> list[Tensor]: ...

    def flops_for(self, x: Tensor) -> int: ...


def count_flops(model: nn.Module, x: Tensor) -> int | None:
    """FLOPs of ``model(x)`` (see module docstring), or None when they cannot be counted."""
    extra = 0

    def hook(module: nn.Module, args: tuple[object, ...]) -> None:
        nonlocal extra
        if args and isinstance(args[0], Tensor) and isinstance(module, _SparseLayer):
            extra += module.flops_for(args[0])
            if isinstance(module, TorchCsrLinear):  # torch counts its product as dense
                rows = args[0].numel() // max(1, module.in_features)
                extra -= 2 * module.in_features * module.out_features * rows

    handles = [
        m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, _SparseLayer)
    ]
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(x)
        return max(0, int(counter.get_total_flops()) + extra)
    except Exception:
        return None
    finally:
        for handle in handles:
            handle.remove()


def count_params(model: nn.Module) -> tuple[int, int]:
    """Stored weight values of ``model``: (total, non-zero)."""
    tensors: list[Tensor] = list(model.parameters())
    for module in model.modules():
        if isinstance(module, _SparseLayer):
            tensors += module.stored_values()
    total = nonzero = 0
    for tensor in tensors:
        total += tensor.numel()
        nonzero += _nonzeros(tensor.detach())
    return total, nonzero


def _nonzeros(tensor: Tensor) -> int:
    """Non-zero entries, also of tensor subclasses without ``count_nonzero`` (2:4 tensors:
    counted on their dense form; all entries when even that fails)."""
    try:
        return int(torch.count_nonzero(tensor))
    except (RuntimeError, NotImplementedError, TypeError):
        pass
    try:
        return int(torch.count_nonzero(tensor.to_dense()))
    except (RuntimeError, NotImplementedError, TypeError):
        return tensor.numel()


def output_tensors(output: object) -> list[Tensor]:
    """The tensors of a model's output in order (a tensor, or tuples, lists, dicts of them)."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, Mapping):
        return [t for value in output.values() for t in output_tensors(value)]
    if isinstance(output, list | tuple):
        return [t for value in output for t in output_tensors(value)]
    return []


def max_abs_diff(got: object, expected: object) -> float:
    """Largest absolute difference between two outputs (inf when their tensors differ in
    number or shape, or when either holds NaN)."""
    a, b = output_tensors(got), output_tensors(expected)
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        return math.inf
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.numel():
            diff = float((x.detach().float().cpu() - y.detach().float().cpu()).abs().max())
            worst = max(worst, diff if diff == diff else math.inf)  # NaN -> inf
    return worst


def max_magnitude(output: object) -> float:
    """Largest absolute value among an output's tensors (0 when empty)."""
    tensors = [t for t in output_tensors(output) if t.numel()]
    return max((float(t.detach().float().abs().max()) for t in tensors), default=0.0)
