"""Patterns: which units a method prunes, and how scores become a mask.

A pattern knows the *units* of a weight (single weights, channels along a
dim, groups of M, blocks), how many a weight has, how many a packed mask still
keeps, whether a shape fits, and how to turn an :class:`~core.pruning.importance.Importance`
into a bool mask, pruning the lowest scores first. It never modifies its inputs.

Matrix patterns view a weight of 2+ dimensions as ``(shape[0], prod(shape[1:]))``:
``(out, in)`` for Linear, ``(out, in*kh*kw)`` for Conv.

With a current mask, a pattern acts on what is still unpruned, as torch's
``PruningContainer`` does: entries still kept, channels not fully pruned,
blocks not fully pruned; the amount is relative to those.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from core.common.chunks import chunk_size
from core.common.errors import UnsupportedParameterError
from core.pruning.amounts import Amount, count_to_prune
from core.pruning.importance import Importance
from core.pruning.masks import PackedMask

Shape = tuple[int, ...]


# -- shapes -----------------------------------------------------------------------------


def require_dims(shape: Shape, minimum: int, what: str) -> None:
    """Raise :class:`UnsupportedParameterError` when ``shape`` has too few dimensions."""
    if len(shape) < minimum:
        raise UnsupportedParameterError(
            f"{what} needs a tensor with at least {minimum} dimensions, got shape {tuple(shape)}"
        )


def normalise_dim(dim: int, ndim: int, what: str) -> int:
    """Turn a negative ``dim`` into a positive one, checking bounds."""
    if not -ndim <= dim < ndim:
        raise UnsupportedParameterError(f"{what}: dim {dim} is out of range for a {ndim}-D tensor")
    return dim % ndim


def matrix_shape(shape: Shape) -> tuple[int, int]:
    """A shape of 2+ dimensions viewed as ``(shape[0], prod(shape[1:]))``."""
    return shape[0], math.prod(shape[1:])


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """View a weight of 2+ dimensions as ``(shape[0], prod(shape[1:]))``."""
    return t.reshape(t.shape[0], -1)


def _check_mask(shape: Shape, mask: PackedMask) -> None:
    if mask.shape != tuple(shape):
        raise UnsupportedParameterError(f"mask of shape {mask.shape} for a weight of {shape}")


def _read(mask: PackedMask, start: int, stop: int) -> np.ndarray:
    """Flat entries ``[start, stop)`` of ``mask`` as bools, from any ``start``."""
    aligned = start - start % 8
    return mask.chunk(aligned, stop)[start - aligned :]


def _rankable(scores: torch.Tensor) -> torch.Tensor:
    """Scores widened from half precision, so sums and comparisons are exact enough."""
    return scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores


# -- the patterns -----------------------------------------------------------------------


class Pattern(ABC):
    """The units a method prunes and the way it selects them (see module docstring)."""

    #: What one unit is called, e.g. ``"channels"``.
    unit: ClassVar[str]

    @abstractmethod
    def check(self, shape: Shape) -> None:
        """Raise :class:`UnsupportedParameterError` when a weight of ``shape`` does not fit."""

    @abstractmethod
    def units(self, shape: Shape) -> int:
        """How many units a weight of ``shape`` has (what a count refers to)."""

    @abstractmethod
    def remaining_units(self, shape: Shape, mask: PackedMask) -> int:
        """How many units are still (partly) kept under ``mask``, read chunk by chunk."""

    @abstractmethod
    def prune(
        self,
        t: torch.Tensor,
        current: torch.Tensor | None,
        importance: Importance,
        amount: Amount,
    ) -> torch.Tensor:
        """The new bool mask: ``amount`` of the remaining units with the lowest scores pruned.

        Patterns that fix their own count (N:M) ignore ``amount``.
        """


@dataclass(frozen=True)
class Entries(Pattern):
    """Single weights, wherever they are (unstructured)."""

    unit: ClassVar[str] = "weights"

    def check(self, shape: Shape) -> None:
        """Every shape fits, even an empty one."""

    def units(self, shape: Shape) -> int:
        return math.prod(shape)

    def remaining_units(self, shape: Shape, mask: PackedMask) -> int:
        _check_mask(shape, mask)
        return mask.kept

    def prune(
        self,
        t: torch.Tensor,
        current: torch.Tensor | None,
        importance: Importance,
        amount: Amount,
    ) -> torch.Tensor:
        def fresh(x: torch.Tensor) -> torch.Tensor:
            k = count_to_prune(amount, x.numel())
            mask = torch.ones(x.shape, dtype=torch.bool, device=x.device)
            if k:
                scores = importance.entry_scores(x).reshape(-1)
                mask.view(-1)[torch.topk(scores, k=k, largest=False).indices] = False
            return mask

        return restrict_unstructured(fresh, t, current)


@dataclass(frozen=True)
class Channels(Pattern):
    """Whole slices along ``dim``: rows / output channels (0), columns / inputs (1).

    ``by_kth_value`` selects torch's ``random_structured`` rule: keep the
    channels scoring above the k-th lowest score (so ties with it go too).
    Otherwise exactly ``size - k`` channels with the highest scores are kept,
    as torch's ``ln_structured`` keeps them.
    """

    dim: int = 0
    by_kth_value: bool = False

    unit: ClassVar[str] = "channels"

    def check(self, shape: Shape) -> None:
        require_dims(shape, 2, "structured pruning")
        normalise_dim(self.dim, len(shape), "structured pruning")

    def units(self, shape: Shape) -> int:
        self.check(shape)
        return shape[self.dim]

    def remaining_units(self, shape: Shape, mask: PackedMask) -> int:
        self.check(shape)
        _check_mask(shape, mask)
        return int(np.count_nonzero(live_slices(mask, self.dim % len(shape))))

    def prune(
        self,
        t: torch.Tensor,
        current: torch.Tensor | None,
        importance: Importance,
        amount: Amount,
    ) -> torch.Tensor:
        self.check(tuple(t.shape))
        dim = self.dim % t.dim()

        def fresh(x: torch.Tensor) -> torch.Tensor:
            size = x.shape[dim]
            k = count_to_prune(amount, size)
            if k == 0:
                return torch.ones(x.shape, dtype=torch.bool, device=x.device)
            scores = importance.channel_scores(x, dim)
            if self.by_kth_value:
                keep = scores > torch.kthvalue(scores, k=k).values
            else:
                keep = torch.topk(scores, k=size - k, largest=True).indices
            return channel_mask(x, dim, keep.to(x.device))

        return restrict_structured(fresh, t, current, dim)


@dataclass(frozen=True)
class NOfM(Entries):
    """Keep the ``n`` highest-scoring of every ``m`` consecutive inputs of each row.

    Its units are single weights, as for :class:`Entries`; the count is fixed by
    N:M, so the pattern takes no amount.
    """

    n: int = 2
    m: int = 4

    def check(self, shape: Shape) -> None:
        require_dims(shape, 2, "N:M sparsity")
        width = matrix_shape(shape)[1]
        if width % self.m:
            raise UnsupportedParameterError(
                f"{self.n}:{self.m} sparsity needs an input width divisible by {self.m}; "
                f"this weight has {width} inputs per row"
            )

    def prune(
        self,
        t: torch.Tensor,
        current: torch.Tensor | None,
        importance: Importance,
        amount: Amount,
    ) -> torch.Tensor:
        self.check(tuple(t.shape))
        matrix = as_matrix(t)
        rows, width = matrix.shape
        groups = (rows, width // self.m, self.m)
        scores = _rankable(importance.entry_scores(matrix)).reshape(groups)
        if current is not None:
            # Already pruned weights never win a slot over kept ones.
            scores = scores.masked_fill(~current.reshape(groups), -math.inf)
        keep = torch.zeros(scores.shape, dtype=torch.bool, device=t.device)
        if self.n:
            keep.scatter_(-1, scores.topk(self.n, dim=-1).indices, True)
        mask = keep.reshape(t.shape)
        return mask if current is None else mask & current


@dataclass(frozen=True)
class Blocks(Pattern):
    """Whole ``rows`` x ``cols`` blocks of the weight matrix (edge blocks may be smaller)."""

    rows: int = 4
    cols: int = 4

    unit: ClassVar[str] = "blocks"

    def check(self, shape: Shape) -> None:
        require_dims(shape, 2, "block sparsity")

    def units(self, shape: Shape) -> int:
        self.check(shape)
        return math.prod(block_grid(matrix_shape(shape), self.rows, self.cols))

    def remaining_units(self, shape: Shape, mask: PackedMask) -> int:
        self.check(shape)
        _check_mask(shape, mask)
        rows, cols = matrix_shape(shape)
        # Bands of whole block rows, about one chunk each, read from the packed bits.
        band = self.rows * max(1, chunk_size() // max(1, self.rows * cols))
        live = 0
        for top in range(0, rows, band):
            bottom = min(rows, top + band)
            part = torch.from_numpy(_read(mask, top * cols, bottom * cols))
            live += int(live_blocks(part.view(bottom - top, cols), self.rows, self.cols).sum())
        return live

    def prune(
        self,
        t: torch.Tensor,
        current: torch.Tensor | None,
        importance: Importance,
        amount: Amount,
    ) -> torch.Tensor:
        self.check(tuple(t.shape))
        matrix = as_matrix(t)
        rows, cols = matrix.shape
        grid = block_grid((rows, cols), self.rows, self.cols)
        scores = importance.block_scores(as_blocks(matrix, self.rows, self.cols))
        scores = scores.reshape(-1).to(t.device)
        if current is None:
            live = torch.ones_like(scores, dtype=torch.bool)
        else:
            live = live_blocks(as_matrix(current), self.rows, self.cols).reshape(-1)
        k = count_to_prune(amount, int(live.sum()))
        block_keep = live.clone()
        if k:
            ranked = scores.masked_fill(~live, math.inf)
            block_keep[torch.topk(ranked, k=k, largest=False).indices] = False
        expanded = block_keep.view(grid).repeat_interleave(self.rows, 0)
        expanded = expanded.repeat_interleave(self.cols, 1)
        mask = expanded[:rows, :cols].reshape(t.shape).to(t.device)
        return mask if current is None else mask & current


# -- block grid ---------------------------------------------------------------------------


def block_grid(matrix: tuple[int, int], rows: int, cols: int) -> tuple[int, int]:
    """How many blocks of ``rows`` x ``cols`` cover a ``matrix`` shape, down and across."""
    return math.ceil(matrix[0] / rows), math.ceil(matrix[1] / cols)


def as_blocks(matrix: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``matrix`` zero-padded and viewed as ``(grid_rows, rows, grid_cols, cols)``."""
    height, width = matrix.shape
    grid = block_grid((height, width), rows, cols)
    padded = F.pad(matrix, (0, grid[1] * cols - width, 0, grid[0] * rows - height))
    return padded.reshape(grid[0], rows, grid[1], cols)


def live_blocks(kept: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Per block of a bool matrix: whether it keeps any entry (``(grid_rows, grid_cols)``)."""
    return as_blocks(kept, rows, cols).any(dim=3).any(dim=1)


# -- channels -------------------------------------------------------------------------------


def live_slices(mask: PackedMask, dim: int) -> np.ndarray:
    """Per slice along ``dim``: whether ``mask`` keeps any of its entries, chunk by chunk.

    Flat entry ``i`` lies in run ``i // inner`` (``inner`` = entries after ``dim``)
    and slice ``run % size``: each chunk is reduced to one flag per run, the
    runs folded onto the slices.
    """
    size = mask.shape[dim]
    inner = math.prod(mask.shape[dim + 1 :])
    live = np.zeros(size, dtype=bool)
    for start, chunk in mask.chunks():
        first, flags = _runs_any(chunk, start, inner)
        live |= _fold(flags, first, size)
    return live


def _runs_any(chunk: np.ndarray, start: int, length: int) -> tuple[int, np.ndarray]:
    """For a chunk at flat ``start``: the first run it touches and, per run, any True."""
    if length == 1:
        return start, chunk
    head = (-start) % length  # entries before the first run boundary inside the chunk
    starts = np.arange(head, chunk.size, length)
    if head:
        starts = np.concatenate(([0], starts))
    return start // length, np.logical_or.reduceat(chunk, starts)


def _fold(flags: np.ndarray, first: int, size: int) -> np.ndarray:
    """Per slice, any of runs ``first, first + 1, ...`` (run ``r`` lies in slice ``r % size``)."""
    offset = first % size
    end = offset + flags.size
    padded = np.zeros(-(-end // size) * size, dtype=bool)
    padded[offset:end] = flags
    return np.asarray(padded.reshape(-1, size).any(axis=0))


def channel_mask(t: torch.Tensor, dim: int, keep: torch.Tensor) -> torch.Tensor:
    """A bool mask of ``t``'s shape keeping the channels selected by ``keep`` along ``dim``."""
    mask = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    index: list[Any] = [slice(None)] * t.dim()
    index[dim] = keep
    mask[tuple(index)] = True
    return mask


# -- acting on what remains ---------------------------------------------------------------


def restrict_unstructured(
    fresh: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, current: torch.Tensor | None
) -> torch.Tensor:
    """Apply ``fresh`` (a mask function of one tensor) to the still-kept entries only."""
    if current is None:
        return fresh(t)
    partial = fresh(t[current])
    new = current.clone()
    new[current] = partial
    return new


def restrict_structured(
    fresh: Callable[[torch.Tensor], torch.Tensor],
    t: torch.Tensor,
    current: torch.Tensor | None,
    dim: int,
) -> torch.Tensor:
    """Apply ``fresh`` to the channels along ``dim`` that are not fully pruned."""
    if current is None:
        return fresh(t)
    other = [d for d in range(t.dim()) if d != dim]
    live = current.sum(dim=other) != 0
    index: list[Any] = [slice(None)] * t.dim()
    index[dim] = live
    slc = tuple(index)
    partial = fresh(t[slc]) & current[slc]
    new = current.clone()
    new[slc] = partial
    return new
