"""Statistics of a pruned model: counts, sparsity, structure, FLOPs, bytes.

Sparsity comes from the masks; exact zeros in the values are counted
separately (a weight can be zero without being pruned). Structured sparsity
counts fully pruned rows (dim 0: output channels/neurons), columns (dim 1:
input channels) and, for convolutions, fully pruned kernels, as Distiller's
summary does. FLOPs use ``torch.utils.flop_counter``'s formulas (2 per
multiply-add) for the session's example input; a layer's effective FLOPs are
its dense FLOPs times the fraction of its weights kept (what a sparse kernel
would execute). Layers the counter has no formula for (recurrent layers,
attention's fused internals, any other module with weights of its own that is
not a Linear, a convolution, a normalization or an embedding) are listed in
:attr:`ModelStats.not_counted` rather than silently left out. Sizes: dense =
every parameter and buffer at its dtype; sparse = kept values plus a
1-bit-per-weight mask for pruned layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd
from torch.utils.flop_counter import conv_flop_count, mm_flop

from core.common.chunks import chunk_ranges, chunk_size
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.common.tensors import flat_numpy
from core.pruning.session import PruningSession


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one prunable parameter."""

    name: str
    module_type: str
    shape: tuple[int, ...]
    params: int
    kept: int
    zeros: int  # exact zeros in the current values, pruned or not
    rows: int
    zero_rows: int
    cols: int
    zero_cols: int
    kernels: int
    zero_kernels: int
    flops_dense: int | None
    flops_effective: int | None
    bytes_dense: int
    bytes_sparse: int

    @property
    def pruned(self) -> int:
        """Entries pruned by the mask."""
        return self.params - self.kept

    @property
    def sparsity(self) -> float:
        """Fraction pruned (from the mask)."""
        return self.pruned / self.params if self.params else 0.0

    @property
    def nonzeros(self) -> int:
        """Entries whose current value is not exactly zero."""
        return self.params - self.zeros

    @property
    def row_sparsity(self) -> float:
        """Fraction of fully pruned rows / output channels."""
        return self.zero_rows / self.rows if self.rows else 0.0

    @property
    def col_sparsity(self) -> float:
        """Fraction of fully pruned columns / input channels."""
        return self.zero_cols / self.cols if self.cols else 0.0


@dataclass(frozen=True)
class UncountedLayer:
    """A module that ran in the FLOP-counting pass but whose FLOPs are not counted."""

    name: str  # qualified module name
    module_type: str  # e.g. "LSTM", "MultiheadAttention"


#: Modules with weights whose FLOPs are negligible or nil (lookups, normalizations):
#: leaving them out of the count is not worth a warning.
NEGLIGIBLE_FLOPS: tuple[type[nn.Module], ...] = (
    nn.Embedding,
    nn.EmbeddingBag,
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.PReLU,
)


@dataclass(frozen=True)
class FlopCount:
    """Dense FLOPs per Linear/Conv module (``""``: the total) and what was not counted."""

    per_module: dict[str, int]
    not_counted: tuple[UncountedLayer, ...]


@dataclass(frozen=True)
class ModelStats:
    """Whole-model statistics plus one :class:`LayerStats` per prunable parameter."""

    layers: tuple[LayerStats, ...]
    total_params: int  # every parameter of the model, prunable or not
    bytes_dense: int
    bytes_sparse: int
    flops_dense: int | None
    flops_effective: int | None
    #: Modules whose FLOPs the counter does not know (empty without an example input).
    not_counted: tuple[UncountedLayer, ...] = ()

    @property
    def prunable_params(self) -> int:
        """Entries of the prunable parameters."""
        return sum(layer.params for layer in self.layers)

    @property
    def pruned(self) -> int:
        """Entries pruned by the masks."""
        return sum(layer.pruned for layer in self.layers)

    @property
    def nonzeros(self) -> int:
        """Parameters whose value is not exactly zero (prunable ones counted exactly,
        the rest assumed non-zero)."""
        return self.total_params - sum(layer.zeros for layer in self.layers)

    @property
    def sparsity(self) -> float:
        """Pruned fraction of the prunable parameters."""
        return self.pruned / self.prunable_params if self.prunable_params else 0.0

    @property
    def model_sparsity(self) -> float:
        """Pruned fraction of all parameters."""
        return self.pruned / self.total_params if self.total_params else 0.0

    @property
    def compression(self) -> float:
        """Dense bytes over sparse bytes (e.g. 7.6 for 7.6x)."""
        return self.bytes_dense / self.bytes_sparse if self.bytes_sparse else math.inf


def layer_flops(session: PruningSession) -> dict[str, int] | None:
    """Dense FLOPs of each Linear/Conv module (see :func:`count_flops`); None without input."""
    counted = count_flops(session)
    return None if counted is None else counted.per_module


def count_flops(session: PruningSession) -> FlopCount | None:
    """Dense FLOPs of each Linear/Conv module (by qualified name) for the example input.

    One forward pass with hooks that apply ``torch.utils.flop_counter``'s own
    formulas (2 per multiply-add; ``conv_flop_count``, ``mm_flop``) to the
    shapes each layer sees. ``FlopCounterMode`` itself is not used: entering it
    imports torch._dynamo (1.2 s, and crashes PySide6's import hook when it
    happens in a worker thread). The key ``""`` holds the model total; matmuls
    outside Linear/Conv layers are not counted: the modules with weights that
    ran and have no formula are returned as ``not_counted`` (with their
    Linear/Conv children that their own forward bypasses, such as attention's
    ``out_proj``, left out of the per-module figures).
    """
    if session.example_input is None:
        return None
    flops: dict[str, int] = {}
    ran: set[str] = set()

    def count(
        name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ) -> None:
        x = inputs[0]
        if isinstance(module, nn.Linear):
            # Every dimension but the last is a row; not numel // in_features, which
            # divides by zero for a Linear(0, n).
            rows = math.prod(x.shape[:-1])
            value = mm_flop([rows, module.in_features], [module.in_features, module.out_features])
        else:
            assert isinstance(module, _ConvNd)
            transposed = isinstance(module, _ConvTransposeNd)
            batched = x if x.dim() == module.weight.dim() else x.unsqueeze(0)
            out = output if output.dim() == module.weight.dim() else output.unsqueeze(0)
            value = conv_flop_count(
                list(batched.shape), list(module.weight.shape), list(out.shape), transposed
            )
        flops[name] = flops.get(name, 0) + int(value)

    handles = [
        module.register_forward_hook(lambda m, i, o, name=name: count(name, m, i, o))
        for name, module in session.model.named_modules()
        if isinstance(module, nn.Linear | _ConvNd)
    ]
    handles += [
        module.register_forward_hook(lambda _m, _i, _o, name=name: ran.add(name))
        for name, module in session.model.named_modules()
        if name and _has_no_formula(module)  # the root's own tensors: tokens, positions
    ]
    model = session.model
    training = [(module, module.training) for module in model.modules()]
    try:
        # Counting must not change the model: eval mode keeps batch-norm statistics as they are.
        model.eval()
        with torch.no_grad():
            model(session.example_input)
    finally:
        for module, mode in training:
            module.training = mode
        for handle in handles:
            handle.remove()
    flops[""] = sum(flops.values())
    not_counted = tuple(
        UncountedLayer(name, type(module).__name__)
        for name, module in session.model.named_modules()
        if name in ran
    )
    return FlopCount(flops, not_counted)


def _has_no_formula(module: nn.Module) -> bool:
    """Whether ``module`` multiplies by weights of its own that no FLOP formula here covers."""
    if isinstance(module, nn.RNNBase | nn.RNNCellBase | nn.MultiheadAttention):
        return True
    if isinstance(module, (nn.Linear, _ConvNd, *NEGLIGIBLE_FLOPS)):
        return False
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


def stats_job(session: PruningSession, token: CancelToken = NEVER_CANCELLED) -> Job[ModelStats]:
    """A job computing :class:`ModelStats` for the session's current state."""
    counted = count_flops(session)
    flops = None if counted is None else counted.per_module
    uncounted = () if counted is None else counted.not_counted
    inside = tuple(f"{layer.name}." for layer in uncounted)
    layers: list[LayerStats] = []
    for i, name in enumerate(session.names):
        token.check()
        # A Linear inside an uncounted module (attention's out_proj) has no figure of its own.
        hidden = flops is not None and name.startswith(inside)
        layers.append(_layer_stats(session, name, None if hidden else flops))
        yield Progress((i + 1) / len(session.names), f"measured {name}")
    model = session.model
    tensors = [*model.parameters(), *model.buffers()]
    bytes_dense = sum(t.numel() * t.element_size() for t in tensors)
    bytes_sparse = bytes_dense - sum(layer.bytes_dense - layer.bytes_sparse for layer in layers)
    flops_dense = flops_effective = None
    if flops is not None:
        flops_dense = flops.get("", 0)
        saved = sum(
            layer.flops_dense - layer.flops_effective
            for layer in layers
            if layer.flops_dense is not None and layer.flops_effective is not None
        )
        flops_effective = flops_dense - saved
    return ModelStats(
        layers=tuple(layers),
        total_params=sum(p.numel() for p in model.parameters()),
        bytes_dense=bytes_dense,
        bytes_sparse=bytes_sparse,
        flops_dense=flops_dense,
        flops_effective=flops_effective,
        not_counted=uncounted,
    )


def _layer_stats(session: PruningSession, name: str, flops: dict[str, int] | None) -> LayerStats:
    info = session.info(name)
    packed = session.packed_mask(name)
    weights = session.effective(name)
    numel = weights.numel()
    kept = numel if packed is None else packed.kept
    itemsize = weights.element_size()
    shape = info.shape
    rows = shape[0] if shape else 0
    cols = shape[1] if len(shape) >= 2 else 0
    kernels = rows * cols if len(shape) >= 3 else 0
    zero_rows = zero_cols = zero_kernels = 0
    if packed is not None and len(shape) >= 2:
        mask = torch.from_numpy(packed.to_numpy())
        zero_rows = int((~mask.reshape(rows, -1).any(dim=1)).sum())
        zero_cols = int((~mask.transpose(0, 1).reshape(cols, -1).any(dim=1)).sum())
        if kernels:
            zero_kernels = int((~mask.reshape(rows, cols, -1).any(dim=2)).sum())
    flops_dense = flops_effective = None
    if flops is not None:
        modules = [info.module_name, *(alias.rpartition(".")[0] for alias in info.aliases)]
        flops_dense = sum(flops.get(module, 0) for module in modules)
        flops_effective = round(flops_dense * kept / numel) if numel else 0
    bytes_dense = numel * itemsize
    bytes_sparse = bytes_dense if packed is None else kept * itemsize + packed.nbytes
    return LayerStats(
        name=name,
        module_type=info.module_type,
        shape=shape,
        params=numel,
        kept=kept,
        zeros=_count_zeros(weights),
        rows=rows,
        zero_rows=zero_rows,
        cols=cols,
        zero_cols=zero_cols,
        kernels=kernels,
        zero_kernels=zero_kernels,
        flops_dense=flops_dense,
        flops_effective=flops_effective,
        bytes_dense=bytes_dense,
        bytes_sparse=bytes_sparse,
    )


def _count_zeros(weights: torch.Tensor) -> int:
    """Exact zeros (+0.0 and -0.0) in ``weights``, chunked.

    ``np.count_nonzero`` on float arrays holds the GIL for the whole call (a
    GUI thread would stall); comparing into a bool buffer releases it, and
    counting bools is fast.
    """
    if weights.device.type != "cpu" or not weights.is_contiguous():
        return int(weights.numel() - torch.count_nonzero(weights))
    flat = flat_numpy(weights)
    if weights.dtype == torch.bfloat16:
        flat = flat.view(np.uint16)  # +0.0 and -0.0 are 0x0000 and 0x8000
    buffer = np.empty(min(chunk_size(), flat.size), dtype=bool)
    zeros = 0
    for start, stop in chunk_ranges(flat.size):
        chunk = flat[start:stop]
        hits = buffer[: chunk.size]
        if weights.dtype == torch.bfloat16:
            np.equal(np.bitwise_and(chunk, 0x7FFF), 0, out=hits)
        else:
            np.equal(chunk, 0, out=hits)
        zeros += int(np.count_nonzero(hits))
    return zeros
