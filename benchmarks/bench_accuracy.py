"""Accuracy after one-shot pruning and fine-tuning: the demo CNN on the digits.

For each sparsity and recipe: load the demo CNN (``load_demo("cnn")``), prune it
once with global L1 (:class:`GlobalPrune` over every default target) to the
sparsity, then fine-tune it with the recipe through ``finetune_job`` on the
digits' train split (val: 10% of train drawn with the run's seed, so each seed
also sees another validation split; test: the fixed 360-image test split).
Every choice a recipe makes (which epoch to keep, when to stop) uses validation
only; test accuracy is measured once, at the end. Each recipe runs once per
training seed.

Prints one JSON line per recipe and sparsity: recipe, sparsity, dense_acc,
pruned_acc, finetuned_acc (mean over the seeds, test split), finetuned_acc_min,
finetuned_accs (each seed), val_acc (mean validation top-1 of the kept epochs),
gap_points (dense minus fine-tuned, in points), epochs (the most epochs a
recipe may run), seconds (mean wall seconds of one fine-tune). Lines of our
recipe also give baseline_acc (``oneshot_adam`` measured in the same run at the
same sparsity) and gain_points (ours minus it).

Recipes:

* ``oneshot_adam`` (the baseline): masked Adam, lr 1e-3, batch 64, 30 epochs,
  constant lr, keep the last epoch, no distillation.
* ``ours``: masked AdamW with a one-cycle schedule (peak lr 2e-2), distilled
  from the unpruned model (T=2, alpha 0.7), 30 epochs, keep the best epoch on
  validation. Chosen on validation only: from the first try (T=4, lr 5e-3,
  validation loss 0.070 on seeds 3-5), a higher peak lr and T=2 lowered the
  validation loss most (0.034-0.044); 1-pixel shifts raised it (0.094 vs
  0.062) and were left out; weight decay, batch 32 and alpha 0.9 made no
  difference beyond the noise.

    python benchmarks/bench_accuracy.py                              # both, 90% and 95%, seeds 0-2
    python benchmarks/bench_accuracy.py --recipe ours --sparsity 0.9 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.common.jobs import run_job  # noqa: E402
from core.demos import load_demo  # noqa: E402
from core.pruning.operations import GlobalPrune  # noqa: E402
from core.pruning.session import PruningSession  # noqa: E402
from core.training.data import Dataset, load_data  # noqa: E402
from core.training.evaluate import evaluate  # noqa: E402
from core.training.finetune import FinetuneConfig, FinetuneResult, finetune_job  # noqa: E402

BASELINE = "oneshot_adam"
OURS = "ours"

RECIPES: dict[str, FinetuneConfig] = {
    BASELINE: FinetuneConfig(
        epochs=30,
        batch_size=64,
        optimizer="adam",
        lr=1e-3,
        schedule="constant",
        keep="last",
        distill=False,
    ),
    OURS: FinetuneConfig(
        epochs=30,
        batch_size=64,
        optimizer="adamw",
        lr=2e-2,
        schedule="onecycle",
        distill=True,
        temperature=2.0,
        alpha=0.7,
        keep="best",
    ),
}
"""Each recipe's settings; the seed is set per run."""


def pruned_session(sparsity: float) -> PruningSession:
    """The demo CNN with ``sparsity`` of its default targets pruned by one global L1 step."""
    session = PruningSession(load_demo("cnn").model)
    session.apply(GlobalPrune(tuple(session.names), sparsity))
    return session


def run_once(
    data: Dataset, sparsity: float, config: FinetuneConfig
) -> tuple[float, float, float, FinetuneResult]:
    """Prune, fine-tune; (pruned test top-1, fine-tuned test top-1, seconds, result)."""
    session = pruned_session(sparsity)
    try:
        pruned = evaluate(session.model, data, "test").top1 or 0.0
        started = time.perf_counter()
        result = run_job(finetune_job(session, data, config))
        seconds = time.perf_counter() - started
        finetuned = evaluate(session.model, data, "test").top1 or 0.0
    finally:
        session.close()
    return pruned, finetuned, seconds, result


def kept_val(result: FinetuneResult) -> float | None:
    """Validation top-1 of the epoch the run kept (the start when it kept none)."""
    if result.chosen_epoch == 0:
        return None if result.baseline is None else result.baseline.val_top1
    return result.records[result.chosen_epoch - 1].val_top1


def measure(recipe: str, sparsity: float, seeds: list[int], dense: float) -> dict[str, object]:
    """One JSON row: the recipe at one sparsity, over the seeds."""
    accs, vals, times = [], [], []
    pruned = 0.0
    for seed in seeds:
        data = load_data("digits", val_fraction=0.1, seed=seed)
        config = FinetuneConfig.from_dict({**RECIPES[recipe].to_dict(), "seed": seed})
        pruned, finetuned, seconds, result = run_once(data, sparsity, config)
        accs.append(finetuned)
        times.append(seconds)
        val = kept_val(result)
        if val is not None:
            vals.append(val)
    mean = statistics.fmean(accs)
    return {
        "recipe": recipe,
        "sparsity": sparsity,
        "dense_acc": round(dense, 4),
        "pruned_acc": round(pruned, 4),
        "finetuned_acc": round(mean, 4),
        "finetuned_acc_min": round(min(accs), 4),
        "finetuned_accs": [round(a, 4) for a in accs],
        "val_acc": round(statistics.fmean(vals), 4) if vals else None,
        "gap_points": round(100 * (dense - mean), 2),
        "epochs": RECIPES[recipe].epochs,
        "seconds": round(statistics.fmean(times), 2),
        "seeds": seeds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="training seeds, comma-separated")
    parser.add_argument("--sparsity", default="0.9,0.95", help="sparsities, comma-separated")
    parser.add_argument("--recipe", choices=[*RECIPES, "all"], default="all")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sparsities = [float(s) for s in args.sparsity.split(",")]
    recipes = list(RECIPES) if args.recipe == "all" else [args.recipe]
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    dense = evaluate(load_demo("cnn").model, load_data("digits"), "test").top1 or 0.0
    for sparsity in sparsities:
        baseline: float | None = None
        for recipe in recipes:
            row = measure(recipe, sparsity, seeds, dense)
            if recipe == BASELINE:
                baseline = float(row["finetuned_acc"])  # type: ignore[arg-type]
            elif baseline is not None:
                row["baseline_acc"] = baseline
                row["gain_points"] = round(100 * (float(row["finetuned_acc"]) - baseline), 2)  # type: ignore[arg-type]
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
