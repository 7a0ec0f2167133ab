"""Rule-based methods: a magnitude threshold, the brief's quantile rule, a user mask."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from core.common.errors import InvalidMaskError, UnsupportedParameterError
from core.common.jobs import NEVER_CANCELLED, CancelToken
from core.pruning.amounts import Amount
from core.pruning.masks import PackedMask
from core.pruning.methods.base import PruningMethod
from core.pruning.methods.patterns import Shape
from core.pruning.methods.spec import ParamSpec


def _magnitudes(t: torch.Tensor) -> torch.Tensor:
    """|t| in a dtype numpy understands (bf16 is widened to fp32, exactly)."""
    a = t.abs()
    return a.float() if a.dtype == torch.bfloat16 else a


def linear_quantile(values: torch.Tensor, q: float) -> float:
    """``numpy.quantile(values, q)`` (linear method) for a 1-D tensor of any size.

    torch.quantile refuses more than 2**24 elements; this uses two order
    statistics (``torch.kthvalue``) and numpy's own interpolation formula, so
    the result is bit-identical to numpy's for the same dtype.
    """
    n = values.numel()
    if n == 0:
        raise UnsupportedParameterError("the quantile of an empty set is undefined")
    virtual = (n - 1) * q
    below = math.floor(virtual)
    above = min(below + 1, n - 1)
    gamma = virtual - below
    flat = values.reshape(-1).cpu()
    a = flat.kthvalue(below + 1).values.numpy()
    b = a if above == below else flat.kthvalue(above + 1).values.numpy()
    diff = b - a
    result = b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma
    return float(result)


def _largest_not_above(value: float, dtype: torch.dtype) -> float:
    """The largest number of ``dtype`` that is <= ``value``.

    ``|w| > value`` then holds exactly when ``|w| > result`` for ``|w|`` of that
    dtype, without widening the tensor (torch would round ``value`` instead).
    """
    types: dict[torch.dtype, type[np.floating[Any]]] = {
        torch.float16: np.float16,
        torch.float32: np.float32,
    }
    np_type = types.get(dtype, np.float64)
    typed = np_type(value)
    if float(typed) > value:
        typed = np.nextafter(typed, np_type(-np.inf))
    return float(typed)


@dataclass(frozen=True)
class MagnitudeThreshold(PruningMethod):
    """Prune every weight with ``|w| <= value``."""

    value: float = 0.0

    name: ClassVar[str] = "threshold"
    label: ClassVar[str] = "Threshold |w| ≤"
    kind: ClassVar[str] = "unstructured"
    summary: ClassVar[str] = "Zero every weight whose magnitude |w| is at or below a threshold."
    uses_amount: ClassVar[bool] = False
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec(
            "value",
            "float",
            0.0,
            "|w| ≤",
            "Every weight whose magnitude is at or below this goes.",
            "--threshold",
            low=0.0,
            unit="|w|",
        ),
    )

    def describe(self) -> str:
        return f"threshold |w| <= {self.value:.4g}"

    def with_amount(self, amount: Amount) -> PruningMethod:
        return self

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        magnitudes = _magnitudes(t)
        mask = magnitudes > _largest_not_above(self.value, magnitudes.dtype)
        return mask if current is None else mask & current


@dataclass(frozen=True)
class QuantileRule(PruningMethod):
    """Prune ``|w|`` at or below the ``amount``-quantile of ``|w|`` (the brief's custom rule)."""

    amount: float = 0.5

    name: ClassVar[str] = "quantile"
    label: ClassVar[str] = "Quantile rule"
    kind: ClassVar[str] = "unstructured"
    summary: ClassVar[str] = (
        "Zero weights at or below the amount-quantile of |w| (numpy's linear interpolation)."
    )
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec(
            "amount",
            "fraction",
            0.5,
            "Quantile",
            "Quantile q: weights with |w| at or below the q-quantile of |w| go.",
            "--quantile",
            low=0.0,
            high=1.0,
        ),
    )

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        magnitudes = _magnitudes(t)
        pool = magnitudes if current is None else magnitudes[current]
        if pool.numel() == 0:
            return torch.zeros(t.shape, dtype=torch.bool, device=t.device)
        value = np.array(linear_quantile(pool, float(self.amount))).astype(
            str(magnitudes.dtype).removeprefix("torch.")
        )
        mask = magnitudes > torch.from_numpy(value).to(t.device)
        return mask if current is None else mask & current


@dataclass(frozen=True)
class CustomMask(PruningMethod):
    """Use a user-supplied boolean mask (True = keep), checked for shape and dtype.

    Given as a bool tensor or array (or a :class:`PackedMask`) and kept packed,
    one bit per weight, so a custom mask held by the history or a recipe costs
    what a layer's mask costs.
    """

    #: Given as a bool tensor, bool array or PackedMask; always a PackedMask after construction.
    mask: PackedMask | torch.Tensor | np.ndarray = field(
        default_factory=lambda: PackedMask.full((0,))
    )

    name: ClassVar[str] = "custom_mask"
    label: ClassVar[str] = "Custom mask"
    from_schema: ClassVar[bool] = False
    kind: ClassVar[str] = "unstructured"
    summary: ClassVar[str] = "Apply your own keep/prune pattern (True or 1 = keep)."
    uses_amount: ClassVar[bool] = False

    def __post_init__(self) -> None:
        mask: Any = self.mask
        if isinstance(mask, PackedMask):
            return
        if isinstance(mask, np.ndarray):
            if mask.dtype != np.bool_:
                raise InvalidMaskError(f"a custom mask must be boolean, got numpy {mask.dtype}")
        elif isinstance(mask, torch.Tensor):
            if mask.dtype != torch.bool:
                raise InvalidMaskError(f"a custom mask must be boolean, got {mask.dtype}")
        else:
            raise InvalidMaskError(
                f"a custom mask must be a tensor or array, got {type(mask).__name__}"
            )
        object.__setattr__(self, "mask", PackedMask.from_bool(mask))

    @property
    def packed(self) -> PackedMask:
        """The mask (True = keep), packed."""
        assert isinstance(self.mask, PackedMask)
        return self.mask

    @property
    def nbytes(self) -> int:
        return self.packed.nbytes

    def describe(self) -> str:
        return f"custom mask ({self.packed.sparsity:.1%} pruned)"

    def params(self) -> dict[str, object]:
        return {
            "mask_shape": list(self.packed.shape),
            "mask_bits": base64.b64encode(self.packed.bits.tobytes()).decode(),
        }

    def with_amount(self, amount: Amount) -> PruningMethod:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CustomMask) and self.packed == other.packed

    def __hash__(self) -> int:
        return hash(self.packed)

    def check(self, shape: Shape, current: PackedMask | None = None) -> None:
        if self.packed.shape != tuple(shape):
            raise InvalidMaskError(
                f"custom mask has shape {self.packed.shape}, the weight has {tuple(shape)}"
            )

    def compute_mask(self, t: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        self.check(tuple(t.shape))
        mask = self.packed.to_bool(t.device)
        return mask if current is None else mask & current

    def compute_packed(
        self,
        t: torch.Tensor,
        current: PackedMask | None = None,
        token: CancelToken = NEVER_CANCELLED,
    ) -> PackedMask:
        """The mask itself, combined with ``current`` on the packed bits (nothing unpacked)."""
        self.check(tuple(t.shape))
        return self.packed if current is None else self.packed & current
