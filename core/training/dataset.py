"""A data set for evaluation and fine-tuning: named splits of samples, batched on demand.

A :class:`Dataset` holds up to three splits (``train``, ``val``, ``test``). Each
is either held as tensors (:class:`TensorSplit`: the digits, tensor files, image
folders) or is a user's iterable of batches (:class:`LoaderSplit`: a DataLoader
from a ``package.module:function``). Inputs stored as ``uint8`` (images) stay
``uint8`` in memory and come out of :meth:`Dataset.batches` as float32 in
``[0, 1]``; labels are int64 class indices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from core.common.errors import PruningError

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Every split name, in the order they are listed."""

#: Keys a loader's dict batches may use for inputs and labels.
_INPUT_KEYS = ("x", "input", "inputs", "image", "images", "pixel_values")
_LABEL_KEYS = ("y", "label", "labels", "target", "targets")


class DataError(PruningError):
    """Bad data spec, missing keys or splits, or data that does not fit the model."""


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    """``1×8×8`` (``scalar`` for an empty shape)."""
    return "×".join(str(int(d)) for d in shape) or "scalar"


def prepare_inputs(x: Tensor, what: str) -> Tensor:
    """Inputs as stored: ``uint8`` kept (scaled when batched), float64 and bool made
    float32, other dtypes (float32/16, integer token ids) as they are.

    Raises:
        DataError: no sample axis, or complex values.
    """
    if x.ndim == 0:
        raise DataError(f"{what}: inputs need a sample axis, got a scalar")
    if x.is_complex():
        raise DataError(f"{what}: complex inputs are not supported")
    if x.dtype in (torch.float64, torch.bool):
        x = x.to(torch.float32)
    return x.contiguous()


def prepare_labels(y: Tensor, count: int, what: str) -> Tensor:
    """Labels as int64 class indices, one per sample.

    Raises:
        DataError: not 1-D, not integers, negative, or a different count than the inputs.
    """
    if y.ndim != 1:
        hint = " (one-hot? store y.argmax(1))" if y.ndim == 2 else ""
        raise DataError(
            f"{what}: labels must be a 1-D tensor of class indices, got shape "
            f"{tuple(y.shape)}{hint}"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        dtype = str(y.dtype).removeprefix("torch.")
        raise DataError(f"{what}: labels must be integer class indices, got {dtype}")
    if len(y) != count:
        raise DataError(f"{what}: {count} inputs but {len(y)} labels")
    y = y.to(torch.int64).contiguous()
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{what}: labels must be class indices >= 0, found {int(y.min())}")
    return y


def as_float(x: Tensor) -> Tensor:
    """``uint8`` inputs as float32 in ``[0, 1]``; anything else unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x


@dataclass(frozen=True, eq=False)
class TensorSplit:
    """One split held as tensors: inputs ``x`` (N, ...) and labels ``y`` (N,) or None."""

    x: Tensor
    y: Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)

    def labeled(self) -> bool:
        """Whether the split has labels."""
        return self.y is not None

    def batches(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """Batches in order, or in a random order drawn from ``generator``."""
        n = len(self.x)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            if order is None:
                x = self.x[start : start + batch_size]
                y = None if self.y is None else self.y[start : start + batch_size]
            else:
                index = order[start : start + batch_size]
                x = self.x[index]
                y = None if self.y is None else self.y[index]
            yield as_float(x), y


@dataclass(frozen=True, eq=False)
class LoaderSplit:
    """One split that is a user's re-iterable of batches (a DataLoader, a list).

    Each item is ``(x, y)`` (more items are ignored), ``x`` alone, or a dict with
    an input key (``x``, ``input``, ``image``, ...) and optionally a label key
    (``y``, ``label``, ``target``, ...). ``size`` is the number of samples when
    known; ``labeled`` was found on the first batch.
    """

    iterable: Iterable[Any]
    size: int | None
    labeled_: bool

    def labeled(self) -> bool:
        """Whether the split's batches carry labels."""
        return self.labeled_

    def batch_count(self) -> int | None:
        """Batches per pass, when the iterable knows (``len()``)."""
        try:
            return len(self.iterable)  # type: ignore[arg-type]
        except TypeError:
            return None

    def batches(self, what: str) -> Iterator[tuple[Tensor, Tensor | None]]:
        """The iterable's batches as ``(inputs, labels or None)``."""
        for item in self.iterable:
            x, y = unpack_batch(item, what)
            if self.labeled_ and y is None:
                raise DataError(f"{what}: a batch has no labels, the first one had")
            yield as_float(x), y


def unpack_batch(item: Any, what: str) -> tuple[Tensor, Tensor | None]:
    """``(inputs, labels or None)`` of one item of a user's loader.

    Raises:
        DataError: the item is none of the accepted forms.
    """
    x: Any
    y: Any = None
    if isinstance(item, Tensor):
        x = item
    elif isinstance(item, tuple | list) and item:
        x = item[0]
        y = item[1] if len(item) > 1 else None
    elif isinstance(item, Mapping):
        x = next((item[k] for k in _INPUT_KEYS if k in item), None)
        y = next((item[k] for k in _LABEL_KEYS if k in item), None)
    else:
        x = None
    if not isinstance(x, Tensor):
        raise DataError(
            f"{what}: a batch is a {type(item).__name__}; batches must be (inputs, labels), "
            "inputs alone, or a dict with 'x' (and 'y') tensors"
        )
    if y is not None and not isinstance(y, Tensor):
        try:
            y = torch.as_tensor(y)
        except (TypeError, ValueError, RuntimeError):
            raise DataError(f"{what}: labels of type {type(y).__name__} are not a tensor") from None
    if x.dtype in (torch.float64, torch.bool):
        x = x.to(torch.float32)
    if y is not None:
        y = prepare_labels(y, len(x), what)
    return x, y


Split = TensorSplit | LoaderSplit


@dataclass(frozen=True, eq=False)
class Dataset:
    """Evaluation / fine-tuning data: named splits, their class count and sample shape.

    Build one with :func:`core.training.data.load_data` (or
    :meth:`from_tensors`). ``num_classes`` is None for unlabeled data (and for a
    loader that does not say; the model's output width is used then).
    ``notes`` say how the splits were made (e.g. which were carved, and the seed).
    Equality is identity.
    """

    name: str
    num_classes: int | None
    input_shape: tuple[int, ...]
    sources: Mapping[str, Split] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SPLITS]
        if unknown:
            raise DataError(f"{self.name}: unknown split(s) {unknown}; splits are {SPLITS}")
        if not self.sources:
            raise DataError(f"{self.name}: no data")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))

    @classmethod
    def from_tensors(
        cls,
        name: str,
        splits: Mapping[str, tuple[Tensor, Tensor | None]],
        *,
        num_classes: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> Dataset:
        """A data set from ``{split: (x, y or None)}`` tensors (checked like a tensor file).

        ``num_classes`` defaults to the largest label + 1.
        """
        sources: dict[str, Split] = {}
        for split, (x, y) in splits.items():
            what = f"{name} ({split})"
            x = prepare_inputs(x, what)
            sources[split] = TensorSplit(x, None if y is None else prepare_labels(y, len(x), what))
        shapes = {tuple(s.x.shape[1:]) for s in sources.values() if isinstance(s, TensorSplit)}
        if len(shapes) > 1:
            raise DataError(f"{name}: splits have different sample shapes {sorted(shapes)}")
        labels = [s.y for s in sources.values() if isinstance(s, TensorSplit) and s.y is not None]
        if num_classes is None and labels:
            num_classes = max((int(y.max()) + 1 for y in labels if len(y)), default=0) or None
        for y in labels:
            if num_classes is not None and len(y) and int(y.max()) >= num_classes:
                raise DataError(f"{name}: label {int(y.max())} is not below {num_classes} classes")
        return cls(name, num_classes, shapes.pop() if shapes else (), sources, notes)

    def splits(self) -> tuple[str, ...]:
        """The splits that exist, among ``("train", "val", "test")`` in that order."""
        return tuple(s for s in SPLITS if s in self.sources)

    def source(self, split: str) -> Split:
        """The split's source.

        Raises:
            DataError: no such split.
        """
        found = self.sources.get(split)
        if found is None:
            have = ", ".join(self.splits())
            raise DataError(f"{self.name} has no {split!r} split (it has: {have})")
        return found

    def size(self, split: str) -> int | None:
        """Samples in the split; None for a loader of unknown length."""
        source = self.source(split)
        return len(source) if isinstance(source, TensorSplit) else source.size

    def has_labels(self, split: str) -> bool:
        """Whether the split's samples carry labels."""
        return self.source(split).labeled()

    def batch_count(self, split: str, batch_size: int) -> int | None:
        """Batches :meth:`batches` yields for the split (None: a loader of unknown length).

        A loader's own batching counts, not ``batch_size``.
        """
        source = self.source(split)
        if isinstance(source, TensorSplit):
            return math.ceil(len(source) / max(1, batch_size))
        return source.batch_count()

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[Tensor, Tensor | None]]:
        """``(inputs, labels or None)`` batches of the split, on the CPU.

        Held tensors come in batches of ``batch_size`` (the last may be smaller),
        in order or, with ``shuffle``, in an order drawn from ``generator``. A
        loader yields its own batches (its batch size and shuffling are its own).

        Raises:
            DataError: no such split, or ``batch_size`` below 1.
        """
        if batch_size < 1:
            raise DataError(f"batch size must be at least 1, got {batch_size}")
        source = self.source(split)
        if isinstance(source, TensorSplit):
            return source.batches(batch_size, shuffle, generator)
        return source.batches(f"{self.name} ({split})")

    def first(self, split: str, count: int) -> tuple[Tensor, Tensor | None]:
        """Up to ``count`` samples from the start of the split."""
        for x, y in self.batches(split, count):
            return x[:count], None if y is None else y[:count]
        raise DataError(f"{self.name}: the {split} split is empty")

    @property
    def description(self) -> str:
        """One line: ``digits: 1,293 train · 144 val · 360 test · 10 classes · 1×8×8``."""
        parts = []
        for split in self.splits():
            size = self.size(split)
            parts.append(f"{'?' if size is None else f'{size:,}'} {split}")
        if self.num_classes is not None:
            parts.append(f"{self.num_classes} classes")
        elif not any(self.has_labels(s) for s in self.splits()):
            parts.append("unlabeled")
        parts.append(shape_text(self.input_shape))
        return f"{self.name}: " + " · ".join(parts)
