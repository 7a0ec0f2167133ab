"""A pruning session: a model, the masks of its prunable parameters, and history.

The model stays a plain ``nn.Module``: its weights hold the pruned (effective)
values, so forward needs no hooks and ``copy.deepcopy``/``pickle`` work. Masks
are bit-packed; the original values of pruned weights are kept in a
:class:`~core.pruning.vault.ValueVault` (memory, or disk for big models), so
every operation can be undone and the original, mask and effective views of
any layer can be shown. Only :meth:`PruningSession.make_permanent` drops originals.

Operations are commands (:mod:`core.pruning.operations`): each does itself
through the small receiver API below (``commit_masks_job``, ``apply_floor``,
``write_values_job``, ``swap_state``, ...) and returns its undo data, which
the :class:`~core.pruning.history.History` keeps within a memory budget.

Weights changed behind the session's back (an optimiser step, ``p.data``
writes) are noticed before the next operation, undo or redo, through the
parameters' version counters, their storage pointers and a fingerprint of a
few sampled values each, and adopted as an :class:`OutsideChange` entry: the
stored originals are re-based and undo stops there, so stale values are never
written back. A ``.data`` write that changes none of the sampled values goes
unnoticed (the version counter does not see ``.data`` writes); changes made
through the optimiser or any in-place tensor operation are always noticed.

Example:
    >>> session = PruningSession(model)
    >>> session.prune(["fc1.weight"], L1Unstructured(0.5))
    >>> session.undo()
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from core.common.chunks import chunk_ranges
from core.common.errors import PruningError, UnknownParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job
from core.common.tensors import writable_flat
from core.pruning.amounts import Amount
from core.pruning.changes import MaskMap
from core.pruning.global_prune import GlobalPlan
from core.pruning.history import DEFAULT_BUDGET, Entry, History
from core.pruning.masks import PackedMask
from core.pruning.methods import PruningMethod
from core.pruning.operations import (
    GlobalPrune,
    LayerPrune,
    MakePermanent,
    MaskOperation,
    Mode,
    Operation,
    OutsideChange,
    PaintStroke,
    ReplaceModel,
    Reset,
    WeightUpdate,
)
from core.pruning.targets import TargetInfo, find_targets, target_info
from core.pruning.vault import ValueVault

#: Models whose prunable weights exceed this many bytes spill originals to disk.
SPILL_THRESHOLD = 256 << 20
#: Values sampled per parameter to notice ``.data`` writes.
_FINGERPRINT_SAMPLES = 64

ChangeListener = Callable[[tuple[str, ...]], None]
T = TypeVar("T")


@dataclasses.dataclass
class _Layer:
    info: TargetInfo
    param: nn.Parameter
    mask: PackedMask | None = None  # None: nothing pruned
    floor: PackedMask | None = None  # pruned for good by make_permanent


@dataclasses.dataclass(eq=False)
class ModelState:
    """One model with its prunable layers, their masks and the originals of pruned weights."""

    model: nn.Module
    layers: dict[str, _Layer]
    aliases: dict[str, str]
    vault: ValueVault
    #: Layers added by :meth:`PruningSession.add_targets` (biases and norm parameters a
    #: group prune holds at zero), not chosen by the target options.
    coupled: set[str] = dataclasses.field(default_factory=set)
    #: The dense model as it was before the first weight update changed kept values
    #: (see :meth:`PruningSession.unpruned_copy`); None until then.
    dense_reference: nn.Module | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the model's tensors plus the stashed originals."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors) + self.vault.stored_bytes()

    def close(self) -> None:
        """Release the stashed originals (the model keeps its values)."""
        self.vault.close()


@dataclasses.dataclass(frozen=True)
class _Seen:
    """What a parameter looked like after the session last touched it."""

    version: int
    pointer: int
    fingerprint: bytes


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
        history_budget: most bytes of undo data the history keeps.
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
        history_budget: int = DEFAULT_BUDGET,
    ) -> None:
        self.example_input = example_input
        #: How targets were chosen, so a recipe can rebuild the same session.
        self.target_options = {
            "include_bias": include_bias,
            "include_embeddings": include_embeddings,
            "include_other": include_other,
        }
        self._spill = spill
        self._spill_dir = spill_dir
        self._state = self.new_state(model, targets)
        self.history = History(history_budget, on_drop=self._on_drop)
        self._committed: list[Operation] = []
        self._listeners: list[ChangeListener] = []
        self._seen: dict[str, _Seen] = {}
        self._watched_buffers: set[str] = set()
        self._remember_values()

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        """Release stashed originals and the spill folder. The model keeps its values."""
        self.history.clear()
        self._state.close()

    def __enter__(self) -> PruningSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> nn.Module:
        """The model being pruned (replaced by :class:`ReplaceModel`)."""
        return self._state.model

    @property
    def state(self) -> ModelState:
        """The live model state (for operations; see :meth:`swap_state`)."""
        return self._state

    @property
    def vault(self) -> ValueVault:
        """Where original values are kept."""
        return self._state.vault

    # -- reading --------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Prunable parameter names, in model order."""
        return list(self._state.layers)

    @property
    def weight_names(self) -> list[str]:
        """The prunable parameters the target options chose (without the biases and norm
        parameters group pruning added): what global pruning ranks by default."""
        return [name for name in self._state.layers if name not in self._state.coupled]

    def prunes(self, name: str) -> bool:
        """Whether ``name`` is a prunable parameter of the session: one of :attr:`names`
        or another name of a tied tensor (every name :meth:`canonical` accepts).

        Parameters added by :meth:`add_targets` (the biases and norm parameters a group
        prune holds) count, though :attr:`weight_names` leaves them out. Module names,
        buffers and parameters that are not targets do not.
        """
        state = self._state
        return state.aliases.get(name, name) in state.layers

    def canonical(self, name: str) -> str:
        """The session's name of a prunable parameter (aliases of tied weights resolved)."""
        return self._layer(name).info.name

    def info(self, name: str) -> TargetInfo:
        """What a parameter is and where it lives."""
        return self._layer(name).info

    def packed_mask(self, name: str) -> PackedMask | None:
        """The parameter's packed mask, or None when nothing is pruned."""
        return self._layer(name).mask

    def floor(self, name: str) -> PackedMask | None:
        """What of the parameter is pruned for good (None: nothing was made permanent)."""
        return self._layer(name).floor

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
        """A copy of the parameter's original (unpruned) values.

        Kept entries are the live weights; pruned ones come from the vault.
        """
        layer = self._layer(name)
        copy = layer.param.detach().clone()
        saved = self.vault.saved(layer.info.name)
        if saved is not None and layer.mask is not None:
            # Only pruned entries: a value stashed for an entry kept today may be stale.
            with writable_flat(copy) as flat:
                self.vault.restore(layer.info.name, flat, saved.and_not(layer.mask))
        return copy

    def unpruned_copy(self) -> nn.Module:
        """A deep copy of the unpruned model: the original value of every pruned entry back.

        The dense reference: the teacher of distillation, the baseline of fidelity and
        of speed. Once a weight update (fine-tuning) changed kept values, it is the dense
        model as it was just before the first one, not today's kept values with the old
        pruned ones. Entries made permanent before that stay zero (their originals are
        gone). The session's own model is not touched.
        """
        if self._state.dense_reference is not None:
            return copy.deepcopy(self._state.dense_reference)
        model = copy.deepcopy(self.model)
        params = dict(model.named_parameters(remove_duplicate=False))
        with torch.no_grad():
            for name, layer in self._state.layers.items():
                if layer.mask is not None:
                    params[name].copy_(self.original(name))
        return model

    def sparsity(self, name: str) -> float:
        """Fraction of the parameter's entries that are pruned."""
        layer = self._layer(name)
        return 0.0 if layer.mask is None else layer.mask.sparsity

    def is_permanent(self, name: str) -> bool:
        """Whether some of the parameter's pruning was made permanent."""
        return self._layer(name).floor is not None

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(names)`` whenever masks or values of ``names`` change."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- commands (synchronous conveniences over the jobs) -------------------
    def prune(
        self,
        targets: str | Sequence[str],
        method: PruningMethod,
        mode: Mode = "further",
    ) -> Entry | None:
        """Apply ``method`` to each target (see :class:`LayerPrune`)."""
        names = (targets,) if isinstance(targets, str) else tuple(targets)
        return self.apply(LayerPrune(names, method, mode))

    def global_prune(
        self,
        amount: Amount,
        targets: Sequence[str] | None = None,
        max_sparsity: dict[str, float] | None = None,
    ) -> Entry | None:
        """Prune ``amount`` of the remaining weights of ``targets`` by global |w| rank."""
        names = tuple(targets) if targets is not None else tuple(self.weight_names)
        return self.apply(GlobalPrune(names, amount, tuple((max_sparsity or {}).items())))

    def paint(self, name: str, cells: Iterable[int] | np.ndarray, keep: bool) -> Entry | None:
        """Set the flat positions ``cells`` of ``name`` to kept or pruned (one undoable stroke).

        Returns None (and records nothing) when no entry changes state.
        """
        positions = cells if isinstance(cells, np.ndarray) else np.fromiter(cells, dtype=np.int64)
        return self.apply(PaintStroke(name, positions, keep))

    def update_weights(
        self, values: Mapping[str, torch.Tensor], description: str = "Update weights"
    ) -> Entry | None:
        """Give parameters or buffers new values (see :class:`WeightUpdate`). Undoable."""
        return self.apply(WeightUpdate(values, description))

    def replace_model(
        self, model: nn.Module, description: str = "Replace the model"
    ) -> Entry | None:
        """Replace the model (see :class:`ReplaceModel`). Undoable."""
        return self.apply(ReplaceModel(model, description))

    def reset(self, targets: Sequence[str] | None = None) -> Entry | None:
        """Restore original weights of ``targets`` (default: all). Undoable."""
        return self.apply(Reset(tuple(targets) if targets is not None else tuple(self.names)))

    def make_permanent(self, targets: Sequence[str] | None = None) -> None:
        """Bake zeros in and drop originals of ``targets``. **Cannot be undone**:
        it also clears the whole undo history."""
        names = tuple(targets) if targets is not None else tuple(self.names)
        self.apply(MakePermanent(names))

    def apply(self, op: Operation) -> Entry | None:
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
    def apply_job(self, op: Operation, token: CancelToken = NEVER_CANCELLED) -> Job[Entry | None]:
        """A job applying ``op``; cancelled or failed, it leaves the session unchanged.

        Returns the history entry, or None for an operation that cannot be
        undone or that changed nothing (an empty paint stroke: not recorded).
        """
        if not isinstance(op, OutsideChange):
            self.check_outside_changes()
        change = yield from self._watched_job(op.apply_job(self, token))
        if not op.undoable:
            self.history.clear(f"{op.label} (undo cannot go further back)")
            self._committed.append(op.recipe_step())
            self._notify(op.targets)
            return None
        if change is None:
            return None  # nothing changed (an empty paint stroke): nothing to record
        entry = Entry(op, change)
        self.history.push(entry)
        self._notify(change.names)
        return entry

    def masks_job(self, op: Operation, token: CancelToken = NEVER_CANCELLED) -> Job[MaskMap]:
        """A job computing the masks ``op`` would produce, changing nothing (a preview)."""
        if not isinstance(op, MaskOperation):
            raise PruningError(f"{type(op).__name__} has no masks to preview")
        return (yield from op.masks_job(self, token))

    def global_plan_job(
        self, op: GlobalPrune, token: CancelToken = NEVER_CANCELLED
    ) -> Job[GlobalPlan]:
        """A job planning a global pruning: per-layer counts, before anything changes."""
        return (yield from op.plan_job(self, token))

    def undo_job(self, token: CancelToken = NEVER_CANCELLED) -> Job[Entry]:
        """A job undoing the last applied operation."""
        self.check_outside_changes()
        if not self.history.can_undo():
            raise PruningError(f"nothing to undo. {self.history.reach()}")
        entry = self.history.entries[self.history.cursor - 1]
        yield from self._watched_job(entry.change.undo_job(self, token))
        self.history.step_back()
        self._notify(entry.change.names)
        return entry

    def redo_job(self, token: CancelToken = NEVER_CANCELLED) -> Job[Entry]:
        """A job redoing the last undone operation."""
        self.check_outside_changes()
        if not self.history.can_redo():
            raise PruningError("nothing to redo")
        entry = self.history.entries[self.history.cursor]
        yield from self._watched_job(entry.change.redo_job(self, token))
        self.history.step_forward()
        self._notify(entry.change.names)
        return entry

    def _watched_job(self, job: Job[T]) -> Job[T]:
        """Run a job that writes the model, then remember what the tensors look like."""
        try:
            return (yield from job)
        finally:
            self._remember_values()

    # -- recipe -----------------------------------------------------------------
    @property
    def operations(self) -> list[Operation]:
        """Every operation that produced the current state, oldest first."""
        return [*self._committed, *(entry.op for entry in self.history.applied)]

    def load_state(
        self,
        masks: Mapping[str, PackedMask | None],
        originals: Mapping[str, torch.Tensor] | None = None,
        floors: Mapping[str, PackedMask | None] | None = None,
        operations: Sequence[Operation] = (),
    ) -> None:
        """Put a saved state back on a fresh session (reopening a saved session).

        The model already holds the saved weights. ``masks`` become the layers'
        masks (pruned entries are zeroed). With ``originals`` (whole tensors of
        original values) a layer's pruned entries can be restored later;
        without, its pruning counts as made permanent. ``floors`` are the parts
        that were made permanent. ``operations`` become the record of how the
        state was made (the recipe); the undo history starts empty.

        Raises:
            PruningError: the session is not fresh, or a mask or original has the wrong shape.
            UnknownParameterError: a name the session does not prune.
        """
        if (
            self.history.entries
            or self._committed
            or any(layer.mask is not None for layer in self._state.layers.values())
        ):
            raise PruningError("a saved state can only be loaded into a fresh session")
        self.put_masks(self._state, masks, originals, floors)
        self._committed = list(operations)
        self.history.clear("Opened from a saved session")
        self._remember_values()
        self._notify(tuple(masks))

    def put_masks(
        self,
        state: ModelState,
        masks: Mapping[str, PackedMask | None],
        originals: Mapping[str, torch.Tensor] | None = None,
        floors: Mapping[str, PackedMask | None] | None = None,
    ) -> None:
        """Put masks on an unpruned ``state`` (a saved state, or a slimmed model's carried masks).

        Pruned entries are zeroed. With a layer's ``originals`` (a whole tensor of
        original values) its pruned entries can be restored later; without, its
        pruning counts as made permanent. ``floors`` are the parts made permanent.

        Raises:
            PruningError: a mask or original has the wrong shape.
            UnknownParameterError: a name the state does not prune.
        """
        originals, floors = originals or {}, floors or {}
        for name, mask in masks.items():
            layer = state.layers.get(state.aliases.get(name, name))
            if layer is None:
                raise UnknownParameterError(name, list(state.layers))
            if mask is None:
                continue
            shape = layer.info.shape
            floor = floors.get(name)
            for what, packed in (("mask", mask), ("permanent mask", floor)):
                if packed is not None and packed.shape != shape:
                    raise PruningError(
                        f"{name}: saved {what} has shape {packed.shape}, not {shape}"
                    )
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

    def add_targets(
        self, names: Iterable[str], state: ModelState | None = None, *, coupled: bool = True
    ) -> tuple[str, ...]:
        """Make more parameters of the model prunable, unpruned for now; the names added.

        Any floating-point parameter can be added, whatever the target options
        (group pruning adds the biases and norm scales and shifts it holds at
        zero). ``coupled`` targets stay out of :attr:`weight_names` (global
        pruning's default); ``coupled=False`` is for parameters the user made
        prunable (a wider choice of kinds). Names already prunable, or other names
        of a prunable tensor, are skipped. This is not an operation: nothing is
        pruned, so nothing is recorded, and undo does not take the targets away
        again. The layers stay in the model's parameter order. ``state``: another
        state than the live one.

        Raises:
            UnknownParameterError: a name that is not a floating-point parameter.
        """
        live = state is None
        state = self._state if state is None else state
        params = dict(state.model.named_parameters(remove_duplicate=False))
        added: list[str] = []
        for name in names:
            if state.aliases.get(name, name) in state.layers:
                continue
            try:
                info = target_info(state.model, name)
            except KeyError:
                raise UnknownParameterError(name, list(state.layers)) from None
            state.layers[name] = _Layer(info, params[name])
            state.aliases.update(dict.fromkeys(info.aliases, name))
            if coupled:
                state.coupled.add(name)
            added.append(name)
        if not added:
            return ()
        order = {name: i for i, name in enumerate(params)}
        state.layers = dict(sorted(state.layers.items(), key=lambda item: order[item[0]]))
        if live:
            self._remember_values()
            self._notify(tuple(added))
        return tuple(added)

    # -- outside changes ----------------------------------------------------------
    def check_outside_changes(self) -> tuple[str, ...]:
        """Adopt tensors changed behind the session's back (see module docstring).

        Watched: every parameter, and the buffers a weight update wrote. A
        prunable parameter replaced by another object is followed; one converted
        to another dtype or device loses its stored originals (its pruning becomes
        permanent), one with a new shape loses its mask. Returns the names found
        changed, recorded as one :class:`OutsideChange` (where undo stops).

        Raises:
            PruningError: a prunable parameter is gone from the model.
        """
        followed = self._follow_replaced_parameters()
        seen = {name: _seen(t) for name, t in self._watched().items()}
        changed = tuple(
            dict.fromkeys(
                [*followed, *(name for name, now in seen.items() if self._seen.get(name) != now)]
            )
        )
        if changed:
            self.apply(OutsideChange(changed))
        return changed

    def _watched(self) -> dict[str, torch.Tensor]:
        tensors: dict[str, torch.Tensor] = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        tensors.update({name: buffers[name] for name in self._watched_buffers if name in buffers})
        return tensors

    def _remember_values(self) -> None:
        self._seen = {name: _seen(t) for name, t in self._watched().items()}

    def _follow_replaced_parameters(self) -> list[str]:
        """Point layers at parameters replaced or converted outside; the names concerned."""
        params = dict(self.model.named_parameters(remove_duplicate=False))
        followed = []
        for name, layer in self._state.layers.items():
            param = params.get(name)
            if param is None:
                raise PruningError(
                    f"{name} is no longer a parameter of the model; open the model again"
                )
            info = layer.info
            now = (tuple(param.shape), param.dtype, param.device)
            if param is layer.param and now == (info.shape, info.dtype, info.device):
                continue
            followed.append(name)
            layer.param = param
            if now == (info.shape, info.dtype, info.device):
                continue
            layer.info = dataclasses.replace(info, shape=now[0], dtype=now[1], device=now[2])
            self.vault.forget(name)  # originals in the old dtype or shape cannot come back
            if now[0] != info.shape:
                layer.mask = layer.floor = None
            else:
                layer.floor = layer.mask
        return followed

    # -- the receiver API of operations ----------------------------------------------
    def apply_floor(self, name: str, mask: PackedMask | None) -> PackedMask | None:
        """``mask`` with what was made permanent kept pruned (None when nothing is pruned)."""
        floor = self._layer(name).floor
        if floor is not None:
            mask = floor if mask is None else mask & floor
        if mask is not None and mask.is_all_kept():
            return None
        return mask

    def make_floor(self, names: Iterable[str]) -> None:
        """Make the current pruning of ``names`` permanent and drop their originals."""
        for name in names:
            layer = self._layer(name)
            layer.floor = layer.mask
            self.vault.forget(layer.info.name)

    def read_values(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """CPU copies of the named parameters or buffers (state_dict names)."""
        tensors = self._tensors(names)
        return {name: t.detach().to("cpu", copy=True) for name, t in tensors.items()}

    def write_values_job(
        self, values: Mapping[str, torch.Tensor], token: CancelToken = NEVER_CANCELLED
    ) -> Job[dict[str, torch.Tensor]]:
        """Write new values into parameters or buffers; all or nothing.

        Pruned entries of prunable parameters stay zero (the mask holds), and
        the stored originals of their kept entries are re-based. Buffers written
        here are watched for outside changes from then on. Returns CPU copies of
        the values before.
        """
        tensors = self._tensors(values)
        for name, value in values.items():
            if tuple(value.shape) != tuple(tensors[name].shape):
                raise PruningError(
                    f"{name}: new values have shape {tuple(value.shape)}, "
                    f"the model's have {tuple(tensors[name].shape)}"
                )
        before = self.read_values(tensors)
        if self._state.dense_reference is None:  # kept values are about to change
            self._state.dense_reference = self.unpruned_copy()
        try:
            for i, (name, value) in enumerate(values.items()):
                token.check()
                self._write(name, tensors[name], value)
                yield Progress((i + 1) / len(values), f"updated {name}")
        except BaseException:
            for name, old in before.items():
                self._write(name, tensors[name], old)
            raise
        parameters = dict(self.model.named_parameters(remove_duplicate=False))
        self._watched_buffers.update(name for name in values if name not in parameters)
        return before

    def adopt_values(self, names: Iterable[str]) -> None:
        """Take the live values of ``names`` as they are (after an outside change)."""
        for name in names:
            if self.prunes(name):
                layer = self._layer(name)
                self._write(name, layer.param, layer.param.detach().clone())

    def new_state(self, model: nn.Module, targets: Iterable[str] | None = None) -> ModelState:
        """A fresh, unpruned state for ``model`` with this session's target options."""
        found = find_targets(model, **self.target_options)
        params = dict(model.named_parameters(remove_duplicate=False))
        aliases = {alias: info.name for info in found for alias in info.aliases}
        if targets is not None:
            wanted = [aliases.get(n, n) for n in targets]
            by_name = {info.name: info for info in found}
            for name in wanted:
                if name not in by_name:
                    raise UnknownParameterError(name, list(by_name))
            found = [by_name[name] for name in dict.fromkeys(wanted)]
        layers = {info.name: _Layer(info, params[info.name]) for info in found}
        total_bytes = sum(info.numel * _itemsize(info.dtype) for info in found)
        spill = self._spill if self._spill is not None else total_bytes > SPILL_THRESHOLD
        return ModelState(
            model, layers, aliases, ValueVault(spill=spill, spill_dir=self._spill_dir)
        )

    def swap_state(self, state: ModelState) -> None:
        """Make ``state`` the live one (model replacement and its undo)."""
        old = self._state
        self._state = state
        self._notify(tuple(dict.fromkeys((*old.layers, *state.layers))))

    # -- internals ------------------------------------------------------------
    def _layer(self, name: str) -> _Layer:
        state = self._state
        layer = state.layers.get(state.aliases.get(name, name))
        if layer is None:
            raise UnknownParameterError(name, list(state.layers))
        return layer

    def _tensors(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        known: dict[str, torch.Tensor] = dict(self.model.named_parameters(remove_duplicate=False))
        known.update(self.model.named_buffers(remove_duplicate=False))
        tensors: dict[str, torch.Tensor] = {}
        for name in names:
            if name not in known:
                raise UnknownParameterError(name, list(known))
            tensors[name] = known[name]
        return tensors

    def _write(self, name: str, tensor: torch.Tensor, value: torch.Tensor) -> None:
        """Copy ``value`` into ``tensor``; for a pruned layer keep pruned entries zero."""
        with torch.no_grad():
            tensor.copy_(value.to(tensor.device, tensor.dtype))
        if not self.prunes(name):
            return
        layer = self._layer(name)
        if layer.mask is None:
            self.vault.forget(layer.info.name)
            return
        self.vault.forget_positions(layer.info.name, layer.mask)
        with writable_flat(layer.param) as flat:
            zero_pruned(flat, layer.mask)

    def _notify(self, names: tuple[str, ...]) -> None:
        for listener in list(self._listeners):
            listener(names)

    def _on_drop(self, entry: Entry, applied: bool) -> None:
        if applied:
            self._committed.append(entry.op.recipe_step())

    def commit_masks_job(self, new: MaskMap, token: CancelToken = NEVER_CANCELLED) -> Job[MaskMap]:
        """Move the given layers to new masks; all or nothing. Returns the masks before."""
        layers = self._state.layers
        before: MaskMap = {name: layers[name].mask for name in new}
        vault = self.vault
        vault.check_space(sum(self._bytes_to_stash(name, mask) for name, mask in new.items()))
        done: list[tuple[str, object]] = []
        try:
            for i, (name, mask) in enumerate(new.items()):
                token.check()
                done.append((name, self._transition(name, mask, token.check)))
                yield Progress((i + 1) / len(new), f"applied the mask of {name}")
            vault.flush()
        except BaseException:
            for name, segment in reversed(done):
                self._transition(name, before[name], None)
                if segment is not None:
                    vault.discard(name, segment)  # type: ignore[arg-type]
            raise
        return before

    def _bytes_to_stash(self, name: str, new: PackedMask | None) -> int:
        """Bytes of original values a move to ``new`` must stash (not stashed before)."""
        layer = self._state.layers[name]
        zeroed = _zeroed(layer, new)
        saved = self.vault.saved(name)
        if saved is not None:
            zeroed = zeroed.and_not(saved)
        return zeroed.kept * _itemsize(layer.info.dtype)

    def _transition(
        self, name: str, new: PackedMask | None, on_chunk: Callable[[], None] | None
    ) -> object:
        """Zero what ``new`` prunes (stashing originals first), restore what it keeps."""
        layer = self._state.layers[name]
        if new == layer.mask:
            return None
        to_zero = _zeroed(layer, new)
        to_restore = _zeroed_between(new, layer.mask, layer.info.shape)
        segment = None
        with writable_flat(layer.param) as flat:
            if to_zero.kept:
                segment = self.vault.stash(name, flat, layer.info.shape, to_zero, on_chunk)
                keep = new if new is not None else PackedMask.full(layer.info.shape, kept=False)
                zero_pruned(flat, keep)
            if to_restore.kept:
                self.vault.restore(name, flat, to_restore)
        layer.mask = new
        return segment


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


def _seen(param: torch.Tensor) -> _Seen:
    """Version counter, storage pointer and a few sampled values of ``param``."""
    flat = param.detach().reshape(-1)
    if flat.numel() > _FINGERPRINT_SAMPLES:
        steps = torch.arange(_FINGERPRINT_SAMPLES, dtype=torch.int64)
        positions = steps * (flat.numel() - 1) // (_FINGERPRINT_SAMPLES - 1)
        flat = flat[positions.to(flat.device)]
    sample = flat.to("cpu", copy=True)
    if sample.dtype == torch.bfloat16:
        sample = sample.view(torch.int16)
    return _Seen(param._version, param.data_ptr(), sample.numpy().tobytes())
