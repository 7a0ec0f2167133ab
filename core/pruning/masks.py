"""Bit-packed boolean masks: one bit per weight, 1 = kept.

Masks are never float copies of the weights (torch keeps a float mask the size
of the weight; we keep 1/32 of that for fp32). A :class:`PackedMask` is
immutable; chunked access lets big layers be processed without unpacking the
whole mask at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from core.common.chunks import chunk_ranges


def unpack_bits(bits: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Flat entries ``[start, stop)`` of packed ``bits`` as a bool array; ``start`` % 8 == 0."""
    if start % 8:
        raise ValueError("chunks must start on a byte boundary")
    return np.unpackbits(bits[start // 8 : (stop + 7) // 8], count=stop - start).view(bool)


def pack_into(bits: np.ndarray, start: int, keep: np.ndarray) -> None:
    """Write the bool chunk ``keep`` into packed ``bits`` at flat ``start`` (% 8 == 0)."""
    if start % 8:
        raise ValueError("chunks must start on a byte boundary")
    packed = np.packbits(keep)
    bits[start // 8 : start // 8 + packed.size] = packed


def empty_bits(numel: int) -> np.ndarray:
    """Zeroed packed bytes for ``numel`` entries (every entry False)."""
    return np.zeros((numel + 7) // 8, dtype=np.uint8)


class PackedMask:
    """An immutable boolean mask stored as packed bits (``numpy.packbits`` order)."""

    __slots__ = ("_bits", "_kept", "numel", "shape")

    def __init__(self, bits: np.ndarray, shape: Sequence[int], kept: int | None = None) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.numel = math.prod(self.shape)
        if bits.dtype != np.uint8 or bits.ndim != 1 or bits.size != (self.numel + 7) // 8:
            raise ValueError("packed bits do not match the mask shape")
        bits.setflags(write=False)
        self._bits = bits
        self._kept = kept

    # -- construction -------------------------------------------------------
    @classmethod
    def from_bool(cls, mask: torch.Tensor | np.ndarray) -> PackedMask:
        """Pack a boolean tensor or array (any device)."""
        if isinstance(mask, torch.Tensor):
            shape = tuple(mask.shape)
            array = mask.detach().to("cpu", torch.bool).contiguous().view(-1).numpy()
        else:
            shape = mask.shape
            array = np.ascontiguousarray(mask, dtype=bool).reshape(-1)
        return cls(np.packbits(array), shape)

    @classmethod
    def full(cls, shape: Sequence[int], kept: bool = True) -> PackedMask:
        """A mask with every entry kept (or every entry pruned)."""
        numel = math.prod(shape)
        bits = np.full((numel + 7) // 8, 0xFF if kept else 0, dtype=np.uint8)
        if kept and numel % 8:
            bits[-1] = (0xFF << (8 - numel % 8)) & 0xFF
        return cls(bits, shape, numel if kept else 0)

    # -- access ---------------------------------------------------------------
    @property
    def bits(self) -> np.ndarray:
        """The read-only packed bytes."""
        return self._bits

    @property
    def kept(self) -> int:
        """Number of kept (True) entries."""
        if self._kept is None:
            self._kept = int(np.bitwise_count(self._bits).sum(dtype=np.int64))
        return self._kept

    @property
    def pruned(self) -> int:
        """Number of pruned (False) entries."""
        return self.numel - self.kept

    @property
    def sparsity(self) -> float:
        """Fraction of entries pruned (0 for an empty tensor)."""
        return self.pruned / self.numel if self.numel else 0.0

    @property
    def nbytes(self) -> int:
        """Bytes used by the packed bits."""
        return int(self._bits.nbytes)

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Unpack flat entries ``[start, stop)`` as a bool array; ``start`` % 8 == 0."""
        return unpack_bits(self._bits, start, min(stop, self.numel))

    def to_numpy(self) -> np.ndarray:
        """The whole mask as a bool array of :attr:`shape`."""
        return self.chunk(0, self.numel).reshape(self.shape)

    def to_bool(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The whole mask as a bool tensor of :attr:`shape` on ``device``."""
        return torch.from_numpy(self.to_numpy()).to(device)

    def is_all_kept(self) -> bool:
        """True when no entry is pruned."""
        return self.kept == self.numel

    def is_kept(self, positions: np.ndarray) -> np.ndarray:
        """Whether each flat position in the int array ``positions`` is kept (bool array)."""
        shifts = (7 - (positions & 7)).astype(np.uint8)
        kept: np.ndarray = ((self._bits[positions >> 3] >> shifts) & 1).astype(bool)
        return kept

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, bool chunk)`` over the whole mask in :func:`chunk_ranges` order."""
        for start, stop in chunk_ranges(self.numel):
            yield start, self.chunk(start, stop)

    def _check_shape(self, other: PackedMask) -> None:
        if self.shape != other.shape:
            raise ValueError(f"mask shapes differ: {self.shape} vs {other.shape}")

    def __and__(self, other: PackedMask) -> PackedMask:
        self._check_shape(other)
        return PackedMask(np.bitwise_and(self._bits, other._bits), self.shape)

    def __or__(self, other: PackedMask) -> PackedMask:
        self._check_shape(other)
        return PackedMask(np.bitwise_or(self._bits, other._bits), self.shape)

    def and_not(self, other: PackedMask) -> PackedMask:
        """Entries set here and not in ``other`` (``self & ~other``)."""
        self._check_shape(other)
        return PackedMask(np.bitwise_and(self._bits, np.invert(other._bits)), self.shape)

    def __invert__(self) -> PackedMask:
        """Kept and pruned swapped."""
        return PackedMask.full(self.shape).and_not(self)

    @staticmethod
    def or_none(mask: PackedMask | None, shape: Sequence[int]) -> PackedMask:
        """``mask``, or an all-kept mask of ``shape`` where it is None (nothing pruned)."""
        return PackedMask.full(shape) if mask is None else mask

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedMask):
            return NotImplemented
        return self.shape == other.shape and np.array_equal(self._bits, other._bits)

    def __hash__(self) -> int:
        return hash((self.shape, self._bits.tobytes()))

    def __repr__(self) -> str:
        return f"PackedMask(shape={self.shape}, sparsity={self.sparsity:.4f})"


class MaskBuilder:
    """Fills a packed mask chunk by chunk (chunks must start on byte boundaries)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)
        self.numel = math.prod(self.shape)
        self._bits = empty_bits(self.numel)
        self._kept = 0

    def put(self, start: int, keep: np.ndarray) -> None:
        """Store the bool chunk ``keep`` for flat entries starting at ``start``."""
        pack_into(self._bits, start, keep)
        self._kept += int(np.count_nonzero(keep))

    def build(self) -> PackedMask:
        """The finished mask."""
        return PackedMask(self._bits, self.shape, self._kept)
