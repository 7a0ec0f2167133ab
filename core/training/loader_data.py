"""Data from a user's code: ``package.module:function`` returning DataLoaders.

The function is called without arguments and returns ``(train, test)``,
``(train, test, val)`` or a dict with some of the keys ``train``, ``val``,
``test``. Each value is a re-iterable of batches (a DataLoader, a list), whose
items are ``(inputs, labels)``, inputs alone, or dicts (see
:class:`~core.training.dataset.LoaderSplit`). The loaders keep their own batch
size and shuffling; the first batch of each is read once here to learn the
sample shape and whether there are labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.io.references import FACTORY_PATTERN, import_callable
from core.training.dataset import DataError, Dataset, LoaderSplit, Split, shape_text, unpack_batch

CALLABLE_PATTERN = FACTORY_PATTERN
"""``package.module:function`` (the function may be a dotted attribute)."""

#: Keys of a returned dict, and the split each stands for.
_DICT_KEYS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def call_data_function(spec: str) -> Any:
    """Import ``package.module`` and call its function (no arguments).

    Raises:
        DataError: the module or function cannot be had, or the call fails.
    """
    try:
        function = import_callable(spec)
    except PruningError as exc:
        raise DataError(str(exc)) from exc
    try:
        return function()
    except Exception as exc:  # the user's code raises anything
        raise DataError(f"{spec}: calling it failed ({type(exc).__name__}: {exc})") from exc


def _named_iterables(spec: str, returned: Any) -> dict[str, Iterable[Any]]:
    """``{split: iterable}`` from what the function returned."""
    named: dict[str, Any] = {}
    if isinstance(returned, Mapping):
        for key, value in returned.items():
            split = _DICT_KEYS.get(str(key).lower())
            if split is None:
                raise DataError(
                    f"{spec}: returned a dict with key {key!r}; keys are train, val and test"
                )
            if value is not None:
                named[split] = value
    elif isinstance(returned, tuple | list) and len(returned) in (2, 3):
        for split, value in zip(("train", "test", "val"), returned, strict=False):
            if value is not None:
                named[split] = value
    else:
        raise DataError(
            f"{spec}: returned a {type(returned).__name__}; return (train, test), "
            "(train, test, val) or a dict with keys train, val, test (DataLoaders)"
        )
    if not named:
        raise DataError(f"{spec}: returned no data")
    for split, value in named.items():
        if not isinstance(value, Iterable):
            raise DataError(f"{spec}: the {split} data is a {type(value).__name__}, not iterable")
        if iter(value) is value:
            raise DataError(
                f"{spec}: the {split} data is an iterator, which runs out after one pass; "
                "return a DataLoader or a list of batches"
            )
    return named


def _sample_count(iterable: Any) -> int | None:
    """Samples in a DataLoader (``len(loader.dataset)``), when it says."""
    dataset = getattr(iterable, "dataset", None)
    try:
        return None if dataset is None else len(dataset)
    except TypeError:
        return None


def _class_count(iterable: Any) -> int | None:
    """Classes a loader or its dataset declares (``num_classes`` or ``classes``)."""
    for holder in (iterable, getattr(iterable, "dataset", None)):
        count = getattr(holder, "num_classes", None)
        if isinstance(count, int) and count > 0:
            return count
        classes = getattr(holder, "classes", None)
        if isinstance(classes, list | tuple) and classes:
            return len(classes)
    return None


def loader_data_job(spec: str, token: CancelToken) -> Job[Dataset]:
    """Call the function, check each loader's first batch, and wrap them in a Dataset.

    Raises:
        DataError: see :func:`call_data_function`; bad return value or batches;
            splits whose samples differ in shape.
    """
    token.check()
    yield Progress(0.0, f"calling {spec}")
    named = _named_iterables(spec, call_data_function(spec))
    sources: dict[str, Split] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    classes: set[int] = set()
    for i, (split, iterable) in enumerate(named.items()):
        token.check()
        what = f"{spec} ({split})"
        first = next(iter(iterable), None)
        if first is None:
            raise DataError(f"{what}: yields no batches")
        x, y = unpack_batch(first, what)
        if x.ndim == 0:
            raise DataError(f"{what}: inputs need a batch axis")
        shapes[split] = tuple(x.shape[1:])
        sources[split] = LoaderSplit(iterable, _sample_count(iterable), y is not None)
        count = _class_count(iterable)
        if count is not None:
            classes.add(count)
        yield Progress((i + 1) / len(named), f"read the first {split} batch")
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{s} {shape_text(shape)}" for s, shape in shapes.items())
        raise DataError(f"{spec}: the splits' samples have different shapes ({listed})")
    num_classes = max(classes) if classes else None
    return Dataset(spec, num_classes, next(iter(shapes.values())), sources)
