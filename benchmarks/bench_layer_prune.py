"""Per-layer L1 pruning: PruneScope's session vs torch.nn.utils.prune.l1_unstructured.

Builds N x Linear(4096, 4096) with torch's default init after torch.manual_seed(0)
(6 layers by default) and prunes ``--amount`` of each weight on its own: through
``PruningSession.prune(name, L1Unstructured(amount))`` one layer after the other,
and with torch's ``l1_unstructured`` on a deep copy, in the same run. Prints one
JSON line: ours_s, torch_s (wall seconds for all layers, ours including original
values written to the vault), speedup, mask_diff (mask differences outside ties,
i.e. outside weights whose |w| equals that layer's threshold; must be 0), ties
(weights at those thresholds), then undo_s and redo_s (undoing all the
operations, then redoing them all, through ``session.undo()`` / ``redo()``).

    python benchmarks/bench_layer_prune.py                  # 6 x 4096², both
    python benchmarks/bench_layer_prune.py --params 50e6    # about 3 layers
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import L1Unstructured, PruningSession  # noqa: E402
from core.pruning import scatter  # noqa: E402

WIDTH = 4096


def build_model(layers: int) -> nn.Sequential:
    """The benchmark model: ``layers`` x Linear(4096, 4096), seed 0."""
    torch.manual_seed(0)
    return nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(layers)))


def layer_count(params: float) -> int:
    """How many Linear(4096, 4096) layers (with bias) make about ``params`` parameters."""
    return max(1, round(params / (WIDTH * WIDTH + WIDTH)))


def compare(
    original: list[np.ndarray], ours: list[np.ndarray], theirs: list[np.ndarray]
) -> tuple[int, int]:
    """Mask differences outside each layer's ties, and the number of ties at the thresholds."""
    diff = ties = 0
    for magnitudes, a, b in zip(original, ours, theirs, strict=True):
        pruned = magnitudes[~b]
        if pruned.size == 0:
            diff += int(np.count_nonzero(a != b))
            continue
        at_threshold = magnitudes == pruned.max()  # torch's cut: its largest pruned |w|
        diff += int(np.count_nonzero((a != b) & ~at_threshold))
        ties += int(np.count_nonzero(at_threshold))
    return diff, ties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=6 * (WIDTH * WIDTH + WIDTH))
    parser.add_argument("--amount", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    scatter.warm_up()  # the undo kernel, loaded from numba's cache as the app does at startup
    layers = layer_count(args.params)
    model = build_model(layers)
    twin = copy.deepcopy(model)
    original = [m.weight.detach().abs().reshape(-1).numpy().copy() for m in model]

    with tempfile.TemporaryDirectory(prefix="bench-layer-") as tmp:
        session = PruningSession(model, spill_dir=tmp)
        start = time.perf_counter()
        for name in session.names:
            session.prune(name, L1Unstructured(args.amount))
        ours_s = time.perf_counter() - start
        ours = [session.mask(name).reshape(-1).numpy() for name in session.names]

        start = time.perf_counter()
        for _ in session.names:
            session.undo()
        undo_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in session.names:
            session.redo()
        redo_s = time.perf_counter() - start
        session.close()

    from torch.nn.utils import prune

    start = time.perf_counter()
    for module in twin:
        prune.l1_unstructured(module, "weight", amount=args.amount)
    torch_s = time.perf_counter() - start
    theirs = [m.weight_mask.bool().reshape(-1).numpy() for m in twin]

    mask_diff, ties = compare(original, ours, theirs)
    print(
        json.dumps(
            {
                "layers": layers,
                "amount": args.amount,
                "ours_s": round(ours_s, 3),
                "torch_s": round(torch_s, 3),
                "speedup": round(torch_s / ours_s, 1),
                "mask_diff": mask_diff,
                "ties": ties,
                "undo_s": round(undo_s, 3),
                "redo_s": round(redo_s, 3),
                "undo_over_redo": round(undo_s / redo_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
