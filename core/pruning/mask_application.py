"""Putting masks on a :class:`~core.pruning.model_state.ModelState`'s layers.

A move to a new mask zeroes the entries it prunes, stashing their original
values in the state's vault first, and restores the entries it keeps again
(:func:`commit_masks_job`, all or nothing). A saved state's masks go on a fresh
state with :func:`put_masks`. Pruned entries are always exactly +0.0
(:func:`zero_pruned`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from core.common.chunks import chunk_ranges
from core.common.errors import PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.common.tensors import writable_flat
from core.pruning.changes import MaskMap
from core.pruning.masks import PackedMask
from core.pruning.model_state import ModelState, PrunableLayer, itemsize


def commit_masks_job(
    state: ModelState, new: MaskMap, token: CancelToken = NEVER_CANCELLED
) -> Job[MaskMap]:
    """Move the given layers of ``state`` to new masks; all or nothing. Returns the masks before.

    Raises:
        DiskSpaceError: a spilling vault has no room for the originals to stash.
    """
    layers = state.layers
    before: MaskMap = {name: layers[name].mask for name in new}
    vault = state.vault
    vault.check_space(sum(_bytes_to_stash(state, name, mask) for name, mask in new.items()))
    done: list[tuple[str, object]] = []
    try:
        for i, (name, mask) in enumerate(new.items()):
            token.check()
            done.append((name, _transition(state, name, mask, token.check)))
            yield Progress((i + 1) / len(new), f"applied the mask of {name}")
        vault.flush()
    except BaseException:
        for name, segment in reversed(done):
            _transition(state, name, before[name], None)
            if segment is not None:
                vault.discard(name, segment)  # type: ignore[arg-type]
        raise
    return before


def put_masks(
    state: ModelState,
    masks: Mapping[str, PackedMask | None],
    originals: Mapping[str, torch.Tensor] | None = None,
    floors: Mapping[str, PackedMask | None] | None = None,
) -> None:
    """Put masks on an unpruned ``state`` (see
    :meth:`~core.pruning.session.PruningSession.put_masks`).

    Raises:
        PruningError: a mask or original has the wrong shape.
        UnknownParameterError: a name the state does not prune.
    """
    originals, floors = originals or {}, floors or {}
    for name, mask in masks.items():
        layer = state.layer(name)
        if mask is None:
            continue
        shape = layer.info.shape
        floor = floors.get(name)
        for what, packed in (("mask", mask), ("permanent mask", floor)):
            if packed is not None and packed.shape != shape:
                raise PruningError(f"{name}: saved {what} has shape {packed.shape}, not {shape}")
        original = originals.get(name)
        if original is None:
            floor = mask
        else:
            if tuple(original.shape) != shape:
                raise PruningError(
                    f"{name}: saved originals have shape {tuple(original.shape)}, not {shape}"
                )
            source = original.detach().to("cpu", layer.info.dtype).contiguous().clone()
            restorable = ~mask if floor is None else (~mask) & floor
            with writable_flat(source) as flat:
                state.vault.stash(layer.info.name, flat, shape, restorable)
        with writable_flat(layer.param) as flat:
            zero_pruned(flat, mask)
        layer.mask, layer.floor = mask, floor
    state.vault.flush()


def _bytes_to_stash(state: ModelState, name: str, new: PackedMask | None) -> int:
    """Bytes of original values a move to ``new`` must stash (not stashed before)."""
    layer = state.layers[name]
    zeroed = _zeroed(layer, new)
    saved = state.vault.saved(name)
    if saved is not None:
        zeroed = zeroed.and_not(saved)
    return zeroed.kept * itemsize(layer.info.dtype)


def _transition(
    state: ModelState, name: str, new: PackedMask | None, on_chunk: Callable[[], None] | None
) -> object:
    """Zero what ``new`` prunes (stashing originals first), restore what it keeps."""
    layer = state.layers[name]
    if new == layer.mask:
        return None
    to_zero = _zeroed(layer, new)
    to_restore = _zeroed_between(new, layer.mask, layer.info.shape)
    segment = None
    with writable_flat(layer.param) as flat:
        if to_zero.kept:
            segment = state.vault.stash(name, flat, layer.info.shape, to_zero, on_chunk)
            keep = new if new is not None else PackedMask.full(layer.info.shape, kept=False)
            zero_pruned(flat, keep)
        if to_restore.kept:
            state.vault.restore(name, flat, to_restore)
    layer.mask = new
    return segment


def _zeroed_between(
    old: PackedMask | None, new: PackedMask | None, shape: tuple[int, ...]
) -> PackedMask:
    """Entries kept by ``old`` and pruned by ``new`` (None means all kept)."""
    if new is None:
        return PackedMask.full(shape, kept=False)
    return PackedMask.or_none(old, shape).and_not(new)


def _zeroed(layer: PrunableLayer, new: PackedMask | None) -> PackedMask:
    return _zeroed_between(layer.mask, new, layer.info.shape)


def zero_pruned(flat: np.ndarray, mask: PackedMask) -> None:
    """Set the entries of ``flat`` that ``mask`` prunes to +0.0, chunk by chunk.

    The value bits are multiplied by the 0/1 mask as unsigned integers: branch-free
    (a masked store is 20x slower on random masks), and every pruned entry becomes
    exactly +0.0 whatever it held (a float ``x * 0`` keeps the sign, and is NaN for
    infinite or NaN ``x``).
    """
    bits = flat.view(np.dtype(f"u{flat.itemsize}"))
    for start, stop in chunk_ranges(flat.size):
        np.multiply(bits[start:stop], mask.chunk(start, stop), out=bits[start:stop])
