"""The contract every pruning method follows, and the methods that compose scores and a pattern.

A method is a frozen dataclass holding its parameters (amount, norm, dim,
seed, ...) with one pure function, :meth:`PruningMethod.compute_mask`: given
the tensor to rank (the layer's current effective weights) and the layer's
current boolean mask, return the new boolean mask (True = kept). It never
modifies its inputs; the session decides what to do with the mask.

``current=None`` means "nothing pruned yet". A second pruning acts only on
what is still unpruned, exactly as torch's ``PruningContainer`` does:
unstructured methods see the still-kept entries, structured methods the
channels that are not fully pruned, and the amount is relative to those.

A method describes itself at class level: registry :attr:`~PruningMethod.name`,
human :attr:`~PruningMethod.label`, one-line :attr:`~PruningMethod.summary`,
the :attr:`~PruningMethod.unit` it prunes and its parameter schema
:attr:`~PruningMethod.param_specs` (see ``core.pruning.methods.spec``), which
also coerces constructor arguments to plain Python values.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from core.common.errors import InvalidAmountError, PruningError, UnsupportedParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken
from core.pruning.amounts import Amount
from core.pruning.importance import Importance
from core.pruning.masks import PackedMask
from core.pruning.methods.patterns import Entries, Pattern, Shape
from core.pruning.methods.spec import ParamSpec


class PruningMethod(ABC):
    """Base class of all mask computations (see module docstring)."""

    #: Registry key, e.g. ``"l1_unstructured"``.
    name: ClassVar[str]
    #: Display name, e.g. ``"L1 unstructured"``.
    label: ClassVar[str]
    #: One sentence for tooltips and docs.
    summary: ClassVar[str]
    #: ``"unstructured"``, ``"structured"`` or ``"pattern"``.
    kind: ClassVar[str]
    #: What a count of this method counts: ``"weights"``, ``"channels"``, ``"blocks"``.
    unit: ClassVar[str] = "weights"
    #: The parameters, in constructor order.
    param_specs: ClassVar[tuple[ParamSpec, ...]] = ()
    #: Whether the method has an ``amount`` (fraction or count) parameter.
    uses_amount: ClassVar[bool] = True
    #: Whether it can be built from its schema alone (a custom mask cannot).
    from_schema: ClassVar[bool] = True

    def __post_init__(self) -> None:
        """Coerce every parameter through its spec (numpy scalars become plain numbers)."""
        specs = {spec.name: spec for spec in self.param_specs}
        for spec in specs.values():
            object.__setattr__(self, spec.name, spec.coerce(getattr(self, spec.name)))
        for spec in specs.values():
            if spec.high_from is not None:
                value, bound = getattr(self, spec.name), getattr(self, spec.high_from)
                if value > bound:
                    raise UnsupportedParameterError(
                        f"{spec.name} must be at most {spec.high_from} ({bound}), got {value}"
                    )

    @property
    def nbytes(self) -> int:
        """Bytes of data the method holds beyond its few numbers (a custom mask's bits)."""
        return 0

    # -- the mask --------------------------------------------------------------------------
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

    # -- units and validation --------------------------------------------------------------
    def pattern(self) -> Pattern:
        """The units this method prunes (single weights unless a subclass says otherwise)."""
        return Entries()

    def units(self, shape: Shape) -> int:
        """How many units (:attr:`unit`) a count refers to in a weight of ``shape``.

        Raises:
            UnsupportedParameterError: the method cannot prune such a weight.
        """
        return self.pattern().units(tuple(shape))

    def remaining_units(self, shape: Shape, mask: PackedMask) -> int:
        """How many units of a weight of ``shape`` are still (partly) kept under ``mask``."""
        return self.pattern().remaining_units(tuple(shape), mask)

    def check(self, shape: Shape, current: PackedMask | None = None) -> None:
        """Raise a :class:`PruningError` when the method cannot prune a weight of ``shape``.

        Checks the shape (dimensions, dim range, N:M divisibility, ...) and an
        int count against the units: all of them, or those ``current`` still keeps.
        """
        shape = tuple(shape)
        self.pattern().check(shape)
        amount = getattr(self, "amount", None)
        counted = any(spec.name == "amount" and spec.type == "amount" for spec in self.param_specs)
        if not counted or not isinstance(amount, int):
            return
        units = self.units(shape)
        if amount > units:
            raise InvalidAmountError(f"cannot prune {amount} {self.unit}, it has {units:,}")
        if current is not None:
            remaining = self.remaining_units(shape, current)
            if amount > remaining:
                raise InvalidAmountError(
                    f"cannot prune {amount} more {self.unit}, only {remaining:,} remain"
                )

    # -- parameters ------------------------------------------------------------------------
    @classmethod
    def spec(cls, name: str) -> ParamSpec:
        """The spec of parameter ``name``."""
        for spec in cls.param_specs:
            if spec.name == name:
                return spec
        raise PruningError(f"{cls.name} has no parameter {name!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PruningMethod:
        """Build the method from command-line style strings, parsed through the schema.

        Keys are the options' spellings (``"norm"``, ``"--norm"``) or the
        parameter names; missing parameters take their defaults.

        Raises:
            PruningError: an unknown option, a value that does not parse, a bad combination.
        """
        if not cls.from_schema:
            raise PruningError(f"{cls.name} cannot be built from options")
        by_key: dict[str, ParamSpec] = {}
        for spec in cls.param_specs:
            by_key[spec.option] = by_key[spec.option.replace("-", "_")] = spec
        for spec in cls.param_specs:
            by_key.setdefault(spec.name, spec)
        values: dict[str, Any] = {}
        for key, text in options.items():
            spec_or_none = by_key.get(key.lstrip("-"))
            if spec_or_none is None:
                known = ", ".join(spec.cli for spec in cls.param_specs) or "none"
                raise PruningError(f"{cls.name}: unknown option {key!r} (options: {known})")
            if spec_or_none.name in values:
                raise PruningError(f"{cls.name}: {spec_or_none.cli} is given twice")
            values[spec_or_none.name] = spec_or_none.parse(str(text))
        return cls(**values)

    def params(self) -> dict[str, Any]:
        """The method's parameters as plain JSON-friendly values."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def with_amount(self, amount: Amount) -> PruningMethod:
        """A copy of this method with another amount."""
        return dataclasses.replace(self, amount=amount)  # type: ignore[type-var]

    def describe(self) -> str:
        """A short human label, e.g. ``l1_unstructured 50%``."""
        amount = getattr(self, "amount", None)
        if amount is None:
            return self.name
        if isinstance(amount, float):
            return f"{self.name} {amount:.4g}" if amount < 0.001 else f"{self.name} {amount:.1%}"
        return f"{self.name} {amount} {self.unit}"


class ScoredMethod(PruningMethod):
    """A method made of an importance (scores per unit) and a pattern (units to mask)."""

    @abstractmethod
    def importance(self) -> Importance:
        """How the units are scored."""

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        amount = getattr(self, "amount", 0)
        return self.pattern().prune(t, current, self.importance(), amount)
