"""Telling model files apart by their content: sessions, safetensors, TorchScript, torch.save.

The loader (:mod:`core.io.loading`) opens a file by what it is, not by what its
name says, except for PruneScope's sessions, which are known by their suffix.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

SESSION_SUFFIX = ".prunescope"
"""Suffix of PruneScope's saved sessions (``core.io.checkpoints.SESSION_SUFFIX``)."""


def file_kind(path: Path) -> str:
    """``"session"``, ``"safetensors"``, ``"torchscript"`` or ``"torch"`` (torch.save or pickle)."""
    if path.suffix.lower() == SESSION_SUFFIX:
        return "session"
    if path.suffix.lower() == ".safetensors" or _looks_like_safetensors(path):
        return "safetensors"
    if zipfile.is_zipfile(path) and _is_torchscript(path):
        return "torchscript"
    return "torch"


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors header: an 8-byte little-endian length, then a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return bool(0 < length <= path.stat().st_size - 8)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive has a ``code/`` folder or ``constants.pkl`` in its top folder."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    inner = [name.split("/", 1)[1] for name in names if "/" in name]
    return any(name.startswith("code/") or name == "constants.pkl" for name in inner)


def is_sparse(path: Path) -> bool:
    """Whether ``path`` is PruneScope's sparse format."""
    from core.io.checkpoints import is_sparse_file

    return is_sparse_file(path)


def is_slim(path: Path) -> bool:
    """Whether ``path`` is PruneScope's slim format."""
    from core.io.checkpoints import is_slim_file

    return is_slim_file(path)
