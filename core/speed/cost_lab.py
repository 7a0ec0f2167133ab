"""The cost lab: what pruning a layer does to its speed, measured, for teaching.

For square Linear layers of a few sizes and a few pruning ratios, with
unstructured (single weights) and structured (whole output neurons) pruning,
:func:`cost_lab_job` lists the non-zeros and the FLOPs left, and measures the
latency of the layer four ways: dense (nothing pruned), masked (pruned weights
are zeros in the dense tensor), sparse kernel (only kept weights stored and
multiplied) and, for structured pruning, physically smaller (a Linear with
fewer outputs). :func:`speed_test_job` is the one-click version for one case
(batch 100, 1000 x 1000, 80%), with torch's CSR product too and the lesson
in plain words, written from the measured numbers.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.speed.sparse_modules import SparseLinear, TorchCsrLinear
from core.speed.timing import default_threads, time_call

KINDS = ("unstructured", "structured")


@dataclass(frozen=True)
class CostRow:
    """One layer size, ratio and kind. ``flops``: 2 x non-zeros x batch, the work a form that
    skips zeros does (dense: 2 x size² x batch). Times are medians in ms; ``sparse_ms`` is
    None at ratio 0 and ``small_ms`` for unstructured pruning (no smaller layer exists)."""

    size: int
    ratio: float
    kind: str
    nonzeros: int
    flops: int
    dense_ms: float
    masked_ms: float
    sparse_ms: float | None
    small_ms: float | None


@dataclass(frozen=True)
class SpeedTest:
    """The speed test's measured medians (ms) and what they show, in words."""

    batch_size: int
    size: int
    ratio: float
    dense_ms: float
    masked_ms: float
    sparse_ms: float
    small_ms: float
    torch_csr_ms: float
    explanation: str


@dataclass(frozen=True, eq=False)
class _Layers:
    """One pruned layer in every form, and its input."""

    dense: nn.Linear
    masked: nn.Linear
    small: nn.Linear | None
    x: Tensor

    @property
    def nonzeros(self) -> int:
        return int(torch.count_nonzero(self.masked.weight))


def _layers(size: int, ratio: float, kind: str, batch_size: int, seed: int = 0) -> _Layers:
    """A seeded ``size x size`` Linear pruned at ``ratio``: smallest-magnitude weights
    (unstructured) or output neurons with the smallest L2 norm (structured)."""
    gen = torch.Generator().manual_seed(seed)
    dense = nn.Linear(size, size).eval()
    with torch.no_grad():
        bound = 1.0 / size**0.5
        dense.weight.copy_((torch.rand(size, size, generator=gen) * 2 - 1) * bound)
        dense.bias.copy_((torch.rand(size, generator=gen) * 2 - 1) * bound)
    x = torch.randn(batch_size, size, generator=gen)
    masked = nn.Linear(size, size).eval()
    masked.load_state_dict(dense.state_dict())
    weight = dense.weight.detach()
    pruned = round(ratio * (size * size if kind == "unstructured" else size))
    small = None
    with torch.no_grad():
        if kind == "unstructured":
            if pruned:
                order = weight.abs().reshape(-1).argsort()[:pruned]
                masked.weight.view(-1)[order] = 0.0
        else:
            keep = weight.norm(dim=1).argsort(descending=True)[: size - pruned].sort().values
            drop = torch.ones(size, dtype=torch.bool)
            drop[keep] = False
            masked.weight[drop] = 0.0
            small = nn.Linear(size, len(keep), bias=True).eval()
            small.weight.copy_(weight[keep])
            small.bias.copy_(dense.bias.detach()[keep])
    return _Layers(dense, masked, small, x)


def _ms(layer: nn.Module, x: Tensor, threads: int, min_run_time: float) -> float:
    with torch.inference_mode():
        return time_call(lambda: layer(x), threads=threads, min_run_time=min_run_time).median_ms


def cost_lab_job(
    sizes: tuple[int, ...] = (100, 500, 1000),
    ratios: tuple[float, ...] = (0.0, 0.2, 0.5, 0.8, 0.9),
    *,
    batch_size: int = 100,
    threads: int | None = None,
    min_run_time: float = 0.05,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[tuple[CostRow, ...]]:
    """Measure every size x ratio x kind (see module docstring); ``Progress.detail`` carries
    each :class:`CostRow` as soon as it is measured."""
    threads = default_threads() if threads is None else threads
    rows: list[CostRow] = []
    total = len(sizes) * len(ratios) * len(KINDS)
    for size in sizes:
        dense_ms: float | None = None
        for ratio in ratios:
            for kind in KINDS:
                token.check()
                yield Progress(len(rows) / total, f"{size}² at {ratio:.0%} {kind}")
                layers = _layers(size, ratio, kind, batch_size)
                if dense_ms is None:
                    dense_ms = _ms(layers.dense, layers.x, threads, min_run_time)
                nonzeros = layers.nonzeros
                sparse_ms = None
                if ratio > 0:
                    sparse = SparseLinear.from_linear(layers.masked)
                    sparse_ms = _ms(sparse, layers.x, threads, min_run_time)
                row = CostRow(
                    size=size,
                    ratio=ratio,
                    kind=kind,
                    nonzeros=nonzeros,
                    flops=2 * nonzeros * batch_size,
                    dense_ms=dense_ms,
                    masked_ms=_ms(layers.masked, layers.x, threads, min_run_time),
                    sparse_ms=sparse_ms,
                    small_ms=(
                        None
                        if layers.small is None
                        else _ms(layers.small, layers.x, threads, min_run_time)
                    ),
                )
                rows.append(row)
                yield Progress(len(rows) / total, f"{size}² at {ratio:.0%} {kind} measured", row)
    return tuple(rows)


def speed_test_job(
    *,
    batch_size: int = 100,
    size: int = 1000,
    ratio: float = 0.8,
    threads: int | None = None,
    token: CancelToken = NEVER_CANCELLED,
    min_run_time: float = 0.2,
) -> Job[SpeedTest]:
    """The one-click speed test: one ``size x size`` Linear at ``batch_size``, pruned
    ``ratio`` unstructured (masked, our sparse kernel, torch's CSR) and structured (a
    physically smaller layer), each timed against the dense layer; with an explanation."""
    threads = default_threads() if threads is None else threads
    loose = _layers(size, ratio, "unstructured", batch_size)
    rows = _layers(size, ratio, "structured", batch_size)
    assert rows.small is not None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        torch_csr = TorchCsrLinear(loose.masked)
    forms: list[tuple[str, nn.Module, Tensor]] = [
        ("dense", loose.dense, loose.x),
        ("masked", loose.masked, loose.x),
        ("sparse", SparseLinear.from_linear(loose.masked), loose.x),
        ("torch CSR", torch_csr, loose.x),
        ("smaller layer", rows.small, rows.x),
    ]
    times: dict[str, float] = {}
    for i, (name, layer, x) in enumerate(forms):
        token.check()
        yield Progress(i / len(forms), f"Timing the {name} layer")
        times[name] = _ms(layer, x, threads, min_run_time)
    yield Progress(1.0, "Speed test measured")
    test = SpeedTest(
        batch_size=batch_size,
        size=size,
        ratio=ratio,
        dense_ms=times["dense"],
        masked_ms=times["masked"],
        sparse_ms=times["sparse"],
        small_ms=times["smaller layer"],
        torch_csr_ms=times["torch CSR"],
        explanation="",
    )
    return _explained(test, rows.small.out_features, threads)


def _speed_word(ratio: float) -> str:
    """'1.8x faster' / '1.3x slower' / 'as fast' for dense time / form time."""
    if 0.9 <= ratio <= 1.1:
        return f"about as fast ({ratio:.2f}x)"
    return f"{ratio:.1f}x faster" if ratio > 1 else f"{1 / ratio:.1f}x slower"


def _explained(test: SpeedTest, kept_rows: int, threads: int) -> SpeedTest:
    """``test`` with its explanation written from its own numbers."""
    dense = test.dense_ms
    kept = 1.0 - test.ratio
    masked, sparse, small = (dense / t for t in (test.masked_ms, test.sparse_ms, test.small_ms))
    csr = dense / test.torch_csr_ms
    lines = [
        f"A {test.size} x {test.size} Linear layer at batch {test.batch_size}, {test.ratio:.0%} "
        f"pruned, {threads} thread{'s' if threads > 1 else ''}; dense: {dense:.3f} ms.",
        f"Masked (zeros in the dense tensor): {_speed_word(masked)}. Zeros cost the same as "
        "any other weight: the dense product multiplies them all.",
        f"Sparse kernel (only the {kept:.0%} kept weights stored and multiplied): "
        f"{_speed_word(sparse)}; torch's CSR product: {_speed_word(csr)}. Skipping zeros costs "
        "an index per weight and scattered reads of the input, so sparse kernels pay only at "
        "high sparsity (see the cost lab for where they start winning).",
        f"Physically smaller layer ({kept_rows} of {test.size} neurons kept, structured "
        f"pruning then slim): {_speed_word(small)}. A dense product on a smaller matrix is "
        f"faster in proportion to the work removed (ideal: {1 / kept:.1f}x).",
    ]
    return dataclasses.replace(test, explanation="\n".join(lines))
