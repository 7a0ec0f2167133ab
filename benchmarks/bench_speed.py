"""Real speed: our sparse kernels against the dense product and torch's CSR, in one run.

Prints one JSON line per case (and per batch where a case sweeps batches):

* ``linear4096_sparse95``: a 4096 x 4096 Linear (torch's default init, seed 0)
  with 95% of its weights zeroed by a random mask, at ``--batch`` (default 1):
  ``dense_ms`` (the masked layer, dense), ``ours_ms`` (SparseLinear, numba CSR),
  ``torch_csr_ms`` (torch's CSR product), ``ratio`` = ours / dense (goal: <= 0.3
  at batch 1), ``max_abs_diff`` of ours against the masked layer (goal: <= 1e-4),
  ``threads``. On ``--device cuda`` the dense and CSR products run on the GPU and
  ours is null (a CPU kernel).
* ``sparse_breakeven``: the lowest sparsity at which ours / torch's CSR beat the
  dense 2048 x 2048 product, at batch 1 and 16 (null: not even at 99%).
* ``resnet18_slim50``: the hand-built ResNet-18 with 50% of the channels of every
  dependency group pruned by L2 norm and slimmed, batch 16, 3x64x64
  (``benchmarks/_slim_case.py``): ``ratio`` = ours / dense (goal <= 0.33 and <=
  ``tp_ratio`` + 0.02), ``tp_ratio`` = torch-pruning's MagnitudePruner, same run.
* ``linear4096_semi24`` (``--device cuda`` only): a 2:4-pruned 4096 x 4096 Linear as
  a semi-structured tensor against dense, at batch 1, 16 and 64.

Every time is the median of ``torch.utils.benchmark``'s adaptive measurement, all
forms at the same thread count (``--threads``, default 1; ``all`` for every core).

    python benchmarks/bench_speed.py                        # every case, 1 thread
    python benchmarks/bench_speed.py --threads all --case linear4096_sparse95
    python benchmarks/bench_speed.py --device cuda

A case is a function taking the parsed arguments and returning its JSON rows;
register another with one line in ``CASES``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.common.jobs import run_job  # noqa: E402
from core.speed import sparse_kernels  # noqa: E402
from core.speed.advice import measure_breakeven_job  # noqa: E402
from core.speed.sparse_modules import SparseLinear, TorchCsrLinear  # noqa: E402
from core.speed.timing import default_threads, time_call  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _slim_case import resnet18_slim50  # noqa: E402

Row = dict[str, Any]
WIDTH = 4096

warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta", UserWarning)


def _masked_linear(sparsity: float, device: str) -> nn.Linear:
    """A seeded 4096² Linear with ``sparsity`` of its weights zeroed by a random mask."""
    torch.manual_seed(0)
    layer = nn.Linear(WIDTH, WIDTH).eval()
    with torch.no_grad():
        layer.weight.mul_(torch.rand(WIDTH, WIDTH) >= sparsity)
    return layer.to(device)


def _ms(layer: nn.Module, x: torch.Tensor, args: argparse.Namespace) -> float:
    with torch.inference_mode():
        return time_call(
            lambda: layer(x), threads=args.threads, min_run_time=args.min_run_time
        ).median_ms


def linear4096_sparse95(args: argparse.Namespace) -> list[Row]:
    """Our CSR kernel vs the dense product vs torch's CSR at 95% unstructured sparsity."""
    device = args.device
    layer = _masked_linear(0.95, device)
    x = torch.randn(args.batch, WIDTH, generator=torch.Generator().manual_seed(1)).to(device)
    dense_ms = _ms(layer, x, args)
    torch_csr_ms = _ms(TorchCsrLinear(layer), x, args)
    ours_ms = diff = None
    if device == "cpu":
        ours = SparseLinear.from_linear(layer)
        with torch.inference_mode():
            diff = float((ours(x) - layer(x)).abs().max())
        ours_ms = _ms(ours, x, args)
    return [
        {
            "case": "linear4096_sparse95",
            "device": device,
            "batch": args.batch,
            "dense_ms": round(dense_ms, 4),
            "ours_ms": None if ours_ms is None else round(ours_ms, 4),
            "ratio": None if ours_ms is None else round(ours_ms / dense_ms, 3),
            "max_abs_diff": diff,
            "torch_csr_ms": round(torch_csr_ms, 4),
            "torch_csr_ratio": round(torch_csr_ms / dense_ms, 3),
            "threads": args.threads,
        }
    ]


def sparse_breakeven(args: argparse.Namespace) -> list[Row]:
    """Where sparse products start beating dense (2048², batch 1 and 16)."""
    rows = []
    for batch in (1, 16):
        found = run_job(measure_breakeven_job(batch, threads=args.threads, device=args.device))
        rows.append(
            {
                "case": "sparse_breakeven",
                "device": args.device,
                "batch": batch,
                "ours_sparsity": found.ours_sparsity,
                "torch_sparsity": found.torch_sparsity,
                "size": found.size,
                "threads": found.threads,
            }
        )
    return rows


def linear4096_semi24(args: argparse.Namespace) -> list[Row]:
    """2:4 semi-structured vs dense on a capable GPU (a line saying why not elsewhere)."""
    from core.speed.semi_structured import semi_structured_unavailable, to_semi_structured

    reason = semi_structured_unavailable(args.device)
    if reason is not None:
        return [{"case": "linear4096_semi24", "skipped": reason}]
    torch.manual_seed(0)
    dense = nn.Linear(WIDTH, WIDTH).eval()
    with torch.no_grad():  # keep the 2 largest of every 4 inputs
        groups = dense.weight.reshape(WIDTH, -1, 4)
        keep = groups.abs().argsort(dim=-1, descending=True)[..., :2]
        mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
        dense.weight.mul_(mask.reshape(WIDTH, WIDTH))
    dense = dense.to(args.device)
    semi, converted = to_semi_structured(dense)
    if not converted:
        return [{"case": "linear4096_semi24", "skipped": "conversion found no 2:4 layer"}]
    rows = []
    for batch in (1, 16, 64):
        x = torch.randn(batch, WIDTH, device=args.device)
        with torch.inference_mode():
            diff = float((semi(x) - dense(x)).abs().max())
        dense_ms, semi_ms = _ms(dense, x, args), _ms(semi, x, args)
        rows.append(
            {
                "case": "linear4096_semi24",
                "device": args.device,
                "batch": batch,
                "dense_ms": round(dense_ms, 4),
                "semi_ms": round(semi_ms, 4),
                "ratio": round(semi_ms / dense_ms, 3),
                "max_abs_diff": diff,
            }
        )
    return rows


def _traced(case: Callable[[int], Row], threads: int) -> Row:
    """Run a case that traces a model (torch-pruning's graph needs autograd on)."""
    with torch.enable_grad():
        return case(threads)


#: Every case by name, in the order ``--case all`` runs them.
CASES: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "linear4096_sparse95": linear4096_sparse95,
    "sparse_breakeven": sparse_breakeven,
    "linear4096_semi24": linear4096_semi24,
    "resnet18_slim50": lambda args: [_traced(resnet18_slim50, args.threads)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["all", *CASES], default="all")
    parser.add_argument("--threads", default="1", help="a count, or 'all' (every core)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=1, help="batch of linear4096_sparse95")
    parser.add_argument("--min-run-time", type=float, default=0.5)
    args = parser.parse_args()
    args.threads = default_threads() if args.threads == "all" else int(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this PyTorch sees no CUDA GPU")
    torch.set_grad_enabled(False)
    sparse_kernels.warm_up()
    names = list(CASES) if args.case == "all" else [args.case]
    for name in names:
        if name == "linear4096_semi24" and args.case == "all" and args.device == "cpu":
            continue  # a GPU case; asked for by name it says why it is skipped
        for row in CASES[name](args):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
