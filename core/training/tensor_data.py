"""Data held as tensors: the built-in digits and ``.npz`` / ``.pt`` / ``.safetensors`` files.

A file holds ``x`` (and ``y``), split here by seeded fractions, or ready splits
``train_x``, ``train_y``, ``test_x``, ``test_y`` (``val_x``, ``val_y``
optional: else carved from train). ``y`` may be missing (unlabeled data:
fidelity only).
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from core.common.errors import first_line
from core.demos import load_digits
from core.training.dataset import (
    DataError,
    Dataset,
    prepare_inputs,
    shape_text,
)

TENSOR_SUFFIXES: tuple[str, ...] = (".npz", ".pt", ".pth", ".safetensors")
"""File endings read as tensor data."""

_SPLIT_KEYS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raises DataError unless both fractions lie in ``[0, 1)``."""
    for what, value in (("validation", val_fraction), ("test", test_fraction)):
        if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
            raise DataError(f"the {what} fraction must be in [0, 1), got {value!r}")


def digits_data(val_fraction: float, seed: int, input_shape: tuple[int, ...] | None) -> Dataset:
    """The built-in digits: the fixed train/test split, val a seeded fraction of train."""
    digits = load_digits()
    return from_tensor_dict(
        "digits",
        {
            "train_x": digits.train_x,
            "train_y": digits.train_y,
            "test_x": digits.test_x,
            "test_y": digits.test_y,
        },
        val_fraction=val_fraction,
        test_fraction=0.0,
        seed=seed,
        input_shape=input_shape,
    )


def read_tensor_file(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.npz`` (no pickles), ``.pt`` (weights only) or ``.safetensors`` file.

    Raises:
        DataError: the file cannot be read, or holds something else than named tensors.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(path))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path.name}: cannot be read as tensor data ({first_line(exc)})") from exc
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{path.name}: holds more than tensors (read with weights_only=True): "
            f"{first_line(exc)}; save a dict of tensors"
        ) from exc
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in loaded.items()
    ):
        raise DataError(
            f"{path.name}: holds a {type(loaded).__name__}; save a dict of tensors "
            "with keys x, y (or train_x, train_y, test_x, test_y)"
        )
    return dict(loaded)


def from_tensor_dict(
    name: str,
    tensors: Mapping[str, Tensor],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    input_shape: tuple[int, ...] | None,
) -> Dataset:
    """A data set from named tensors (see the module docstring).

    Raises:
        DataError: missing or conflicting keys, mismatched lengths or shapes, bad labels.
    """
    check_fractions(val_fraction, test_fraction)
    keys = set(tensors)
    split_keys = keys & set(_SPLIT_KEYS)
    if "x" in keys and split_keys:
        raise DataError(
            f"{name}: holds both x and {', '.join(sorted(split_keys))}; "
            "give either x, y or train_x, train_y, test_x, test_y"
        )
    notes: list[str] = []
    pairs: dict[str, tuple[Tensor, Tensor | None]] = {}
    if "x" in keys:
        pairs = _split_one_set(
            name, tensors["x"], tensors.get("y"), val_fraction, test_fraction, seed
        )
        notes.append(
            f"split with seed {seed}: {test_fraction:.0%} test, {val_fraction:.0%} of the rest val"
        )
    elif "y" in keys:
        raise DataError(f"{name}: has y but no x")
    else:
        for split in ("train", "val", "test"):
            x, y = tensors.get(f"{split}_x"), tensors.get(f"{split}_y")
            if x is None and y is not None:
                raise DataError(f"{name}: has {split}_y but no {split}_x")
            if x is not None:
                pairs[split] = (x, y)
        if not pairs:
            found = ", ".join(sorted(keys)) or "nothing"
            raise DataError(
                f"{name}: no data found (it holds {found}); expected tensors x and y, "
                "or train_x, train_y, test_x, test_y (val_x, val_y optional)"
            )
        if "train" in pairs and "val" not in pairs and val_fraction > 0:
            x, y = pairs.pop("train")
            carved = _split_one_set(name, x, y, val_fraction, 0.0, seed)
            pairs.update(carved)
            notes.append(f"val carved from train: {val_fraction:.0%}, seed {seed}")
    return _checked(name, pairs, input_shape, tuple(notes))


def _split_one_set(
    name: str,
    x: Tensor,
    y: Tensor | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, tuple[Tensor, Tensor | None]]:
    """Seeded split of one set: ``test_fraction`` test, then ``val_fraction`` of the rest val."""
    if x.ndim == 0:
        raise DataError(f"{name}: x needs a sample axis, got a scalar")
    n = len(x)
    if y is not None and len(y) != n:
        raise DataError(f"{name}: {n} inputs but {len(y)} labels")
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * (n - n_test))
    if n - n_test - n_val < 1:
        raise DataError(
            f"{name}: {n} samples leave none to train on with {test_fraction:.0%} test "
            f"and {val_fraction:.0%} validation"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    parts = {
        "test": order[:n_test],
        "val": order[n_test : n_test + n_val],
        "train": order[n_test + n_val :],
    }
    pairs: dict[str, tuple[Tensor, Tensor | None]] = {}
    for split in ("train", "val", "test"):
        index = parts[split].sort().values
        if len(index):
            pairs[split] = (x[index], None if y is None else y[index])
    return pairs


def _checked(
    name: str,
    pairs: Mapping[str, tuple[Tensor, Tensor | None]],
    input_shape: tuple[int, ...] | None,
    notes: tuple[str, ...],
) -> Dataset:
    """Checked, converted splits; samples reshaped to ``input_shape`` when it is given."""
    checked: dict[str, tuple[Tensor, Tensor | None]] = {}
    for split, (raw_x, y) in pairs.items():
        what = f"{name} ({split})"
        x = prepare_inputs(raw_x, what)
        if input_shape is not None:
            x = _reshaped(x, tuple(input_shape), what)
        checked[split] = (x, y)
    shapes = {tuple(x.shape[1:]) for x, _ in checked.values()}
    if len(shapes) > 1:
        listed = ", ".join(shape_text(s) for s in sorted(shapes))
        raise DataError(f"{name}: the splits' samples have different shapes ({listed})")
    return Dataset.from_tensors(name, checked, notes=notes)


def _reshaped(x: Tensor, shape: tuple[int, ...], what: str) -> Tensor:
    """Samples reshaped to ``shape`` when the number of values per sample agrees."""
    sample = tuple(x.shape[1:])
    if sample == shape:
        return x
    if math.prod(sample) != math.prod(shape):
        raise DataError(
            f"{what}: samples are {shape_text(sample)} ({math.prod(sample):,} values) but "
            f"the model takes {shape_text(shape)} ({math.prod(shape):,} values)"
        )
    return x.reshape(len(x), *shape)
