"""Getting models and pruned states in and out: checkpoints, recipes, torch's pruning format."""

from core.io.checkpoints import (
    FORMATS,
    SESSION_SUFFIX,
    SavedFiles,
    SavedSession,
    format_for_path,
    is_sparse_file,
    read_session,
    read_sparse,
    save,
    save_job,
)

__all__ = [
    "FORMATS",
    "SESSION_SUFFIX",
    "SavedFiles",
    "SavedSession",
    "format_for_path",
    "is_sparse_file",
    "read_session",
    "read_sparse",
    "save",
    "save_job",
]
