"""Train the two digits demo models and write their weights and the manifest.

Writes, in ``resources/``:

* ``digits_cnn.safetensors`` and ``digits_mlp.safetensors``: the state dicts of
  :class:`core.demos.DigitsCNN` and :class:`core.demos.DigitsMLP`;
* ``demo_models.json``: name, file, test accuracy, input shape and description
  of every demo (``resnet18`` has no file and no accuracy).

Training is seeded and deterministic (one CPU thread, deterministic
algorithms, fixed shuffling), uses Adam on the 1,437 training images of
``resources/digits.npz`` (inputs already /16 by :func:`core.demos.load_digits`)
and takes a few seconds. Run it from the repository root::

    .venv/bin/python scripts/train_demo_models.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `core` imports when run as a plain script
    sys.path.insert(0, str(REPO))

from core import demos  # noqa: E402

RESOURCES = REPO / "resources"


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters for one model."""

    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float


RECIPES: dict[str, Recipe] = {
    "cnn": Recipe(seed=0, epochs=40, batch_size=64, lr=3e-3, weight_decay=1e-4),
    "mlp": Recipe(seed=0, epochs=40, batch_size=64, lr=2e-3, weight_decay=1e-4),
}


def train(name: str, recipe: Recipe, data: demos.DigitsData) -> nn.Module:
    """Train demo ``name`` from a seeded initialisation; return it in eval mode."""
    torch.manual_seed(recipe.seed)
    model = demos.build_demo_architecture(name)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(data.train_x) // recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(recipe.seed)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(data.train_x), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(data.train_x[batch]), data.train_y[batch])
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    return model


def min_margin(model: nn.Module, x: torch.Tensor) -> float:
    """Smallest gap between the top two logits over ``x`` (tiny gaps = fragile argmax)."""
    with torch.no_grad():
        top2 = model(x).topk(2, dim=1).values
    return float((top2[:, 0] - top2[:, 1]).min())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESOURCES, help="output folder")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = demos.load_digits()

    entries: list[dict[str, object]] = []
    for name in demos.DEMO_NAMES:
        entry: dict[str, object] = {
            "name": name,
            "file": demos.WEIGHT_FILES.get(name),
            "test_accuracy": None,
            "input_shape": list(demos.INPUT_SHAPES[name]),
            "description": demos.DESCRIPTIONS[name],
        }
        if name in RECIPES:
            started = time.perf_counter()
            model = train(name, RECIPES[name], data)
            seconds = time.perf_counter() - started
            accuracy = demos.evaluate_accuracy(model, data.test_x, data.test_y)
            train_accuracy = demos.evaluate_accuracy(model, data.train_x, data.train_y)
            path = args.out / demos.WEIGHT_FILES[name]
            state = {key: value.contiguous() for key, value in model.state_dict().items()}
            # A single metadata key: safetensors writes metadata in hash order.
            save_file(state, str(path), metadata={"format": "pt"})
            path.chmod(0o644)
            entry["test_accuracy"] = accuracy
            entry["parameters"] = sum(p.numel() for p in model.parameters())
            print(
                f"{name}: test {accuracy:.4f}, train {train_accuracy:.4f}, "
                f"min logit margin {min_margin(model, data.test_x):.2e}, "
                f"{seconds:.1f} s, {path.name} {path.stat().st_size} bytes"
            )
        entries.append(entry)

    manifest = {
        "dataset": "digits.npz",
        "split": {"train": len(data.train_x), "test": len(data.test_x)},
        "models": entries,
    }
    manifest_path = args.out / demos.MANIFEST_FILE
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {manifest_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
