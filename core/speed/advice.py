"""Plain-words warnings before a benchmark or a slim: when will this pattern not be faster?

Zeros in a dense tensor cost exactly what the weights they replace cost. Only
three things turn pruning into speed: sparse kernels (which pay only above a
break-even sparsity that depends on the machine, the layer size and the batch),
physically smaller layers (structured pruning, then Slim) and 2:4 sparse tensor
cores (recent NVIDIA GPUs). :func:`speed_advice` reads the session's masks and
says which of these applies to which layers.

The break-even is measured, never guessed: :func:`measure_breakeven_job` times a
dense ``size x size`` Linear against the same layer at growing sparsity, with
our kernel and with torch's CSR product, and reports the lowest sparsity at
which each wins. Results are cached per process (per batch, size, thread count
and device).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.pruning.session import PruningSession
from core.speed.semi_structured import is_two_four, semi_structured_unavailable
from core.speed.sparse_modules import SparseConv1x1, SparseLinear, TorchCsrLinear
from core.speed.timing import default_threads, time_call

#: Sparsities tried, from the highest down; the lowest that still beats dense is the break-even.
LEVELS = (0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
#: Batch below which 2:4 kernels rarely pay (too little work per weight read).
SEMI_STRUCTURED_MIN_BATCH = 32
#: Channel counts that suit vector units and tensor cores.
CHANNEL_MULTIPLE = 8
#: Fraction of empty rows from which a layer counts as channel-pruned despite other zeros.
CHANNEL_FRACTION = 0.1
#: Timing per measurement of the break-even sweep (seconds).
BREAKEVEN_RUN_TIME = 0.03

_cache: dict[tuple[int, int, int, str], Breakeven] = {}


@dataclass(frozen=True)
class Advice:
    """One piece of advice: ``level`` is "info" or "warning"; ``layers`` names the
    parameters it concerns (empty: the whole model)."""

    level: str
    title: str
    text: str
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Breakeven:
    """The lowest sparsity at which a sparse product beat the dense one on this machine
    (None: not even at 99%), for our kernel and for torch's CSR product."""

    batch_size: int
    ours_sparsity: float | None
    torch_sparsity: float | None
    threads: int
    size: int = 2048
    device: str = "cpu"


def cached_breakeven(
    batch_size: int, *, threads: int | None = None, device: str = "cpu"
) -> Breakeven | None:
    """A break-even measured earlier in this process for this batch, thread count and
    device (any size), or None."""
    threads = default_threads() if threads is None else threads
    for (batch, _size, count, dev), found in _cache.items():
        if (batch, count, dev) == (batch_size, threads, device):
            return found
    return None


def measure_breakeven_job(
    batch_size: int,
    *,
    size: int = 2048,
    threads: int | None = None,
    device: str = "cpu",
    refresh: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[Breakeven]:
    """Measure where sparse products start beating a dense ``size x size`` Linear at
    ``batch_size`` (a second or two on a CPU). Cached per process unless ``refresh``.

    Random weights, a random mask per level (nested: each level prunes more of the
    same ranking); our kernel runs on the CPU only (None elsewhere).
    """
    threads = default_threads() if threads is None else threads
    key = (batch_size, size, threads, device)
    if not refresh and key in _cache:
        yield Progress(1.0, "Break-even already measured")
        return _cache[key]
    gen = torch.Generator().manual_seed(0)
    linear = nn.Linear(size, size).to(device).eval()
    with torch.no_grad():
        linear.weight.copy_(torch.randn(size, size, generator=gen))
    scores = torch.rand(size, size, generator=gen).to(device)
    dense_weight = linear.weight.detach().clone()
    x = torch.randn(batch_size, size, generator=gen).to(device)
    yield Progress(0.0, "Timing the dense layer")
    with torch.inference_mode():
        dense_ms = time_call(lambda: linear(x), threads=threads, min_run_time=BREAKEVEN_RUN_TIME)
    results: dict[str, float | None] = {"ours": None, "torch": None}
    running = {"ours": device == "cpu", "torch": True}
    for i, level in enumerate(LEVELS):
        if not any(running.values()):
            break
        token.check()
        yield Progress((i + 1) / (len(LEVELS) + 1), f"Timing sparse products at {level:.0%}")
        with torch.no_grad():
            linear.weight.copy_(dense_weight * (scores >= level))
        for kind in ("ours", "torch"):
            if not running[kind]:
                continue
            sparse_ms = _time_sparse(kind, linear, x, threads)
            if sparse_ms < dense_ms.median_ms:
                results[kind] = level
            else:
                running[kind] = False  # lower sparsity only gets slower
    found = Breakeven(batch_size, results["ours"], results["torch"], threads, size, device)
    _cache[key] = found
    yield Progress(1.0, "Break-even measured")
    return found


def _time_sparse(kind: str, linear: nn.Linear, x: torch.Tensor, threads: int) -> float:
    """Median ms of our kernel or torch's CSR product on ``linear``'s current weights."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)
        layer: nn.Module = (
            SparseLinear.from_linear(linear) if kind == "ours" else TorchCsrLinear(linear)
        )
    with torch.inference_mode():
        return time_call(
            lambda: layer(x), threads=threads, min_run_time=BREAKEVEN_RUN_TIME
        ).median_ms


@dataclass(frozen=True)
class _LayerPattern:
    """What a prunable weight's mask looks like: its rows (outputs) and columns (inputs)."""

    name: str
    module: nn.Module
    sparsity: float
    rows: int
    kept_rows: int
    two_four: bool
    cols: int = 0
    kept_cols: int = 0
    kept: int = 0
    per_cell: int = 1  # entries per (row, column) pair: a conv kernel's size

    @property
    def channel_pruned(self) -> bool:
        """Whether whole channels were pruned on purpose: all of the sparsity is in whole rows
        or columns (a group prune also empties the next layer's input columns), or at least
        :data:`CHANNEL_FRACTION` of the rows are empty (a few rows emptied by chance under
        unstructured pruning do not count)."""
        empty_rows = self.rows - self.kept_rows
        empty_cols = self.cols - self.kept_cols
        if empty_rows == 0 and empty_cols == 0:
            return False
        return self.unstructured == 0 or empty_rows >= CHANNEL_FRACTION * self.rows

    @property
    def unstructured(self) -> float:
        """Sparsity inside the kept rows and columns (what only sparse kernels could skip)."""
        inner = self.kept_rows * max(self.kept_cols, 1) * self.per_cell
        if inner == 0:
            return 0.0
        return max(0.0, 1.0 - self.kept / inner)


def _patterns(session: PruningSession) -> list[_LayerPattern]:
    modules = dict(session.model.named_modules())
    found = []
    for name in session.weight_names:
        info = session.info(name)
        module = modules.get(info.module_name)
        if module is None or not name.endswith("weight") or len(info.shape) < 2:
            continue
        mask = session.mask(name)
        rows = mask.reshape(mask.shape[0], -1)
        kept_rows = int(rows.any(dim=1).sum())
        cells = mask.reshape(mask.shape[0], mask.shape[1], -1)
        kept_cols = int(cells.any(dim=2).any(dim=0).sum())
        flat = mask if mask.dim() == 2 else rows
        found.append(
            _LayerPattern(
                name,
                module,
                session.sparsity(name),
                mask.shape[0],
                kept_rows,
                is_two_four(flat, strict=True) if isinstance(module, nn.Linear) else False,
                cols=mask.shape[1],
                kept_cols=kept_cols,
                kept=int(mask.sum()),
                per_cell=cells.shape[2],
            )
        )
    return found


def _listed(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def speed_advice(
    session: PruningSession,
    *,
    device: str = "cpu",
    batch_size: int = 1,
    breakeven: Breakeven | None = None,
) -> list[Advice]:
    """Warnings (and a few notes) on whether the session's pruning can make inference faster
    on ``device`` at ``batch_size``.

    ``breakeven``: a measured break-even; by default one cached in this process, else it
    is measured now (a second or two: run :func:`measure_breakeven_job` in a worker first
    to keep a window responsive).
    """
    patterns = [p for p in _patterns(session) if p.sparsity > 0]
    if not patterns:
        return [
            Advice(
                "info",
                "Nothing is pruned",
                "Every form runs the same work: prune first to see a difference.",
            )
        ]
    advice: list[Advice] = []
    advice += _unstructured_advice(patterns, device, batch_size, breakeven)
    advice += _channel_advice(patterns)
    advice += _two_four_advice(patterns, device, batch_size)
    return advice


def _unstructured_advice(
    patterns: list[_LayerPattern], device: str, batch_size: int, breakeven: Breakeven | None
) -> list[Advice]:
    loose = [p for p in patterns if p.unstructured > 0 and not p.two_four]
    if not loose:
        return []
    advice = []
    no_kernel = [
        p.name
        for p in loose
        if not isinstance(p.module, nn.Linear) and not SparseConv1x1.supports(p.module)
    ]
    if no_kernel:
        advice.append(
            Advice(
                "warning",
                "Zeros in these convolutions cost as much as weights",
                f"{_listed(no_kernel)}: no sparse kernel runs k x k convolutions here, so their "
                "unstructured zeros are multiplied like any other weight. Prune whole channels "
                "(structured) and Slim to make them faster.",
                tuple(no_kernel),
            )
        )
    sparse_able = [p for p in loose if p.name not in no_kernel]
    if not sparse_able:
        return advice
    if breakeven is None:
        breakeven = cached_breakeven(batch_size, device=device) or run_job(
            measure_breakeven_job(batch_size, device=device)
        )
    level = breakeven.ours_sparsity if device == "cpu" else breakeven.torch_sparsity
    where = (
        f"measured on this {device.upper() if device == 'cpu' else device} at batch "
        f"{batch_size} with {breakeven.threads} thread{'s' if breakeven.threads > 1 else ''} on a "
        f"{breakeven.size}² layer; smaller layers need more"
    )
    below = [p.name for p in sparse_able if level is None or p.sparsity < level]
    if below:
        limit = "no sparsity up to 99%" if level is None else f"{level:.0%}"
        advice.append(
            Advice(
                "warning",
                "Unstructured sparsity below the break-even",
                f"{_listed(below)}: sparse kernels beat the dense product only from {limit} "
                f"sparsity ({where}). Below that, masked zeros cost the same as weights and "
                "sparse execution is slower; only a physically smaller model (structured pruning, "
                "then Slim) gets faster.",
                tuple(below),
            )
        )
    above = [p.name for p in sparse_able if p.name not in below]
    if above:
        advice.append(
            Advice(
                "info",
                "Sparse kernels may pay",
                f"{_listed(above)}: sparse enough to beat the dense product ({where}); the "
                "benchmark's sparse form uses them where each layer measures faster.",
                tuple(above),
            )
        )
    return advice


def _channel_advice(patterns: list[_LayerPattern]) -> list[Advice]:
    odd = [
        p
        for p in patterns
        if p.channel_pruned and p.kept_rows < p.rows and p.kept_rows % CHANNEL_MULTIPLE
    ]
    if not odd:
        return []
    counts = [f"{p.name} keeps {p.kept_rows}" for p in odd]
    return [
        Advice(
            "warning",
            f"Channel counts not a multiple of {CHANNEL_MULTIPLE}",
            f"{_listed(counts)} output channels. Vector units and GPU tensor cores work in "
            f"groups of {CHANNEL_MULTIPLE}; a slimmed layer with an odd count wastes part of "
            "each group and can be slower than one with a few more channels. Round to a "
            "multiple of "
            f"{CHANNEL_MULTIPLE}.",
            tuple(p.name for p in odd),
        )
    ]


def _two_four_advice(patterns: list[_LayerPattern], device: str, batch_size: int) -> list[Advice]:
    layers = tuple(p.name for p in patterns if p.two_four)
    if not layers:
        return []
    reason = semi_structured_unavailable(device)
    if reason is not None:
        return [
            Advice(
                "warning",
                "2:4 sparsity without a capable GPU",
                f"{_listed(list(layers))} follow the 2:4 pattern, but {reason}. It will not be "
                "faster here than the dense model.",
                layers,
            )
        ]
    if batch_size < SEMI_STRUCTURED_MIN_BATCH:
        return [
            Advice(
                "warning",
                "2:4 sparsity at a small batch",
                f"At batch {batch_size} the 2:4 kernels have too little work per weight to gain "
                f"much; they pay from batches of about {SEMI_STRUCTURED_MIN_BATCH} and up.",
                layers,
            )
        ]
    return []


def clear_breakeven_cache() -> None:
    """Forget measured break-evens (e.g. after changing the machine's load or threads)."""
    _cache.clear()


__all__ = [
    "Advice",
    "Breakeven",
    "cached_breakeven",
    "clear_breakeven_cache",
    "measure_breakeven_job",
    "speed_advice",
]
