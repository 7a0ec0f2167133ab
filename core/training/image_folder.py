"""Folders of images in class sub-folders (the ImageFolder layout), read with Pillow.

``root/<class>/<image>`` is one set, split here by seeded fractions;
``root/train/<class>/...`` with ``root/test/...`` (and ``root/val/...``) are
ready splits. Class indices follow the sorted class folder names (as
torchvision's ImageFolder). Images are converted to grayscale (C=1) or RGB
(C=3), resized to the model's (H, W), and held as ``uint8`` (batches come out
as float32 in ``[0, 1]``). Pillow is an optional extra, imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.common.errors import first_line
from core.common.jobs import CancelToken, Job, Progress
from core.training.dataset import DataError, Dataset, shape_text
from core.training.tensor_data import check_fractions, from_tensor_dict

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
"""File endings read as images."""

#: Names of ready split folders, and the split each stands for.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}

PILLOW_MISSING = (
    "reading image folders needs Pillow, which is not installed: "
    "pip install prunescope[images] (or pip install pillow)"
)


def import_pillow() -> Any:
    """``PIL.Image``, imported on first use.

    Raises:
        DataError: Pillow is not installed (the message says how to install it).
    """
    try:
        from PIL import Image
    except ImportError:
        raise DataError(PILLOW_MISSING) from None
    return Image


def _images_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in sorted order."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                found.append(Path(here) / name)
    return found


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _layout(root: Path) -> dict[str, Path]:
    """``{split: folder}``: ready split folders, or ``{"all": root}`` for one set."""
    ready = {}
    for child in _class_folders(root):
        split = SPLIT_FOLDERS.get(child.name.lower())
        if split is not None and any(_images_in(c) for c in _class_folders(child)):
            if split in ready:
                raise DataError(f"{root}: two folders for the {split} split")
            ready[split] = child
    if ready and ("train" in ready or "test" in ready):
        return ready
    return {"all": root}


def image_folder_job(
    root: Path,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    input_shape: tuple[int, ...] | None,
    token: CancelToken,
) -> Job[Dataset]:
    """Read an image folder (see the module docstring), one progress report per image.

    Raises:
        DataError: Pillow missing, no images, an unreadable image, or a bad ``input_shape``.
        JobCancelled: the token was cancelled.
    """
    check_fractions(val_fraction, test_fraction)
    image_module = import_pillow()
    layout = _layout(root)
    classes = sorted({c.name for folder in layout.values() for c in _class_folders(folder)})
    if not classes:
        raise DataError(f"{root}: no class sub-folders; put each class's images in its own folder")
    files: dict[str, list[tuple[Path, int]]] = {}
    for split, folder in layout.items():
        files[split] = [
            (path, classes.index(c.name)) for c in _class_folders(folder) for path in _images_in(c)
        ]
    total = sum(len(f) for f in files.values())
    if total == 0:
        raise DataError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    shape = _target_shape(image_module, input_shape, next(p for f in files.values() for p, _ in f))
    channels, height, width = shape
    mode = "L" if channels == 1 else "RGB"
    tensors: dict[str, torch.Tensor] = {}
    done = 0
    for split, listed in files.items():
        if not listed:
            continue
        pixels = np.empty((len(listed), height, width, channels), dtype=np.uint8)
        for i, (path, _) in enumerate(listed):
            token.check()
            pixels[i] = _read_image(image_module, path, mode, (width, height)).reshape(
                height, width, channels
            )
            done += 1
            if done % 64 == 0 or done == total:
                yield Progress(done / total, f"read {done:,} of {total:,} images")
        key = "x" if split == "all" else f"{split}_x"
        tensors[key] = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
        tensors[key.replace("_x", "_y") if split != "all" else "y"] = torch.tensor(
            [label for _, label in listed], dtype=torch.int64
        )
    dataset = from_tensor_dict(
        root.name,
        tensors,
        val_fraction=val_fraction,
        test_fraction=test_fraction if "all" in files else 0.0,
        seed=seed,
        input_shape=None,
    )
    notes = (
        f"{len(classes)} classes from folder names ({', '.join(classes[:5])}"
        f"{', ...' if len(classes) > 5 else ''})",
        *dataset.notes,
    )
    return Dataset(dataset.name, len(classes), shape, dataset.sources, notes)


def _target_shape(
    image_module: Any, input_shape: tuple[int, ...] | None, first: Path
) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``input_shape``, or from the first image (C=1 for grayscale)."""
    if input_shape is None:
        with image_module.open(first) as image:
            channels = 1 if image.mode in ("1", "L", "I", "I;16", "F") else 3
            return channels, image.height, image.width
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise DataError(
            f"images are read as (channels, height, width) with 1 or 3 channels; "
            f"the model takes {shape_text(shape)}"
        )
    return shape[0], shape[1], shape[2]


def _read_image(image_module: Any, path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image as ``uint8`` (H, W[, C]) in ``mode``, resized to ``size`` (W, H)."""
    try:
        with image_module.open(path) as image:
            converted = image.convert(mode)
            if converted.size != size:
                converted = converted.resize(size, image_module.Resampling.BILINEAR)
            return np.asarray(converted, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: cannot be read as an image ({first_line(exc)})") from exc
