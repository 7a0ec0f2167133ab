"""Operations as commands: each kind knows how to do itself and what undo data it needs.

An operation is a frozen spec (what to do, to which parameters, how). Applied
to a session by :meth:`Operation.apply_job`, it returns a
:class:`~core.pruning.changes.Change` holding exactly the undo data it needs;
the session records it without knowing the operation's type. Specs are
serialisable (:meth:`Operation.to_dict`, :func:`operation_from_dict`), so the
replayable ones form a *recipe* that reproduces a pruned state on a fresh copy
of the model.

Kinds: mask operations (:class:`LayerPrune`, :class:`GlobalPrune`,
:class:`Reset`, :class:`PaintStroke`), :class:`MakePermanent` (cannot be
undone), :class:`WeightUpdate` (fine-tuning or any change to kept weights)
and :class:`ReplaceModel` (new shapes after physical slimming).
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from core.common.errors import NonFiniteWeightsError, PruningError
from core.common.jobs import CancelToken, Job, Progress, scaled
from core.pruning.amounts import Amount, count_to_prune, plain_amount, validate_amount
from core.pruning.changes import CellChange, Change, MaskChange, MaskMap, ModelSwap, set_cells
from core.pruning.global_prune import GlobalLayer, GlobalPlan, build_masks, plan_global
from core.pruning.masks import PackedMask
from core.pruning.methods import PruningMethod, make_method

if TYPE_CHECKING:
    from core.pruning.session import PruningSession

#: ``further``: prune a further amount of what remains (torch's semantics).
#: ``set``: recompute the layer's mask from its original weights so its
#: sparsity is exactly the amount (what a slider means).
Mode = Literal["further", "set"]
MODES: tuple[str, ...] = ("further", "set")


def _targets_label(targets: tuple[str, ...]) -> str:
    if len(targets) == 1:
        return targets[0]
    return f"{len(targets)} layers"


def all_finite(t: torch.Tensor) -> bool:
    """Whether every entry is finite: the extremes are (NaN propagates through them).

    Two reductions, no bool copy of the tensor (``isfinite(t).all()`` costs 3x).
    """
    if not t.numel():
        return True
    low, high = torch.aminmax(t)
    return bool(torch.isfinite(low)) and bool(torch.isfinite(high))


class Operation(ABC):
    """A command applied to a :class:`~core.pruning.session.PruningSession`."""

    #: Registry key in recipes.
    kind: ClassVar[str]
    #: False: applying it clears the undo history (nothing before it can be undone).
    undoable: ClassVar[bool] = True
    #: False: a recipe cannot reproduce it (it carries values, not a rule).
    replayable: ClassVar[bool] = True

    targets: tuple[str, ...]

    @property
    @abstractmethod
    def label(self) -> str:
        """Human label for history lists."""

    @abstractmethod
    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        """Do the operation; return its undo data (None: nothing changed, nothing to record)."""

    @property
    def nbytes(self) -> int:
        """Bytes of data the spec itself holds beyond a few names and numbers."""
        return 0

    def recipe_step(self) -> Operation:
        """What the recipe keeps of this operation once it cannot be undone any more."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form (see :func:`operation_from_dict`)."""
        return {"op": self.kind, "targets": list(self.targets)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        """Rebuild from :meth:`to_dict` output (``KeyError``/``TypeError`` on bad fields)."""
        return cls(tuple(data["targets"]))  # type: ignore[call-arg]


class MaskOperation(Operation):
    """An operation that moves layers to new masks; it can be previewed first."""

    @abstractmethod
    def masks_job(self, session: PruningSession, token: CancelToken) -> Job[MaskMap]:
        """The masks the operation would produce, changing nothing (a preview)."""

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        new = yield from scaled(self.masks_job(session, token), 0.0, 0.6)
        before = yield from scaled(session.commit_masks_job(new, token), 0.6, 1.0)
        return MaskChange(before, dict(new))


@dataclass(frozen=True)
class LayerPrune(MaskOperation):
    """Apply ``method`` to each target layer independently."""

    targets: tuple[str, ...]
    method: PruningMethod
    mode: Mode = "further"

    kind: ClassVar[str] = "layer_prune"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PruningError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not isinstance(self.method, PruningMethod):
            raise PruningError(f"not a pruning method: {self.method!r}")
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def nbytes(self) -> int:
        return self.method.nbytes

    @property
    def label(self) -> str:
        verb = "Set" if self.mode == "set" else "Prune"
        return f"{verb} {_targets_label(self.targets)}: {self.method.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "method": self.method.name,
            "params": self.method.params(),
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        method = make_method(data["method"], **data.get("params", {}))
        return cls(tuple(data["targets"]), method, data.get("mode", "further"))

    def masks_job(self, session: PruningSession, token: CancelToken) -> Job[MaskMap]:
        masks: MaskMap = {}
        for i, target in enumerate(self.targets):
            token.check()
            name = session.canonical(target)
            if self.mode == "set":
                weights, current = session.original(name), None
            else:
                weights, current = session.effective(name), session.packed_mask(name)
            if not all_finite(weights):
                raise NonFiniteWeightsError(f"{name}: weights contain NaN or infinite values")
            try:
                new = self.method.compute_packed(weights, current, token)
            except PruningError as exc:
                raise type(exc)(f"{name}: {exc}") from exc
            masks[name] = session.apply_floor(name, new)
            yield Progress((i + 1) / len(self.targets), f"computed the mask of {name}")
        return masks


@dataclass(frozen=True)
class GlobalPrune(MaskOperation):
    """Prune the smallest-|w| ``amount`` of all remaining weights across ``targets``.

    ``max_sparsity`` caps chosen layers (fraction of the layer's weights); the
    weights a capped layer cannot give are taken from the others.
    """

    targets: tuple[str, ...]
    amount: Amount
    max_sparsity: tuple[tuple[str, float], ...] = ()

    kind: ClassVar[str] = "global_prune"

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", plain_amount(self.amount, "global pruning"))
        validate_amount(self.amount, "global pruning")
        object.__setattr__(self, "targets", tuple(self.targets))
        caps = tuple(sorted((str(n), float(c)) for n, c in dict(self.max_sparsity).items()))
        for name, cap in caps:
            if not 0.0 <= cap <= 1.0:
                raise PruningError(f"{name}: maximum sparsity {cap} is outside [0, 1]")
        object.__setattr__(self, "max_sparsity", caps)

    @property
    def label(self) -> str:
        amount = (
            f"{self.amount:.1%}" if isinstance(self.amount, float) else f"{self.amount} weights"
        )
        return f"Global L1 {amount} over {_targets_label(self.targets)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "amount": self.amount,
            "max_sparsity": dict(self.max_sparsity),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        caps = tuple(dict(data.get("max_sparsity", {})).items())
        return cls(tuple(data["targets"]), data["amount"], caps)

    def plan_job(self, session: PruningSession, token: CancelToken) -> Job[GlobalPlan]:
        """Plan the pruning: per-layer counts, before anything changes."""
        layers = self._layers(session)
        remaining = sum(layer.remaining for layer in layers)
        k = count_to_prune(self.amount, remaining, "global pruning")
        return (yield from plan_global(layers, k, token))

    def masks_job(self, session: PruningSession, token: CancelToken) -> Job[MaskMap]:
        plan = yield from scaled(self.plan_job(session, token), 0.0, 0.5)
        masks = yield from scaled(build_masks(self._layers(session), plan, token), 0.5, 1.0)
        return {name: session.apply_floor(name, mask) for name, mask in masks.items()}

    def _layers(self, session: PruningSession) -> list[GlobalLayer]:
        targets = {session.canonical(t) for t in self.targets}
        caps = {session.canonical(name): cap for name, cap in self.max_sparsity}
        for name in caps:
            if name not in targets:
                raise PruningError(f"{name}: capped but not among the global pruning targets")
        layers = []
        for name in dict.fromkeys(session.canonical(t) for t in self.targets):
            mask = session.packed_mask(name)
            cap = None
            if name in caps:
                pruned = 0 if mask is None else mask.pruned
                cap = max(0, math.floor(caps[name] * session.info(name).numel) - pruned)
            layers.append(GlobalLayer(name, session.effective(name), mask, cap))
        return layers


@dataclass(frozen=True)
class Reset(MaskOperation):
    """Restore the targets' original weights (an undoable operation)."""

    targets: tuple[str, ...]

    kind: ClassVar[str] = "reset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def label(self) -> str:
        return f"Reset {_targets_label(self.targets)}"

    def masks_job(self, session: PruningSession, token: CancelToken) -> Job[MaskMap]:
        token.check()
        masks = {session.canonical(t): session.floor(t) for t in self.targets}
        yield Progress(1.0, "reset the masks")
        return masks


@dataclass(frozen=True, eq=False)
class PaintStroke(Operation):
    """Set single entries of one layer to kept (``keep``) or pruned: a paint stroke.

    ``cells`` are flat positions in the parameter. Only the entries whose state
    actually changes are recorded for undo; a stroke that changes nothing is
    not recorded at all. Entries pruned for good (made permanent) stay pruned.
    """

    target: str
    cells: np.ndarray = field(repr=False)
    keep: bool = False

    kind: ClassVar[str] = "paint"

    def __post_init__(self) -> None:
        cells = np.unique(np.asarray(self.cells, dtype=np.int64).reshape(-1))
        cells.setflags(write=False)
        object.__setattr__(self, "cells", cells)
        object.__setattr__(self, "keep", bool(self.keep))

    @property
    def targets(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.target,)

    @property
    def label(self) -> str:
        verb = "Restore" if self.keep else "Prune"
        return f"{verb} {self.cells.size} weight(s) of {self.target} by hand"

    @property
    def nbytes(self) -> int:
        return int(self.cells.nbytes)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "cells": self.cells.tolist(), "keep": self.keep}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        (target,) = data["targets"]
        return cls(target, np.asarray(data["cells"], dtype=np.int64), bool(data["keep"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PaintStroke):
            return NotImplemented
        return (self.target, self.keep) == (other.target, other.keep) and np.array_equal(
            self.cells, other.cells
        )

    def __hash__(self) -> int:
        return hash((self.target, self.keep, self.cells.tobytes()))

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        name = session.canonical(self.target)
        info = session.info(name)
        cells = self.cells
        if cells.size and (cells[0] < 0 or cells[-1] >= info.numel):
            raise PruningError(
                f"{name}: painted positions must lie in [0, {info.numel}), "
                f"got {int(cells[0])}..{int(cells[-1])}"
            )
        current = session.packed_mask(name)
        floor = session.floor(name)
        if self.keep and floor is not None:
            cells = cells[floor.is_kept(cells)]
        state = np.ones(cells.size, dtype=bool) if current is None else current.is_kept(cells)
        changed = cells[state != self.keep]
        token.check()
        if not changed.size:
            return None
        new = set_cells(current, info.shape, changed, self.keep)
        yield from session.commit_masks_job({name: session.apply_floor(name, new)}, token)
        return CellChange(name, changed, self.keep)


@dataclass(frozen=True)
class MakePermanent(Operation):
    """Bake the zeros in and drop the originals. This cannot be undone."""

    targets: tuple[str, ...]

    kind: ClassVar[str] = "make_permanent"
    undoable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def label(self) -> str:
        return f"Make permanent {_targets_label(self.targets)}"

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        token.check()
        session.make_floor(self.targets)
        yield Progress(1.0, "made pruning permanent")
        return None


class _NotReplayable(Operation):
    """Operations that carry values (not a rule) and cannot be rebuilt from a recipe."""

    replayable: ClassVar[bool] = False
    #: Why a recipe cannot hold it, for the error a recipe file with it gives.
    why: ClassVar[str]

    description: str

    @property
    def label(self) -> str:
        return self.description

    def recipe_step(self) -> Operation:
        # The recipe records that it happened; the values or model it carried are let go.
        return RecordedStep(self.kind, self.targets, self.description)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "description": self.description}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        raise PruningError(
            f"the recipe step {data.get('description', cls.kind)!r} cannot be replayed: {cls.why}"
        )


@dataclass(frozen=True, eq=False)
class WeightUpdate(_NotReplayable):
    """New values for parameters or buffers (fine-tuning, or any change to kept weights).

    ``values`` maps state_dict names to tensors of the same shape. On prunable
    parameters, pruned entries stay zero whatever the new values hold (the
    mask holds). Undo restores the exact values before; the stored originals
    of pruned weights stay as they are, those of kept weights are re-based.
    """

    values: Mapping[str, torch.Tensor] = field(repr=False)
    description: str = "Update weights"

    kind: ClassVar[str] = "weight_update"
    why: ClassVar[str] = (
        "it changed weight values (e.g. fine-tuning) that a recipe does not store; "
        "save a checkpoint of the model instead"
    )

    def __post_init__(self) -> None:
        copies = {str(k): v.detach().to("cpu", copy=True) for k, v in self.values.items()}
        if not copies:
            raise PruningError("a weight update needs at least one tensor")
        object.__setattr__(self, "values", copies)

    @property
    def targets(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.values)

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        from core.pruning.changes import ValueChange

        before = yield from session.write_values_job(dict(self.values), token)
        return ValueChange(before, dict(self.values))


@dataclass(frozen=True, eq=False)
class ReplaceModel(_NotReplayable):
    """Replace the session's model (e.g. physically slimmed, with new shapes).

    The new model's prunable parameters are found with the session's target
    options and start unpruned, except for ``masks``: bool tensors (True =
    kept) per parameter of the new model, which become its masks (a parameter
    outside the target options is made a target), with the whole ``originals``
    of those that have them (their pruned entries can be restored; without,
    that pruning counts as made permanent). Slimming carries the unstructured
    pruning of the kept entries over this way. Undo returns the previous model
    with its masks, originals and everything else as they were.
    """

    model: nn.Module = field(repr=False)
    description: str = "Replace the model"
    masks: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)
    originals: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)
    #: Per parameter with a permanent part: bool, False = pruned for good (like masks).
    floors: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)

    kind: ClassVar[str] = "replace_model"
    why: ClassVar[str] = "it replaced the model itself; save the new model instead"

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise PruningError(f"not a torch.nn.Module: {type(self.model).__name__}")
        masks = {str(k): v.detach().to("cpu", torch.bool) for k, v in self.masks.items()}
        originals = {str(k): v.detach().to("cpu") for k, v in self.originals.items()}
        for name in originals:
            if name not in masks:
                raise PruningError(f"{name}: originals are given without a mask")
        floors = {str(k): v.detach().to("cpu", torch.bool) for k, v in self.floors.items()}
        for name in floors:
            if name not in masks:
                raise PruningError(f"{name}: a permanent part is given without a mask")
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "originals", originals)
        object.__setattr__(self, "floors", floors)

    @property
    def targets(self) -> tuple[str, ...]:  # type: ignore[override]
        return ()

    @property
    def nbytes(self) -> int:
        tensors = (*self.masks.values(), *self.originals.values())
        return sum(t.numel() * t.element_size() for t in tensors)

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        token.check()
        before = session.state
        after = session.new_state(self.model)
        if self.masks:
            try:
                session.add_targets(self.masks, after)
                packed = {
                    name: None if bool(mask.all()) else PackedMask.from_bool(mask)
                    for name, mask in self.masks.items()
                }
                floors = {name: PackedMask.from_bool(f) for name, f in self.floors.items()}
                session.put_masks(after, packed, self.originals, floors)
            except BaseException:
                after.close()
                raise
        session.swap_state(after)
        yield Progress(1.0, "replaced the model")
        return ModelSwap(before, after)


@dataclass(frozen=True)
class OutsideChange(_NotReplayable):
    """Weights changed behind the session's back, adopted (cannot be undone).

    Recorded by the session when it notices the change: kept entries keep their
    new values, pruned entries are zeroed again (the mask holds), replaced
    parameters are followed. Their earlier values were never recorded, so undo
    stops here.
    """

    targets: tuple[str, ...]
    description: str = "Weights changed outside PruneScope"

    kind: ClassVar[str] = "outside_change"
    undoable: ClassVar[bool] = False
    why: ClassVar[str] = "the weights were changed outside PruneScope"

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        token.check()
        session.adopt_values(self.targets)
        yield Progress(1.0, "adopted the changed weights")
        return None


@dataclass(frozen=True)
class RecordedStep(Operation):
    """A non-replayable operation as the recipe remembers it: kind, targets, description.

    Its :attr:`kind` is the kind of the operation it records (e.g. ``weight_update``).
    """

    kind: str  # type: ignore[misc]  # the recorded operation's kind, per instance
    targets: tuple[str, ...]
    description: str

    replayable: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return self.description

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.kind,
            "targets": list(self.targets),
            "description": self.description,
        }

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        raise PruningError(f"{self.description!r} was recorded, it cannot be applied again")


OPERATIONS: dict[str, type[Operation]] = {
    cls.kind: cls
    for cls in (
        LayerPrune,
        GlobalPrune,
        Reset,
        PaintStroke,
        MakePermanent,
        WeightUpdate,
        ReplaceModel,
        OutsideChange,
    )
}


#: Kinds defined in modules that build on this one (group pruning needs torch-pruning's
#: graph), imported when a recipe first names them; each registers itself in OPERATIONS.
DEFINED_ELSEWHERE: dict[str, str] = {"group_prune": "core.pruning.groups"}


def operation_class(kind: str) -> type[Operation] | None:
    """The operation class of a recipe kind (None: unknown), importing its module if needed."""
    if kind not in OPERATIONS and kind in DEFINED_ELSEWHERE:
        importlib.import_module(DEFINED_ELSEWHERE[kind])
    return OPERATIONS.get(kind)


def operation_from_dict(data: dict[str, Any], *, replay: bool = True) -> Operation:
    """Rebuild an operation from :meth:`Operation.to_dict` output.

    With ``replay=False`` (reading a saved session's record rather than a recipe
    to run), a kind that cannot be replayed comes back as a :class:`RecordedStep`.

    Raises:
        PruningError: unknown kind, malformed fields, or (``replay``) a kind a
            recipe cannot replay.
    """
    if not isinstance(data, dict):
        raise PruningError(f"malformed operation {data!r}: not an object")
    kind = data.get("op")
    cls = operation_class(str(kind))
    if cls is None:
        known = ", ".join(dict.fromkeys([*OPERATIONS, *DEFINED_ELSEWHERE]))
        raise PruningError(f"unknown operation kind {kind!r}; known: {known}")
    if not replay and not cls.replayable:
        targets = tuple(str(t) for t in data.get("targets", ()))
        return RecordedStep(cls.kind, targets, str(data.get("description", cls.kind)))
    try:
        return cls.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PruningError):
            raise
        raise PruningError(f"malformed operation {data!r}: {exc}") from None
