"""Unstructured sparsity executed by sparse kernels, layer by layer where it measurably pays.

:func:`sparsify_job` copies a model, runs the example input once to capture what
each Linear and 1x1 convolution receives, and times every such layer that has
zero weights twice on that input at the given thread count: as it is (dense)
and as a sparse layer (:class:`SparseLinear` / :class:`SparseConv1x1`, numba
kernels on the CPU; :class:`TorchCsrLinear`, torch's CSR product, on CUDA). A
layer is replaced only when the sparse one is at least ``min_gain`` times
faster on this machine; every layer's measurement and reason is reported. The
sparse layer's outputs are checked against the dense layer's first.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.speed.sparse_modules import (
    SparseConv1x1,
    SparseKernelError,
    SparseLinear,
    TorchCsrLinear,
)
from core.speed.timing import default_threads, time_call

__all__ = [
    "SparseChoice",
    "SparseConv1x1",
    "SparseKernelError",
    "SparseLinear",
    "SparsifyReport",
    "TorchCsrLinear",
    "sparsify_job",
]

#: Largest |difference| allowed between a sparse layer's output and the dense layer's,
#: relative to the output's largest magnitude (plus the same absolute amount).
TOLERANCE = 1e-4


@dataclass(frozen=True)
class SparseChoice:
    """What :func:`sparsify_job` decided for one layer. ``dense_ms`` / ``sparse_ms`` are the
    measured medians (NaN where the layer was not measured; ``reason`` says why)."""

    name: str
    sparsity: float
    dense_ms: float
    sparse_ms: float
    chosen: bool
    reason: str

    @property
    def gain(self) -> float:
        """Dense time over sparse time (NaN when not measured)."""
        return self.dense_ms / self.sparse_ms if self.sparse_ms > 0 else math.nan


@dataclass(frozen=True, eq=False)
class SparsifyReport:
    """A deep copy of the model with the chosen layers replaced, and every layer's choice."""

    model: nn.Module
    layers: tuple[SparseChoice, ...]

    @property
    def chosen(self) -> tuple[str, ...]:
        """Names of the layers that now run sparse."""
        return tuple(choice.name for choice in self.layers if choice.chosen)


def candidate_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Linear and supported 1x1 Conv2d of ``model`` (first name of shared ones)."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) or SparseConv1x1.supports(module)
    ]


def sparsify_job(
    model: nn.Module,
    example_input: Tensor,
    *,
    threads: int | None = None,
    min_gain: float = 1.1,
    token: CancelToken = NEVER_CANCELLED,
    min_run_time: float = 0.05,
) -> Job[SparsifyReport]:
    """Replace the layers of a copy of ``model`` whose sparse execution is measured at least
    ``min_gain`` times faster than dense on ``example_input`` (see module docstring).

    ``threads``: the thread count both are timed at (default: all cores). The model
    itself is not modified.
    """
    threads = default_threads() if threads is None else threads
    work = copy.deepcopy(model).eval()
    layers = candidate_layers(work)
    yield Progress(0.0, "Capturing layer inputs")
    inputs = _layer_inputs(work, example_input, [m for _, m in layers])
    token.check()
    choices: list[SparseChoice] = []
    replacements: dict[int, nn.Module] = {}
    for i, (name, module) in enumerate(layers):
        token.check()
        yield Progress(i / max(1, len(layers)), f"Timing {name} dense and sparse")
        choice, sparse = _decide(
            name, module, inputs.get(id(module)), threads, min_gain, min_run_time
        )
        choices.append(choice)
        if choice.chosen and sparse is not None:
            replacements[id(module)] = sparse
    _replace(work, replacements)
    yield Progress(1.0, f"{len(replacements)} of {len(layers)} layers run sparse")
    return SparsifyReport(work, tuple(choices))


def _layer_inputs(model: nn.Module, example: Tensor, modules: list[nn.Module]) -> dict[int, Tensor]:
    """The first positional input each of ``modules`` receives when ``model(example)`` runs."""
    seen: dict[int, Tensor] = {}

    def hook(module: nn.Module, args: tuple[object, ...]) -> None:
        if id(module) not in seen and args and isinstance(args[0], Tensor):
            seen[id(module)] = args[0]

    handles = [m.register_forward_pre_hook(hook) for m in modules]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _sparse_twin(module: nn.Module, device: torch.device) -> nn.Module:
    """The sparse counterpart of a Linear / 1x1 conv for inputs on ``device``."""
    if device.type == "cpu":
        if isinstance(module, nn.Linear):
            return SparseLinear.from_linear(module)
        assert isinstance(module, nn.Conv2d)
        return SparseConv1x1.from_conv(module)
    if isinstance(module, nn.Linear):
        return TorchCsrLinear(module)
    raise SparseKernelError(f"no sparse kernel for 1x1 convolutions on {device.type}")


def _decide(
    name: str,
    module: nn.Module,
    x: Tensor | None,
    threads: int,
    min_gain: float,
    min_run_time: float,
) -> tuple[SparseChoice, nn.Module | None]:
    """Measure one layer dense and sparse; the choice and the sparse layer (if any)."""
    weight = module.weight
    assert isinstance(weight, Tensor)
    total = weight.numel()
    sparsity = 1.0 - int(torch.count_nonzero(weight)) / total if total else 0.0

    def skip(reason: str) -> tuple[SparseChoice, None]:
        return SparseChoice(name, sparsity, math.nan, math.nan, False, reason), None

    if weight.dtype != torch.float32:
        return skip(f"kept dense: sparse kernels take float32 weights, this one is {weight.dtype}")
    if x is None:
        return skip("kept dense: the example input does not reach this layer")
    if sparsity == 0.0:
        return skip("kept dense: no zero weights, nothing to skip")
    try:
        sparse = _sparse_twin(module, x.device)
    except SparseKernelError as exc:
        return skip(f"kept dense: {exc}")
    with torch.inference_mode():
        expected = module(x)
        got = sparse(x)
        diff = float((got - expected).abs().max()) if expected.numel() else 0.0
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        if not diff <= TOLERANCE * (1.0 + scale):
            return skip(f"kept dense: the sparse kernel's output differs by {diff:.3g}")
        dense_ms = time_call(lambda: module(x), threads=threads, min_run_time=min_run_time)
        sparse_ms = time_call(lambda: sparse(x), threads=threads, min_run_time=min_run_time)
    gain = dense_ms.median_ms / sparse_ms.median_ms
    chosen = gain >= min_gain
    verdict = (
        f"sparse: {gain:.2f}x faster than dense at {sparsity:.0%} sparsity"
        if chosen
        else f"kept dense: sparse is {gain:.2f}x dense at {sparsity:.0%} sparsity "
        f"(needs {min_gain:.2f}x)"
    )
    choice = SparseChoice(name, sparsity, dense_ms.median_ms, sparse_ms.median_ms, chosen, verdict)
    return choice, sparse if chosen else None


def _paths(model: nn.Module) -> Iterator[tuple[nn.Module, str, nn.Module]]:
    """Every (parent, attribute, child) edge of the module tree, shared children included."""
    for parent in model.modules():
        for attr, child in parent.named_children():
            yield parent, attr, child


def _replace(model: nn.Module, replacements: dict[int, nn.Module]) -> None:
    """Put ``replacements[id(child)]`` in place of every occurrence of ``child``."""
    edges = [(p, a, c) for p, a, c in _paths(model) if id(c) in replacements]
    for parent, attr, child in edges:
        setattr(parent, attr, replacements[id(child)])
