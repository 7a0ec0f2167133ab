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

The session keeps the undo history and the record of operations and delegates
the rest: reads to :class:`~core.pruning.session_view.SessionView` (its base),
the layers to :mod:`core.pruning.model_state`, mask moves to
:mod:`core.pruning.mask_application`, value writes to
:mod:`core.pruning.value_writes` and the watch for outside changes to
:mod:`core.pruning.outside_changes`.

Example:
    >>> session = PruningSession(model)
    >>> session.prune(["fc1.weight"], L1Unstructured(0.5))
    >>> session.undo()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from core.common.errors import PruningError
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, run_job
from core.pruning import mask_application, model_state, value_writes
from core.pruning.amounts import Amount
from core.pruning.changes import MaskMap
from core.pruning.global_prune import GlobalPlan
from core.pruning.history import DEFAULT_BUDGET, Entry, History
from core.pruning.mask_application import zero_pruned as zero_pruned
from core.pruning.masks import PackedMask
from core.pruning.methods import PruningMethod
from core.pruning.model_state import SPILL_THRESHOLD as SPILL_THRESHOLD
from core.pruning.model_state import ModelState as ModelState
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
from core.pruning.outside_changes import TensorWatch, follow_replaced_parameters
from core.pruning.session_view import SessionView

ChangeListener = Callable[[tuple[str, ...]], None]
T = TypeVar("T")


class PruningSession(SessionView):
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
        self._committed: list[Operation] = []
        # Not a bound method: a history pointing back at its session would make a cycle,
        # and a replaced model would wait for Python's full collection to be freed.
        self.history = History(history_budget, on_drop=_committer(self._committed))
        self._listeners: list[ChangeListener] = []
        self._watch = TensorWatch()
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
        mask_application.put_masks(state, masks, originals, floors)

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
        added = model_state.add_layers(state, names, coupled=coupled)
        if added and live:
            self._remember_values()
            self._notify(added)
        return added

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
        followed = follow_replaced_parameters(self._state)
        changed = tuple(dict.fromkeys([*followed, *self._watch.changed(self.model)]))
        if changed:
            self.apply(OutsideChange(changed))
        return changed

    def _remember_values(self) -> None:
        self._watch.remember(self.model)

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
        return value_writes.read_values(self.model, names)

    def write_values_job(
        self, values: Mapping[str, torch.Tensor], token: CancelToken = NEVER_CANCELLED
    ) -> Job[dict[str, torch.Tensor]]:
        """Write new values into parameters or buffers; all or nothing.

        Pruned entries of prunable parameters stay zero (the mask holds), and
        the stored originals of their kept entries are re-based. Buffers written
        here are watched for outside changes from then on. Returns CPU copies of
        the values before.
        """
        before = yield from value_writes.write_values_job(
            self._state, values, self.unpruned_copy, token
        )
        parameters = dict(self.model.named_parameters(remove_duplicate=False))
        self._watch.watch_buffers(name for name in values if name not in parameters)
        return before

    def adopt_values(self, names: Iterable[str]) -> None:
        """Take the live values of ``names`` as they are (after an outside change)."""
        for name in names:
            if self.prunes(name):
                param = self._layer(name).param
                value_writes.write_value(self._state, name, param, param.detach().clone())

    def new_state(self, model: nn.Module, targets: Iterable[str] | None = None) -> ModelState:
        """A fresh, unpruned state for ``model`` with this session's target options."""
        return model_state.new_model_state(
            model, self.target_options, targets, spill=self._spill, spill_dir=self._spill_dir
        )

    def swap_state(self, state: ModelState) -> None:
        """Make ``state`` the live one (model replacement and its undo)."""
        old = self._state
        self._state = state
        self._notify(tuple(dict.fromkeys((*old.layers, *state.layers))))

    def commit_masks_job(self, new: MaskMap, token: CancelToken = NEVER_CANCELLED) -> Job[MaskMap]:
        """Move the given layers to new masks; all or nothing. Returns the masks before."""
        return (yield from mask_application.commit_masks_job(self._state, new, token))

    # -- internals ------------------------------------------------------------
    def _notify(self, names: tuple[str, ...]) -> None:
        for listener in list(self._listeners):
            listener(names)


def _committer(committed: list[Operation]) -> Callable[[Entry, bool], None]:
    """A history's ``on_drop``: an applied entry it forgets joins ``committed``."""

    def on_drop(entry: Entry, applied: bool) -> None:
        if applied:
            committed.append(entry.op.recipe_step())

    return on_drop
