"""The contract every pruning method follows.

A method is a frozen dataclass holding its parameters (amount, norm, dim,
seed, ...) with one pure function, :meth:`PruningMethod.compute_mask`: given
the tensor to rank (the layer's current effective weights) and the layer's
current boolean mask, return the new boolean mask (True = kept). It never
modifies its inputs; the session decides what to do with the mask.

``current=None`` means "nothing pruned yet". A second pruning acts only on
what is still unpruned, exactly as torch's ``PruningContainer`` does:
unstructured methods see the still-kept entries, structured methods the
channels that are not fully pruned, and the amount is relative to those.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from core.common.errors import UnsupportedParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken
from core.pruning.masks import PackedMask


class PruningMethod(ABC):
    """Base class of all mask computations (see module docstring)."""

    #: Registry key, e.g. ``"l1_unstructured"``.
    name: ClassVar[str]
    #: ``"unstructured"``, ``"structured"`` or ``"pattern"``.
    kind: ClassVar[str]
    #: One sentence for tooltips and docs.
    summary: ClassVar[str]
    #: Whether the method has an ``amount`` (fraction or count) parameter.
    uses_amount: ClassVar[bool] = True

    @abstractmethod
    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        """Return the new bool mask for ``t`` given the current bool mask (or None)."""

    def compute_packed(
        self,
        t: torch.Tensor,
        current: PackedMask | None = None,
        token: CancelToken = NEVER_CANCELLED,
    ) -> PackedMask:
        """:meth:`compute_mask` on packed masks: what the session calls.

        Methods that can work chunk by chunk on big layers override this; the
        default unpacks ``current``, calls :meth:`compute_mask` and packs the result.
        """
        bool_current = None if current is None else current.to_bool(t.device)
        return PackedMask.from_bool(self.compute_mask(t, bool_current))

    def params(self) -> dict[str, Any]:
        """The method's parameters as plain JSON-friendly values."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def with_amount(self, amount: float | int) -> PruningMethod:
        """A copy of this method with another amount."""
        return dataclasses.replace(self, amount=amount)  # type: ignore[type-var]

    def describe(self) -> str:
        """A short human label, e.g. ``l1_unstructured 50%``."""
        amount = getattr(self, "amount", None)
        if amount is None:
            return self.name
        if isinstance(amount, float):
            return f"{self.name} {amount:.4g}" if amount < 0.001 else f"{self.name} {amount:.1%}"
        return f"{self.name} {amount} units"


def require_dims(t: torch.Tensor, minimum: int, method: str) -> None:
    """Raise :class:`UnsupportedParameterError` when ``t`` has too few dimensions."""
    if t.dim() < minimum:
        raise UnsupportedParameterError(
            f"{method} needs a tensor with at least {minimum} dimensions, "
            f"got shape {tuple(t.shape)}"
        )


def normalise_dim(dim: int, ndim: int, method: str) -> int:
    """Turn a negative ``dim`` into a positive one, checking bounds."""
    if not -ndim <= dim < ndim:
        raise UnsupportedParameterError(
            f"{method}: dim {dim} is out of range for a {ndim}-D tensor"
        )
    return dim % ndim


def restrict_unstructured(
    fresh: Any, t: torch.Tensor, current: torch.Tensor | None
) -> torch.Tensor:
    """Apply ``fresh`` (a mask function of one tensor) to the still-kept entries only."""
    if current is None:
        return fresh(t)
    partial = fresh(t[current])
    new = current.clone()
    new[current] = partial
    return new


def restrict_structured(
    fresh: Any, t: torch.Tensor, current: torch.Tensor | None, dim: int
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
