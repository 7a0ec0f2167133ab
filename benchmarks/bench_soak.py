"""Soak test of the session: memory stays flat over many operations, strokes stay small.

Part 1: 10,000 random operations (layer pruning with every method in both modes,
global pruning, paint strokes, weight updates, resets; undo, redo and jumps in
the history a quarter of the time, so the history grows past its budget) on the
demo CNN with the history budget set to 4 MB. Reports the most undo data the
history ever held and the RSS growth from operation 1,000 to the last (the
first thousand warm up allocators and caches).

Part 2: 100 paint strokes of ~50 single weights each on one 8192 x 8192 layer;
reports the bytes that history and vault add per stroke (after a first stroke,
which creates the layer's mask and the vault's bitmap of stashed positions, both
state of the layer rather than of a stroke, reported as ``layer_fixed_bytes``).

Prints one JSON line. The baseline is the session before this change, where a
stroke was a full custom mask (about 67 MB of history per stroke at 8192²):
``baseline_bytes_per_stroke`` is that figure, computed for the same layer.

    python benchmarks/bench_soak.py
    python benchmarks/bench_soak.py --ops 2000 --width 4096   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BUDGET = 4 << 20


def settled_rss() -> int:
    """RSS after garbage collection and after glibc returned its free pages to the system.

    Without the trim, RSS also counts memory freed by Python but kept by malloc's
    arenas, which says nothing about what the session holds.
    """
    from _memory import rss_bytes

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes()


def soak(ops: int, seed: int) -> dict[str, float]:
    """Random operations on the demo CNN; history bytes and RSS growth."""
    import numpy as np
    import torch

    from core import PruningSession, load_demo
    from core.common.errors import PruningError
    from core.pruning.methods import (
        BlockSparsity,
        L1Unstructured,
        LnStructured,
        MagnitudeThreshold,
        NMSparsity,
        QuantileRule,
        RandomStructured,
        RandomUnstructured,
    )

    rng = random.Random(seed)
    demo = load_demo("cnn")
    session = PruningSession(demo.model, history_budget=BUDGET)
    names = session.names
    methods = [
        lambda a: L1Unstructured(a),
        lambda a: RandomUnstructured(a, seed=rng.randrange(100)),
        lambda a: LnStructured(a, n=rng.choice([1, 2]), dim=0),
        lambda a: RandomStructured(a, dim=0, seed=rng.randrange(100)),
        lambda a: QuantileRule(a),
        lambda a: MagnitudeThreshold(a / 10),
        lambda a: BlockSparsity(a, 2, 2),
        lambda a: NMSparsity(2, 4),
    ]
    history_max = 0
    rss_at_1000 = 0
    errors = 0
    start = time.perf_counter()
    for i in range(1, ops + 1):
        kind = rng.random()
        name = rng.choice(names)
        try:
            if kind < 0.32:
                method = rng.choice(methods)(round(rng.random() * 0.9, 3))
                session.prune(name, method, mode=rng.choice(["further", "set"]))
            elif kind < 0.40:
                session.global_prune(round(rng.random() * 0.5, 3))
            elif kind < 0.60:
                numel = session.info(name).numel
                cells = np.array([rng.randrange(numel) for _ in range(rng.randint(1, 50))])
                session.paint(name, cells, keep=rng.random() < 0.3)
            elif kind < 0.65:
                weight = session.effective(name)
                session.update_weights({name: weight * (1 + 0.01 * rng.random())}, "nudge")
            elif kind < 0.70:
                session.reset([name])
            elif kind < 0.86:
                if session.history.can_undo():
                    session.undo()
            elif kind < 0.995:
                if session.history.can_redo():
                    session.redo()
            else:  # a jump a few steps back or forward, as a click in the history list
                cursor = session.history.cursor + rng.randint(-10, 10)
                session.goto(min(max(cursor, 0), len(session.history.entries)))
        except PruningError:
            errors += 1  # e.g. N:M on a width it does not divide: refused, nothing changed
        history_max = max(history_max, session.history.nbytes)
        if i == 1000:
            rss_at_1000 = settled_rss()
    growth = (settled_rss() - rss_at_1000) / 2**20 if ops >= 1000 else float("nan")
    torch.set_grad_enabled(True)
    return {
        "ops": ops,
        "ops_refused": errors,
        "soak_s": round(time.perf_counter() - start, 1),
        "history_budget": BUDGET,
        "history_bytes_max": history_max,
        "history_dropped": session.history.dropped,
        "rss_growth_mb": round(growth, 2),
        "undo_reach": session.history.reach(),
    }


def strokes(width: int, count: int, seed: int) -> dict[str, float]:
    """Paint strokes on one width x width layer: bytes added per stroke."""
    import numpy as np
    import torch
    from torch import nn

    from core import PruningSession

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(width, width, bias=False))
    session = PruningSession(model, spill=False)
    rng = np.random.default_rng(seed)
    numel = width * width

    def held() -> int:
        return session.history.nbytes + session.vault.stored_bytes()

    session.paint("0.weight", rng.integers(0, numel, 50), keep=False)
    fixed = session.packed_mask("0.weight").nbytes + (numel + 7) // 8  # mask + vault bitmap
    first = held()
    start = time.perf_counter()
    for _ in range(count):
        session.paint("0.weight", rng.integers(0, numel, 50), keep=rng.random() < 0.2)
    seconds = time.perf_counter() - start
    per_stroke = (held() - first) / count
    baseline = numel  # a CustomMask stroke kept the full unpacked bool mask: 1 byte per weight
    return {
        "stroke_layer": f"{width}x{width}",
        "history_bytes_per_stroke": round(per_stroke, 1),
        "baseline_bytes_per_stroke": baseline,
        "ratio": round(baseline / per_stroke, 1) if per_stroke else float("inf"),
        "layer_fixed_bytes": fixed,
        "stroke_ms": round(1000 * seconds / count, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--strokes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = soak(args.ops, args.seed)
    result.update(strokes(args.width, args.strokes, args.seed))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
