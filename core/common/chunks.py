"""The one chunk size of the engine, and the ranges it cuts flat tensors into.

Big layers are processed in chunks of :data:`CHUNK` entries: big enough for
fast kernels, small enough to keep temporary buffers small. Callers read the
size through :func:`chunk_size` / :func:`chunk_ranges` at call time, so tests
shrink it by patching this module alone.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Entries per chunk (a multiple of 8, so chunks start on packed-mask byte boundaries).
CHUNK = 1 << 22


def chunk_size() -> int:
    """The current chunk size in entries."""
    return CHUNK


def chunk_ranges(numel: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each chunk of a flat tensor of ``numel`` entries."""
    size = CHUNK
    for start in range(0, numel, size):
        yield start, min(start + size, numel)
