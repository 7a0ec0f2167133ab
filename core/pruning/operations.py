"""Operations as frozen, serialisable specs: what to do, to which layers, how.

The session turns an operation into new masks (see ``core.pruning.session``); the
specs themselves hold no tensors except a custom mask, so a list of them is a
*recipe* that replays on a fresh copy of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from core.common.errors import PruningError
from core.pruning.amounts import Amount, validate_amount
from core.pruning.methods import PruningMethod, make_method

#: ``further``: prune a further amount of what remains (torch's semantics).
#: ``set``: recompute the layer's mask from its original weights so its
#: sparsity is exactly the amount (what a slider means).
Mode = Literal["further", "set"]
MODES: tuple[str, ...] = ("further", "set")


def _targets_label(targets: tuple[str, ...]) -> str:
    if len(targets) == 1:
        return targets[0]
    return f"{len(targets)} layers"


@dataclass(frozen=True)
class LayerPrune:
    """Apply ``method`` to each target layer independently."""

    targets: tuple[str, ...]
    method: PruningMethod
    mode: Mode = "further"

    kind: ClassVar[str] = "layer_prune"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PruningError(f"mode must be one of {MODES}, got {self.mode!r}")
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def label(self) -> str:
        """Human label for history lists."""
        verb = "Set" if self.mode == "set" else "Prune"
        return f"{verb} {_targets_label(self.targets)}: {self.method.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form."""
        return {
            "op": self.kind,
            "targets": list(self.targets),
            "method": self.method.name,
            "params": self.method.params(),
            "mode": self.mode,
        }


@dataclass(frozen=True)
class GlobalPrune:
    """Prune the smallest-|w| ``amount`` of all remaining weights across ``targets``.

    ``max_sparsity`` caps chosen layers (fraction of the layer's weights); the
    weights a capped layer cannot give are taken from the others.
    """

    targets: tuple[str, ...]
    amount: Amount
    max_sparsity: tuple[tuple[str, float], ...] = ()

    kind: ClassVar[str] = "global_prune"

    def __post_init__(self) -> None:
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
        """Plain JSON-friendly form."""
        return {
            "op": self.kind,
            "targets": list(self.targets),
            "amount": self.amount,
            "max_sparsity": dict(self.max_sparsity),
        }


@dataclass(frozen=True)
class Reset:
    """Restore the targets' original weights (an undoable operation)."""

    targets: tuple[str, ...]

    kind: ClassVar[str] = "reset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def label(self) -> str:
        return f"Reset {_targets_label(self.targets)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form."""
        return {"op": self.kind, "targets": list(self.targets)}


@dataclass(frozen=True)
class MakePermanent:
    """Bake the zeros in and drop the originals. This cannot be undone."""

    targets: tuple[str, ...]

    kind: ClassVar[str] = "make_permanent"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def label(self) -> str:
        return f"Make permanent {_targets_label(self.targets)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form."""
        return {"op": self.kind, "targets": list(self.targets)}


Operation = LayerPrune | GlobalPrune | Reset | MakePermanent


def operation_from_dict(data: dict[str, Any]) -> Operation:
    """Rebuild an operation from :meth:`to_dict` output.

    Raises:
        PruningError: unknown operation kind or malformed fields.
    """
    try:
        kind = data["op"]
        targets = tuple(data["targets"])
        if kind == LayerPrune.kind:
            method = make_method(data["method"], **data.get("params", {}))
            return LayerPrune(targets, method, data.get("mode", "further"))
        if kind == GlobalPrune.kind:
            caps = tuple(dict(data.get("max_sparsity", {})).items())
            return GlobalPrune(targets, data["amount"], caps)
        if kind == Reset.kind:
            return Reset(targets)
        if kind == MakePermanent.kind:
            return MakePermanent(targets)
    except (KeyError, TypeError) as exc:
        raise PruningError(f"malformed operation {data!r}: {exc}") from None
    raise PruningError(f"unknown operation kind {kind!r}")
