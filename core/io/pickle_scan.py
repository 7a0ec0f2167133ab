"""What a pickle holds, found without running it.

``torch.load(weights_only=True)`` is tried first; when it refuses, the classes
and functions the pickle refers to are listed statically (torch's own checker
for ``torch.save`` archives, an opcode scan for plain and legacy pickles), so
the loader can ask the user to trust the file before anything of it runs.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.common.errors import PruningError, first_line

#: torch's notice when its weights-only unpickler reads a plain pickle (not torch.save's zip).
_PROTOCOL_NOTICE = "Detected pickle protocol"


@dataclass(frozen=True)
class Unsafe:
    """A pickle that the weights-only unpickler refused: it refers to these classes."""

    classes: tuple[str, ...]


def load_weights_only(path: Path) -> Any:
    """``torch.load(weights_only=True)`` (memory-mapped when the format allows).

    Returns :class:`Unsafe` when the file needs full unpickling (nothing of
    it ran), else what the file holds.

    Raises:
        PruningError: the file is not a readable torch file or pickle.
    """
    is_zip = zipfile.is_zipfile(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _PROTOCOL_NOTICE, UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:  # corrupted or foreign files raise many types
        refused = exc
    classes = _pickle_globals(path, is_zip)
    if classes:
        return Unsafe(classes)
    raise PruningError(
        f"{path.name}: could not be read as a PyTorch file ({first_line(refused)})"
    ) from refused


def _pickle_globals(path: Path, is_zip: bool) -> tuple[str, ...]:
    """Classes and functions a pickle refers to that torch does not allow, found statically."""
    if is_zip:
        try:
            return tuple(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:  # not a torch.save archive: no pickle to look into
            return ()
    return _raw_pickle_globals(path)


def _raw_pickle_globals(path: Path) -> tuple[str, ...]:
    """The globals of a plain pickle (or torch's legacy format), without unpickling.

    torch's own helpers for rebuilding tensors are left out; what remains is
    what the weights-only unpickler refuses (model classes, functions).
    """
    import pickletools

    found: list[str] = []
    with path.open("rb") as handle:
        while True:  # torch's legacy format is several pickles in a row
            start = handle.tell()
            try:
                found.extend(_globals_of_one_pickle(pickletools.genops(handle)))
            except Exception:  # the end of the pickles (raw storages follow) or a broken file
                break
            if handle.tell() == start:
                break
    internal = ("torch._utils.", "collections.OrderedDict", "builtins.")
    return tuple(
        dict.fromkeys(
            name for name in found if not name.startswith(internal) and not name.endswith("Storage")
        )
    )


def _globals_of_one_pickle(ops: Iterator[tuple[Any, Any, int | None]]) -> list[str]:
    """``module.name`` of each GLOBAL, INST and STACK_GLOBAL in one pickle's opcodes."""
    found: list[str] = []
    strings: list[str] = []  # string pushes, memoised ones fetched back, for STACK_GLOBAL
    memo: dict[int, str] = {}
    last: str | None = None
    for op, arg, _ in ops:
        name = op.name
        if name in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
        elif name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        elif name == "MEMOIZE" and last is not None:
            memo[len(memo)] = last
        elif name in ("BINPUT", "LONG_BINPUT", "PUT") and last is not None:
            memo[int(arg)] = last
        elif name in ("BINGET", "LONG_BINGET", "GET") and int(arg) in memo:
            strings.append(memo[int(arg)])
        last = arg if isinstance(arg, str) and name.endswith("UNICODE") else None
        if last is not None:
            strings.append(last)
    return found
