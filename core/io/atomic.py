"""Atomic file writes: a crash, a kill or a full disk never leaves a broken file.

:func:`atomic_write` hands out a temporary file in the target's folder; only
when the writer finished is it flushed, fsynced and renamed over the target
(a rename within one folder is atomic), and the folder is fsynced so the
rename itself survives a power cut. Until then the previous file, if any, is
untouched. A failure, an exception or a cancelled job removes the temporary
file; a process killed outright (SIGKILL) leaves it behind, hidden
(``.NAME.XXXXXXXX.tmp``), never in place of the target.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from core.common.errors import DiskSpaceError, PruningError

#: Errors that mean the disk (or the user's quota) is full.
_FULL = {errno.ENOSPC, errno.EDQUOT}


def temporary_name(path: Path) -> Path:
    """A fresh hidden name beside ``path`` for its temporary file."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file (seekable) whose contents replace ``path`` once the block ends.

    Raises:
        DiskSpaceError: the disk or quota is full (nothing is replaced).
        PruningError: any other failure to write (the message names the file).
        Whatever the block raises, after the temporary file is removed.
    """
    path = Path(path)
    handle, temporary = _create_temporary(path)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, PruningError):
            raise write_error(path, exc) from exc
        raise
    fsync_folder(path.parent)


def _create_temporary(path: Path) -> tuple[BinaryIO, Path]:
    """Open a new temporary file beside ``path`` (created with the usual permissions)."""
    for _ in range(16):
        temporary = temporary_name(path)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(path, exc) from exc
        return os.fdopen(fd, "wb"), temporary
    raise PruningError(f"{path}: could not create a temporary file beside it")


def write_error(path: Path, exc: OSError) -> PruningError:
    """The error to raise when writing ``path`` failed with ``exc``."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return DiskSpaceError(f"{path}: not written, the disk is full ({reason})")
    return PruningError(f"{path}: could not be written ({reason})")


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform can fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: folders cannot be opened; renames are durable there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the file itself is synced
    finally:
        os.close(fd)
