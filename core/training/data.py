"""Evaluation and fine-tuning data: one spec string in, a checked :class:`Dataset` out.

Specs (see :data:`DATA_HELP`): ``digits``, a tensor file, an image folder, or
``package.module:function``. :func:`check_data` runs one tiny forward pass so a
shape, dtype or label mismatch with the model is a clear error before any
evaluation or training starts.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.common.errors import PruningError, first_line
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.training.dataset import SPLITS, DataError, Dataset, TensorSplit, shape_text
from core.training.image_folder import image_folder_job
from core.training.loader_data import CALLABLE_PATTERN, loader_data_job
from core.training.modeling import logits_of, model_device, model_float_dtype, modes_restored
from core.training.tensor_data import (
    TENSOR_SUFFIXES,
    digits_data,
    from_tensor_dict,
    read_tensor_file,
)

__all__ = [
    "DATA_HELP",
    "SPLITS",
    "DataError",
    "Dataset",
    "check_data",
    "load_data",
    "load_data_job",
]

DIGITS = "digits"

DATA_HELP = (
    "Data is 'digits' (the built-in 8x8 digits: its fixed train/test split, validation a "
    "seeded fraction of train); a .npz, .pt (read weights-only) or .safetensors file holding "
    "tensors x and y (split here by the seeded test and validation fractions; y may be left "
    "out for unlabeled data, which gives fidelity only) or train_x, train_y, test_x, test_y "
    "(val_x, val_y optional, else carved from train); a folder of images in class "
    "sub-folders, or with train/ and test/ (val/) folders of class sub-folders (needs "
    "Pillow: pip install prunescope[images]), resized to the model's input; or "
    "package.module:function returning (train, test), (train, test, val) or a dict of "
    "DataLoaders. uint8 inputs are scaled to [0, 1]. Choices made while fine-tuning use "
    "the validation split only, never test."
)
"""One paragraph on the accepted data specs (for ``--help`` and the GUI)."""


def load_data(
    spec: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    input_shape: tuple[int, ...] | None = None,
) -> Dataset:
    """Load the data a spec names (see :data:`DATA_HELP` and :func:`load_data_job`)."""
    return run_job(
        load_data_job(
            spec,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            input_shape=input_shape,
        )
    )


def load_data_job(
    spec: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    input_shape: tuple[int, ...] | None = None,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[Dataset]:
    """A job loading the data a spec names.

    Args:
        spec: ``digits``, a tensor file, an image folder or ``package.module:function``.
        val_fraction: share of the training samples held out for validation
            (when the data has no validation split of its own); 0 for none.
        test_fraction: share of a single set (``x``, ``y`` or one image folder)
            held out for testing.
        seed: seed of those random splits (same seed, same splits).
        input_shape: the model's sample shape, e.g. ``(1, 8, 8)``: images are
            resized to it, tensors reshaped to it (same number of values).

    Raises:
        DataError: an unknown spec, unreadable or malformed data (the message says what).
        JobCancelled: the token was cancelled.
    """
    spec = str(spec).strip()
    token.check()
    if spec.lower() == DIGITS:
        yield Progress(0.0, "loading the digits")
        return digits_data(val_fraction, seed, input_shape)
    path = Path(spec).expanduser()
    if spec and path.is_dir():
        return (
            yield from image_folder_job(
                path,
                val_fraction=val_fraction,
                test_fraction=test_fraction,
                seed=seed,
                input_shape=input_shape,
                token=token,
            )
        )
    if spec and path.is_file():
        if path.suffix.lower() not in TENSOR_SUFFIXES:
            raise DataError(
                f"{path.name}: not a data file; tensor data is {', '.join(TENSOR_SUFFIXES)}"
            )
        yield Progress(0.0, f"reading {path.name}")
        return from_tensor_dict(
            path.name,
            read_tensor_file(path),
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            input_shape=input_shape,
        )
    if CALLABLE_PATTERN.match(spec):
        return (yield from loader_data_job(spec, token))
    raise DataError(
        f"{spec or '(empty)'}: no such file or folder. Data is 'digits', a tensor file "
        f"({', '.join(TENSOR_SUFFIXES)}), an image folder, or package.module:function"
    )


def check_data(model: nn.Module, data: Dataset, split: str | None = None) -> None:
    """Check that ``model`` takes ``data``: one forward pass on two samples.

    Runs under ``no_grad`` in eval mode (the model's train/eval flags are put
    back), on the model's device, with two samples of ``split`` (default: the
    first split there is). Checks the input dtype against the model's, that the
    forward pass works, that the output is ``(N, C)`` logits with ``C`` at least
    the data's class count, and that labels are integer classes below ``C``.

    Raises:
        DataError: what does not fit, in words.
    """
    split = split or data.splits()[0]
    x, y = data.first(split, 2)
    what = f"{data.name} ({split})"
    model_dtype = model_float_dtype(model)
    if x.is_floating_point() and model_dtype is not None and x.dtype != model_dtype:
        raise DataError(
            f"{what}: inputs are {_dtype(x.dtype)} but the model's weights are "
            f"{_dtype(model_dtype)}; convert one of them"
        )
    device = model_device(model)
    with modes_restored(model, training=False), torch.no_grad():
        try:
            output = model(x.to(device))
        except Exception as exc:  # whatever the model raises on a wrong input
            raise DataError(
                f"{what}: the model does not take samples of shape {shape_text(x.shape[1:])} "
                f"({_dtype(x.dtype)}): {first_line(exc)}"
            ) from exc
    try:
        logits = logits_of(output)
    except PruningError as exc:
        raise DataError(f"{what}: {exc}") from None
    if logits.ndim != 2 or logits.shape[0] != len(x):
        raise DataError(
            f"{what}: the model's output for {len(x)} samples has shape "
            f"{tuple(logits.shape)}; evaluation needs logits of shape (N, classes)"
        )
    classes = int(logits.shape[1])
    if data.num_classes is not None and classes < data.num_classes:
        raise DataError(
            f"{what}: the data has {data.num_classes} classes but the model outputs {classes}"
        )
    labels = [y] if y is not None else []
    labels += [s.y for s in data.sources.values() if isinstance(s, TensorSplit) and s.y is not None]
    for found in labels:
        if len(found) and int(found.max()) >= classes:
            raise DataError(
                f"{what}: label {int(found.max())} is out of range "
                f"for a model with {classes} outputs"
            )


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
