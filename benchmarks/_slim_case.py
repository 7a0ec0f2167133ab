"""resnet18_slim50: inference time of a ResNet-18 slimmed to half its channels, ours vs
torch-pruning's own pruner on the same model in the same run.

The hand-built ``ResNet18()`` of ``core.demos`` (10 classes, seeded, no
downloads, eval mode) loses 50% of the channels of every dependency group by
group L2 norm: through ``GroupPrune(0.5)`` in a ``PruningSession`` and
``slim_job`` (ours), and through torch-pruning's ``MagnitudePruner`` with
``GroupMagnitudeImportance(p=2)``, ``pruning_ratio=0.5`` and the classifier
ignored (theirs). Batch 16 of 3x64x64 on the CPU under ``inference_mode``,
timed with ``torch.utils.benchmark`` (median; the three models take turns), all
three in the same memory format: channels-last (``--memory-format``; the
benchmark job's ``channels_last`` option), the format PyTorch recommends for
convolutions on CPUs. Prints one JSON line:
``case``, ``dense_ms``, ``ours_ms``, ``ratio`` (ours / dense), ``max_abs_diff``
(slim vs masked output on the batch, relative to the masked output's largest
magnitude in ``max_output``), ``tp_ms``, ``tp_ratio``, the three parameter
counts, ``threads``, ``memory_format``, and ``ratio_contiguous`` /
``tp_ratio_contiguous`` (the same models in the default contiguous format, same
run). Goal: ratio <= 0.33 and <= tp_ratio + 0.02, outputs matching
(max_abs_diff <= 1e-5 x max_output).

    python benchmarks/_slim_case.py               # torch's default threads
    python benchmarks/_slim_case.py --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

import torch
import torch_pruning as tp
from torch import nn
from torch.utils import benchmark

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.common.jobs import run_job  # noqa: E402
from core.demos import ResNet18  # noqa: E402
from core.pruning.groups import GroupPrune  # noqa: E402
from core.pruning.session import PruningSession  # noqa: E402
from core.pruning.slim import slim_job  # noqa: E402

BATCH = 16
SHAPE = (3, 64, 64)
AMOUNT = 0.5
MIN_RUN_TIME = 1.5
ROUNDS = 5


def build() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The seeded ResNet-18 in eval mode, an example input and the timed batch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ResNet18().eval()
        example = torch.randn(1, *SHAPE)
        batch = torch.randn(BATCH, *SHAPE)
    return model, example, batch


def torch_pruning_slim(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Torch-pruning's own local magnitude pruning of a copy (its reference recipe)."""
    theirs = copy.deepcopy(model)
    pruner = tp.pruner.MagnitudePruner(
        theirs,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=AMOUNT,
        ignored_layers=[theirs.classifier],
    )
    pruner.step()
    return theirs.eval()


def channels_last(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its 4-D weights in channels-last memory format."""
    copied = copy.deepcopy(model)
    copied.to(memory_format=torch.channels_last)
    return copied


def median_ms(models: dict[str, nn.Module], batch: torch.Tensor, threads: int) -> dict[str, float]:
    """Median milliseconds of one forward pass of ``batch`` under inference_mode, per model.

    The models take turns for :data:`ROUNDS` rounds (a load that comes and goes
    hits them alike); each one's figure is the median of its rounds' medians.
    """
    timers = {}
    for name, model in models.items():

        def forward(model: nn.Module = model) -> None:
            with torch.inference_mode():
                model(batch)

        forward()  # warm-up: first-call allocations and kernel choices
        timers[name] = benchmark.Timer(
            stmt="forward()", globals={"forward": forward}, num_threads=threads
        )
    rounds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(ROUNDS):
        for name, timer in timers.items():
            measured = timer.blocked_autorange(min_run_time=MIN_RUN_TIME / ROUNDS)
            rounds[name].append(measured.median * 1e3)
    return {name: float(statistics.median(values)) for name, values in rounds.items()}


def resnet18_slim50(threads: int, memory_format: str = "channels_last") -> dict[str, object]:
    """Run the case with ``threads`` intra-op threads; its JSON-able result row."""
    torch.set_num_threads(threads)
    model, example, batch = build()
    session = PruningSession(copy.deepcopy(model), example_input=example)
    session.apply(GroupPrune(AMOUNT))
    result = run_job(slim_job(session, example))
    ours = result.model.eval()
    with torch.inference_mode():
        masked_out = session.model(batch)
        slim_out = ours(batch)
    theirs = torch_pruning_slim(model, example)
    models = {"dense": model, "ours": ours, "tp": theirs}
    plain = median_ms(models, batch, threads)
    last = median_ms(
        {name: channels_last(m) for name, m in models.items()},
        batch.contiguous(memory_format=torch.channels_last),
        threads,
    )
    times = last if memory_format == "channels_last" else plain
    dense_ms, ours_ms, tp_ms = times["dense"], times["ours"], times["tp"]
    return {
        "case": "resnet18_slim50",
        "dense_ms": round(dense_ms, 3),
        "ours_ms": round(ours_ms, 3),
        "ratio": round(ours_ms / dense_ms, 4),
        "max_abs_diff": float((slim_out - masked_out).abs().max()),
        "max_output": float(masked_out.abs().max()),
        "tp_ms": round(tp_ms, 3),
        "tp_ratio": round(tp_ms / dense_ms, 4),
        "params_dense": result.params_before,
        "params_ours": result.params_after,
        "params_tp": sum(p.numel() for p in theirs.parameters()),
        "threads": threads,
        "memory_format": memory_format,
        "ratio_contiguous": round(plain["ours"] / plain["dense"], 4),
        "tp_ratio_contiguous": round(plain["tp"] / plain["dense"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--memory-format", choices=("channels_last", "contiguous"), default="channels_last"
    )
    args = parser.parse_args()
    print(json.dumps(resnet18_slim50(args.threads, args.memory_format)))


if __name__ == "__main__":
    main()
