"""A pruning session: a model, the masks of its prunable parameters, and history.

The model stays a plain ``nn.Module``: its weights hold the pruned (effective)
values, so forward needs no hooks and ``copy.deepcopy``/``pickle`` work. Masks
are bit-packed; the original values of pruned weights are kept in a
:class:`~core.pruning.vault.ValueVault` (memory, or disk for big models), so every
operation can be undone and the original, mask and effective views of any
layer can be shown. Only :meth:`PruningSession.make_permanent` drops originals.

Example:
    >>> session = PruningSession(model)
    >>> session.prune(["fc1.weight"], L1Unstructured(0.5))
    >>> session.undo()
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from core.common.chunks import chunk_ranges
from core.common.errors import NonFiniteWeightsError, PruningError, UnknownParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job, scaled
from core.common.tensors import writable_flat
from core.pruning.amounts import Amount, count_to_prune
from core.pruning.global_prune import GlobalLayer, GlobalPlan, build_masks, plan_global
from core.pruning.history import Entry, History, MaskMap
from core.pruning.masks import PackedMask
from core.pruning.methods import PruningMethod
from core.pruning.operations import GlobalPrune, LayerPrune, MakePermanent, Mode, Operation, Reset
from core.pruning.targets import TargetInfo, find_targets
from core.pruning.vault import ValueVault

#: Models whose prunable weights exceed this many bytes spill originals to disk.
SPILL_THRESHOLD = 256 << 20

ChangeListener = Callable[[tuple[str, ...]], None]


@dataclasses.dataclass
class _Layer:
    info: TargetInfo
    param: nn.Parameter
    mask: PackedMask | None = None  # None: nothing pruned
    floor: PackedMask | None = None  # pruned for good by make_permanent


class PruningSession:
    """Wraps a model for undoable, inspectable pruning (see module docstring).

    Args:
        model: any ``nn.Module``; pruned in place.
        targets: restrict pruning to these parameter names (default: all found).
        include_bias, include_embeddings, include_other: widen the default
            targets (Linear/Conv weights) to biases, embeddings, other 2+-D params.
        example_input: an input for FLOP counting (optional).
        spill: keep original values on disk (default: only for big models).
        spill_dir: where the temporary spill folder goes.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        targets: Iterable[str] | None = None,
        include_bias: bool = False,
        include_embeddings: bool = False,
        include_other: bool = False,
        example_input: torch.Tensor | None = None,
        spill: bool | None = None,
        spill_dir: str | None = None,
    ) -> None:
        self.model = model
        self.example_input = example_input
        #: How targets were chosen, so a recipe can rebuild the same session.
        self.target_options = {
            "include_bias": include_bias,
            "include_embeddings": include_embeddings,
            "include_other": include_other,
        }
        found = find_targets(
            model,
            include_bias=include_bias,
            include_embeddings=include_embeddings,
            include_other=include_other,
        )
        params = dict(model.named_parameters(remove_duplicate=False))
        self._aliases = {alias: info.name for info in found for alias in info.aliases}
        if targets is not None:
            wanted = [self._aliases.get(n, n) for n in targets]
            by_name = {info.name: info for info in found}
            for name in wanted:
                if name not in by_name:
                    raise UnknownParameterError(name, list(by_name))
            found = [by_name[name] for name in dict.fromkeys(wanted)]
        self._layers = {info.name: _Layer(info, params[info.name]) for info in found}
        total_bytes = sum(info.numel * _itemsize(info.dtype) for info in found)
        if spill is None:
            spill = total_bytes > SPILL_THRESHOLD
        self._vault = ValueVault(spill=spill, spill_dir=spill_dir)
        self.history = History()
        self._committed: list[Operation] = []
        self._listeners: list[ChangeListener] = []

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Release stashed originals and the spill folder. The model keeps its values."""
        self._vault.close()

    def __enter__(self) -> PruningSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def vault(self) -> ValueVault:
        """Where original values are kept."""
        return self._vault

    # -- reading --------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Prunable parameter names, in model order."""
        return list(self._layers)

    def info(self, name: str) -> TargetInfo:
        """What a parameter is and where it lives."""
        return self._layer(name).info

    def packed_mask(self, name: str) -> PackedMask | None:
        """The parameter's packed mask, or None when nothing is pruned."""
        return self._layer(name).mask

    def mask(self, name: str) -> torch.Tensor:
        """The parameter's mask as a bool tensor (True = kept) on the CPU."""
        layer = self._layer(name)
        if layer.mask is None:
            return torch.ones(layer.info.shape, dtype=torch.bool)
        return layer.mask.to_bool()

    def effective(self, name: str) -> torch.Tensor:
        """The live weights (pruned entries are zero). Do not modify in place."""
        return self._layer(name).param.detach()

    def original(self, name: str) -> torch.Tensor:
        """A copy of the parameter's original (unpruned) values."""
        layer = self._layer(name)
        copy = layer.param.detach().clone()
        saved = self._vault.saved(layer.info.name)
        if saved is not None:
            with writable_flat(copy) as flat:
                self._vault.restore(layer.info.name, flat, saved)
        return copy

    def sparsity(self, name: str) -> float:
        """Fraction of the parameter's entries that are pruned."""
        layer = self._layer(name)
        return 0.0 if layer.mask is None else layer.mask.sparsity

    def is_permanent(self, name: str) -> bool:
        """Whether some of the parameter's pruning was made permanent."""
        return self._layer(name).floor is not None

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(names)`` whenever masks of ``names`` change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- commands (synchronous conveniences over the jobs) -------------------
    def prune(
        self,
        targets: str | Sequence[str],
        method: PruningMethod,
        mode: Mode = "further",
    ) -> Entry:
        """Apply ``method`` to each target (see :class:`LayerPrune`)."""
        names = (targets,) if isinstance(targets, str) else tuple(targets)
        return self.apply(LayerPrune(names, method, mode))

    def global_prune(
        self,
        amount: Amount,
        targets: Sequence[str] | None = None,
        max_sparsity: dict[str, float] | None = None,
    ) -> Entry:
        """Prune ``amount`` of the remaining weights of ``targets`` by global |w| rank."""
        names = tuple(targets) if targets is not None else tuple(self._layers)
        return self.apply(GlobalPrune(names, amount, tuple((max_sparsity or {}).items())))

    def reset(self, targets: Sequence[str] | None = None) -> Entry:
        """Restore original weights of ``targets`` (default: all). Undoable."""
        return self.apply(Reset(tuple(targets) if targets is not None else tuple(self._layers)))

    def make_permanent(self, targets: Sequence[str] | None = None) -> None:
        """Bake zeros in and drop originals of ``targets``. **Cannot be undone**:
        it also clears the whole undo history."""
        names = tuple(targets) if targets is not None else tuple(self._layers)
        self.apply(MakePermanent(names))

    def apply(self, op: Operation) -> Entry:
        """Apply an operation synchronously (see :meth:`apply_job`)."""
        return run_job(self.apply_job(op))

    def undo(self) -> Entry:
        """Undo the last applied operation."""
        return run_job(self.undo_job())

    def redo(self) -> Entry:
        """Redo the last undone operation."""
        return run_job(self.redo_job())

    def goto(self, cursor: int) -> None:
        """Undo or redo until exactly ``cursor`` history entries are applied."""
        if not 0 <= cursor <= len(self.history.entries):
            raise IndexError(f"history position {cursor} is out of range")
        while self.history.cursor > cursor:
            self.undo()
        while self.history.cursor < cursor:
            self.redo()

    # -- jobs -------------------------------------------------------------------
    def apply_job(self, op: Operation, token: CancelToken = NEVER_CANCELLED) -> Job[Entry]:
        """A job applying ``op``; cancelled or failed, it leaves the session unchanged."""
        for name in op.targets:
            self._layer(name)
        if isinstance(op, MakePermanent):
            return (yield from self._make_permanent(op))
        new = yield from scaled(self.masks_job(op, token), 0.0, 0.6)
        before = yield from scaled(self._commit(new, token), 0.6, 1.0)
        entry = Entry(op, before, dict(new))
        self.history.push(entry)
        self._notify(tuple(new))
        return entry

    def masks_job(
        self, op: LayerPrune | GlobalPrune | Reset, token: CancelToken = NEVER_CANCELLED
    ) -> Job[MaskMap]:
        """A job computing the masks ``op`` would produce, changing nothing (a preview)."""
        if isinstance(op, LayerPrune):
            return (yield from self._layer_masks(op, token))
        if isinstance(op, GlobalPrune):
            plan = yield from scaled(self.global_plan_job(op, token), 0.0, 0.5)
            layers = self._global_layers(op)
            masks = yield from scaled(build_masks(layers, plan, token), 0.5, 1.0)
            return {name: self._with_floor(name, mask) for name, mask in masks.items()}
        if isinstance(op, Reset):
            return {name: self._layer(name).floor for name in op.targets}
        raise PruningError(f"{type(op).__name__} has no masks to preview")

    def global_plan_job(
        self, op: GlobalPrune, token: CancelToken = NEVER_CANCELLED
    ) -> Job[GlobalPlan]:
        """A job planning a global pruning: per-layer counts, before anything changes."""
        layers = self._global_layers(op)
        remaining = sum(layer.remaining for layer in layers)
        k = count_to_prune(op.amount, remaining, "global pruning")
        return (yield from plan_global(layers, k, token))

    def undo_job(self, token: CancelToken = NEVER_CANCELLED) -> Job[Entry]:
        """A job undoing the last applied operation."""
        if not self.history.can_undo():
            raise PruningError("nothing to undo")
        entry = self.history.entries[self.history.cursor - 1]
        yield from self._commit(entry.before, token)
        self.history.step_back()
        self._notify(tuple(entry.before))
        return entry

    def redo_job(self, token: CancelToken = NEVER_CANCELLED) -> Job[Entry]:
        """A job redoing the last undone operation."""
        if not self.history.can_redo():
            raise PruningError("nothing to redo")
        entry = self.history.entries[self.history.cursor]
        yield from self._commit(entry.after, token)
        self.history.step_forward()
        self._notify(tuple(entry.after))
        return entry

    # -- recipe -----------------------------------------------------------------
    @property
    def operations(self) -> list[Operation]:
        """Every operation that produced the current state, oldest first."""
        return [*self._committed, *(entry.op for entry in self.history.applied)]

    # -- internals ------------------------------------------------------------
    def _layer(self, name: str) -> _Layer:
        layer = self._layers.get(self._aliases.get(name, name))
        if layer is None:
            raise UnknownParameterError(name, list(self._layers))
        return layer

    def _notify(self, names: tuple[str, ...]) -> None:
        for listener in list(self._listeners):
            listener(names)

    def _with_floor(self, name: str, mask: PackedMask | None) -> PackedMask | None:
        floor = self._layer(name).floor
        if floor is not None:
            mask = floor if mask is None else mask & floor
        if mask is not None and mask.is_all_kept():
            return None
        return mask

    def _layer_masks(self, op: LayerPrune, token: CancelToken) -> Job[MaskMap]:
        masks: MaskMap = {}
        for i, name in enumerate(op.targets):
            token.check()
            layer = self._layer(name)
            if op.mode == "set":
                weights, current = self.original(name), None
            else:
                weights, current = layer.param.detach(), layer.mask
            if not bool(torch.isfinite(weights).all()):
                raise NonFiniteWeightsError(f"{name}: weights contain NaN or infinite values")
            try:
                new = op.method.compute_packed(weights, current, token)
            except PruningError as exc:
                raise type(exc)(f"{name}: {exc}") from exc
            masks[layer.info.name] = self._with_floor(name, new)
            yield Progress((i + 1) / len(op.targets), f"computed the mask of {name}")
        return masks

    def _global_layers(self, op: GlobalPrune) -> list[GlobalLayer]:
        targets = {self._layer(t).info.name for t in op.targets}
        caps = {self._layer(name).info.name: cap for name, cap in op.max_sparsity}
        for name in caps:
            if name not in targets:
                raise PruningError(f"{name}: capped but not among the global pruning targets")
        layers = []
        for name in dict.fromkeys(self._layer(t).info.name for t in op.targets):
            layer = self._layer(name)
            cap = None
            if name in caps:
                pruned = 0 if layer.mask is None else layer.mask.pruned
                cap = max(0, math.floor(caps[name] * layer.info.numel) - pruned)
            layers.append(GlobalLayer(name, layer.param.detach(), layer.mask, cap))
        return layers

    def _commit(self, new: MaskMap, token: CancelToken) -> Job[MaskMap]:
        """Move the given layers to new masks; all or nothing."""
        before: MaskMap = {name: self._layers[name].mask for name in new}
        self._vault.check_space(sum(self._bytes_to_stash(name, mask) for name, mask in new.items()))
        done: list[tuple[str, object]] = []
        try:
            for i, (name, mask) in enumerate(new.items()):
                token.check()
                done.append((name, self._transition(name, mask, token.check)))
                yield Progress((i + 1) / len(new), f"applied the mask of {name}")
            self._vault.flush()
        except BaseException:
            for name, segment in reversed(done):
                self._transition(name, before[name], None)
                if segment is not None:
                    self._vault.discard(name, segment)  # type: ignore[arg-type]
            raise
        return before

    def _bytes_to_stash(self, name: str, new: PackedMask | None) -> int:
        """Bytes of original values a move to ``new`` must stash (not stashed before)."""
        layer = self._layers[name]
        zeroed = _zeroed(layer, new)
        saved = self._vault.saved(name)
        if saved is not None:
            zeroed = zeroed.and_not(saved)
        return zeroed.kept * _itemsize(layer.info.dtype)

    def _transition(
        self, name: str, new: PackedMask | None, on_chunk: Callable[[], None] | None
    ) -> object:
        """Zero what ``new`` prunes (stashing originals first), restore what it keeps."""
        layer = self._layers[name]
        if new == layer.mask:
            return None
        to_zero = _zeroed(layer, new)
        to_restore = _zeroed_between(new, layer.mask, layer.info.shape)
        segment = None
        with writable_flat(layer.param) as flat:
            if to_zero.kept:
                segment = self._vault.stash(name, flat, layer.info.shape, to_zero, on_chunk)
                keep = new if new is not None else PackedMask.full(layer.info.shape, kept=False)
                for start, stop in chunk_ranges(flat.size):
                    # Multiplying by the 0/1 mask is branch-free (a masked store is 20x slower
                    # on random masks); weights are finite, so x * 0 is a zero.
                    np.multiply(flat[start:stop], keep.chunk(start, stop), out=flat[start:stop])
            if to_restore.kept:
                self._vault.restore(name, flat, to_restore)
        layer.mask = new
        return segment

    def _make_permanent(self, op: MakePermanent) -> Job[Entry]:
        for name in op.targets:
            layer = self._layer(name)
            layer.floor = layer.mask
            self._vault.forget(layer.info.name)
        yield Progress(1.0, "made pruning permanent")
        self._committed = [*self.operations, op]
        self.history.clear()
        self._notify(tuple(op.targets))
        return Entry(op, {}, {})


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _zeroed_between(
    old: PackedMask | None, new: PackedMask | None, shape: tuple[int, ...]
) -> PackedMask:
    """Entries kept by ``old`` and pruned by ``new`` (None means all kept)."""
    if new is None:
        return PackedMask.full(shape, kept=False)
    return PackedMask.or_none(old, shape).and_not(new)


def _zeroed(layer: _Layer, new: PackedMask | None) -> PackedMask:
    return _zeroed_between(layer.mask, new, layer.info.shape)
