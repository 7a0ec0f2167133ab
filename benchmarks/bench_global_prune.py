"""Global L1 pruning at scale: PruneScope vs torch.nn.utils.prune.global_unstructured.

Builds N x Linear(4096, 4096) with torch's default init after torch.manual_seed(0)
(15 layers = 251.7M parameters with biases, 0.94 GiB fp32), prunes the weights
globally at ``--amount`` in a fresh subprocess per contender, and prints one JSON
line: ours_s, torch_s (wall seconds of the whole operation, including original
values written to disk), speedup, ours_extra_x / torch_extra_x (peak RSS minus the
RSS right after the model was built, over the model's parameter bytes),
mask_diff (mask differences outside exact ties; must be 0) and ties (remaining
weights whose |w| equals the threshold).

    python benchmarks/bench_global_prune.py                 # 251.7M, both
    python benchmarks/bench_global_prune.py --params 2e9    # ours only (torch cannot)
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

WIDTH = 4096
TORCH_LIMIT = 420e6  # the largest model torch's global pruning survives on 24 GiB


def build_model(params: float):
    """The benchmark model: as many Linear(4096, 4096) as reach ``params``."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(layer_count(params))))


def layer_count(params: float) -> int:
    """How many Linear(4096, 4096) layers (with bias) make about ``params`` parameters."""
    return max(1, round(params / (WIDTH * WIDTH + WIDTH)))


def run_child(which: str, params: float, amount: float, out: Path) -> None:
    """Build, prune, measure; write packed masks and figures into ``out``."""
    import numpy as np
    import torch
    from _memory import peak_bytes, reset_peak, rss_bytes

    torch.set_grad_enabled(False)
    model = build_model(params)
    gc.collect()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    base = rss_bytes()
    reset_peak()
    start = time.perf_counter()
    if which == "ours":
        from core.pruning.session import PruningSession

        session = PruningSession(model, spill_dir=str(out))
        session.global_prune(amount)
        elapsed = time.perf_counter() - start
        masks = {name: session.packed_mask(name).bits for name in session.names}
    else:
        from torch.nn.utils import prune

        targets = [(m, "weight") for m in model]
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
        elapsed = time.perf_counter() - start
        masks = {
            f"{i}.weight": np.packbits(m.weight_mask.bool().numpy().reshape(-1))
            for i, m in enumerate(model)
        }
    peak = peak_bytes()
    np.savez(out / f"{which}_masks.npz", **{k.replace(".", "_"): v for k, v in masks.items()})
    figures = {"seconds": elapsed, "extra_x": (peak - base) / model_bytes}
    (out / f"{which}.json").write_text(json.dumps(figures))


def compare(params: float, amount: float, out: Path) -> tuple[int, int]:
    """Mask differences outside exact ties, and the number of ties at the threshold."""
    import numpy as np
    import torch

    torch.set_grad_enabled(False)
    model = build_model(params)
    ours = np.load(out / "ours_masks.npz")
    theirs = np.load(out / "torch_masks.npz")
    magnitudes = [m.weight.abs().reshape(-1).numpy() for m in model]

    def kept(masks, i: int) -> np.ndarray:
        return np.unpackbits(masks[f"{i}_weight"], count=magnitudes[i].size).view(bool)

    # The threshold is the largest magnitude our mask pruned.
    threshold = max(float(mag[~kept(ours, i)].max(initial=0.0)) for i, mag in enumerate(magnitudes))
    diff = ties = 0
    for i, mag in enumerate(magnitudes):
        a, b = kept(ours, i), kept(theirs, i)
        at_threshold = mag == threshold
        diff += int(np.count_nonzero((a != b) & ~at_threshold))
        ties += int(np.count_nonzero(at_threshold))
    return diff, ties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=251.7e6)
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--child", choices=["ours", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.params, args.amount, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="bench-global-") as tmp:
        out = Path(tmp)
        contenders = ["ours"] + (["torch"] if args.params <= TORCH_LIMIT else [])
        figures = {}
        for which in contenders:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    which,
                    "--params",
                    str(args.params),
                    "--amount",
                    str(args.amount),
                    "--out",
                    str(out),
                ],
                check=True,
            )
            figures[which] = json.loads((out / f"{which}.json").read_text())
        ours, theirs = figures["ours"], figures.get("torch")
        result = {
            "model_params": layer_count(args.params) * (WIDTH * WIDTH + WIDTH),
            "amount": args.amount,
            "ours_s": round(ours["seconds"], 3),
            "torch_s": round(theirs["seconds"], 3) if theirs else None,
            "speedup": round(theirs["seconds"] / ours["seconds"], 1) if theirs else None,
            "ours_extra_x": round(ours["extra_x"], 3),
            "torch_extra_x": round(theirs["extra_x"], 2) if theirs else None,
            "mask_diff": None,
            "ties": None,
        }
        if theirs:
            result["mask_diff"], result["ties"] = compare(args.params, args.amount, out)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
