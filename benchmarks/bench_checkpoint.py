"""Checkpoint sizes and save/load times of every format, against torch's own files.

Builds the global-prune benchmark's model (N x Linear(4096, 4096), 251.7M
parameters, 0.94 GiB fp32; ``--params`` for a quicker run), prunes it with
global L1 at each ``--sparsity``, and prints one JSON line per format and
sparsity: ``format``, ``sparsity``, ``file`` (the name saved, which says the
suffix), ``bytes``, ``dense_bytes`` (the dense reference's), ``ratio``,
``save_s`` (to a file, fsync included; PruneScope's formats through
``save_job``, with the recipe beside) and ``load_s`` (back to a dense
state_dict in RAM, warm page cache, no memory mapping), each the best of
``--repeats`` runs. References in the same run:

* ``dense_reference``: ``torch.save``/``torch.load`` of the dense state_dict;
* ``torch_prune_reference``: ``torch.save``/``torch.load`` of torch's pruned
  state_dict (``weight_orig`` + ``weight_mask``), what users of
  ``torch.nn.utils.prune`` save today.

How each format is loaded: ``state_dict`` ``.pt``, ``torch_prune`` and the
references with ``torch.load(weights_only=True)``; ``state_dict``
``.safetensors`` read tensor by tensor into fresh tensors (no mapping);
``session`` with ``read_session`` (weights, masks and whole originals);
``sparse`` with ``read_sparse``; ``export`` with ``torch.export.load`` and its
state_dict. Goals at 90%: ``sparse`` bytes <= 0.14x dense, and ``sparse``
save_s and load_s each <= ``dense_reference``'s (checked on stderr).

    python benchmarks/bench_checkpoint.py                   # 251.7M, 50% and 90%
    python benchmarks/bench_checkpoint.py --params 30e6 --repeats 1
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_global_prune import build_model  # noqa: E402

GOAL_RATIO = 0.14


def timed(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs of ``action``, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def torch_save_synced(state: dict, path: Path) -> None:
    """``torch.save`` to ``path``, flushed and fsynced (as PruneScope's writes are)."""
    import torch

    with open(path, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())


def torch_load(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)


def read_plain_safetensors(path: Path) -> dict:
    """A plain safetensors file into fresh tensors (no memory mapping)."""
    from core.common.jobs import run_job
    from core.io.tensor_file import open_tensor_file, read_job

    return run_job(read_job(open_tensor_file(path)))


def read_export(path: Path) -> dict:
    import torch

    return dict(torch.export.load(path).state_dict)


def contenders(session, folder: Path) -> list[tuple[str, str, dict, Callable, Callable]]:
    """(format, file name, extra keys, save, load) of every contender."""
    from core.io.checkpoints import read_session, read_sparse, save
    from core.io.torch_interop import to_torch_pruned

    def ours(name: str, format: str, **options: Any) -> Callable[[], Any]:
        return lambda: save(session, folder / name, format, **options)

    def torch_pruned_state() -> dict:
        return to_torch_pruned(session).state_dict()

    return [
        (
            "dense_reference",
            "dense.pt",
            {},
            lambda: torch_save_synced(session.model.state_dict(), folder / "dense.pt"),
            torch_load,
        ),
        (
            "torch_prune_reference",
            "torch_pruned.pt",
            {},
            lambda: torch_save_synced(torch_pruned_state(), folder / "torch_pruned.pt"),
            torch_load,
        ),
        (
            "state_dict",
            "m.safetensors",
            {},
            ours("m.safetensors", "state_dict"),
            read_plain_safetensors,
        ),
        ("state_dict", "m.pt", {}, ours("m.pt", "state_dict"), torch_load),
        ("session", "m.prunescope", {}, ours("m.prunescope", "session"), read_session),
        ("torch_prune", "tp.pt", {}, ours("tp.pt", "torch_prune"), torch_load),
        ("sparse", "s.safetensors", {"half": False}, ours("s.safetensors", "sparse"), read_sparse),
        (
            "sparse",
            "h.safetensors",
            {"half": True},
            ours("h.safetensors", "sparse", half=True),
            read_sparse,
        ),
        ("export", "m.pt2", {}, ours("m.pt2", "export"), read_export),
    ]


def run(params: float, sparsity: float, repeats: int, folder: Path) -> list[dict[str, Any]]:
    """Every contender's line at one sparsity."""
    import torch

    from core.pruning.session import PruningSession

    model = build_model(params)
    session = PruningSession(model, spill_dir=str(folder), example_input=torch.randn(1, 4096))
    session.global_prune(sparsity)
    lines: list[dict[str, Any]] = []
    dense_bytes = 0
    for format, name, extra, save_action, load_action in contenders(session, folder):
        path = folder / name
        save_s, _ = timed(save_action, repeats)
        size = path.stat().st_size
        dense_bytes = dense_bytes or size  # the dense reference comes first
        load_s, loaded = timed(functools.partial(load_action, path), repeats)
        del loaded
        for leftover in (path, path.with_name(path.name + ".recipe.json")):
            leftover.unlink(missing_ok=True)
        line = {
            "format": format,
            "sparsity": sparsity,
            "file": name,
            **extra,
            "bytes": size,
            "dense_bytes": dense_bytes,
            "ratio": round(size / dense_bytes, 4),
            "save_s": round(save_s, 3),
            "load_s": round(load_s, 3),
        }
        print(json.dumps(line), flush=True)
        lines.append(line)
    session.close()
    return lines


def check_goals(lines: list[dict[str, Any]]) -> None:
    """Say on stderr whether the goals at 90% are met."""
    at90 = [line for line in lines if line["sparsity"] == 0.9]
    dense = next((line for line in at90 if line["format"] == "dense_reference"), None)
    sparse = next((line for line in at90 if line["format"] == "sparse" and not line["half"]), None)
    if dense is None or sparse is None:
        return
    for what, ok in [
        (f"sparse ratio {sparse['ratio']} <= {GOAL_RATIO}", sparse["ratio"] <= GOAL_RATIO),
        (
            f"sparse save {sparse['save_s']}s <= dense {dense['save_s']}s",
            sparse["save_s"] <= dense["save_s"],
        ),
        (
            f"sparse load {sparse['load_s']}s <= dense {dense['load_s']}s",
            sparse["load_s"] <= dense["load_s"],
        ),
    ]:
        print(f"{'met' if ok else 'MISSED'}: {what}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, default=251.7e6)
    parser.add_argument("--sparsity", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from core.io import expand
    from core.pruning import scatter

    torch.set_grad_enabled(False)
    expand.warm_up()  # the kernels are compiled ahead, as the app does
    scatter.warm_up()
    lines: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as tmp:
        for sparsity in args.sparsity:
            lines += run(args.params, sparsity, args.repeats, Path(tmp))
            gc.collect()
    check_goals(lines)


if __name__ == "__main__":
    main()
