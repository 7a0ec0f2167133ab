"""Real speed: inference benchmarks, sparse execution, speed advice, the cost lab.

Pruning makes a model smaller on paper; whether it runs faster depends on how
the pruned model is executed. This package measures it:

* :mod:`~core.speed.timing`: how every figure is measured (``torch.utils.benchmark``,
  warm-up, adaptive repeats, median and IQR, one thread count for all);
* :mod:`~core.speed.sparse_kernels` / :mod:`~core.speed.sparse_modules`: CSR weights and
  numba kernels that multiply only the kept weights (:class:`SparseLinear`,
  :class:`SparseConv1x1`), and torch's CSR product (:class:`TorchCsrLinear`);
* :mod:`~core.speed.sparse_linear`: :func:`sparsify_job`, which swaps in a sparse layer
  only where it measured faster on this machine;
* :mod:`~core.speed.benchmark`: :func:`benchmark_job`, the model as dense, masked,
  sparse, slimmed and 2:4 side by side, outputs checked before anything is timed;
* :mod:`~core.speed.advice`: plain-words warnings when a pattern cannot be faster,
  from a measured sparse break-even;
* :mod:`~core.speed.cost_lab`: layer sizes x ratios, measured, and the one-click speed test.

numba is imported (and the kernels compiled) on the first sparse call, not here.
"""

from core.speed.advice import (
    Advice,
    Breakeven,
    cached_breakeven,
    clear_breakeven_cache,
    measure_breakeven_job,
    speed_advice,
)
from core.speed.benchmark import (
    FORMS,
    BenchmarkConfig,
    BenchmarkError,
    BenchmarkReport,
    FormResult,
    benchmark_job,
)
from core.speed.cost_lab import CostRow, SpeedTest, cost_lab_job, speed_test_job
from core.speed.sparse_linear import SparseChoice, SparsifyReport, sparsify_job
from core.speed.sparse_modules import (
    SparseConv1x1,
    SparseKernelError,
    SparseLinear,
    TorchCsrLinear,
)
from core.speed.timing import METHOD_TEXT, Timing, default_threads, time_call

__all__ = [
    "FORMS",
    "METHOD_TEXT",
    "Advice",
    "BenchmarkConfig",
    "BenchmarkError",
    "BenchmarkReport",
    "Breakeven",
    "CostRow",
    "FormResult",
    "SparseChoice",
    "SparseConv1x1",
    "SparseKernelError",
    "SparseLinear",
    "SparsifyReport",
    "SpeedTest",
    "Timing",
    "TorchCsrLinear",
    "benchmark_job",
    "cached_breakeven",
    "clear_breakeven_cache",
    "cost_lab_job",
    "default_threads",
    "measure_breakeven_job",
    "sparsify_job",
    "speed_advice",
    "speed_test_job",
    "time_call",
]
