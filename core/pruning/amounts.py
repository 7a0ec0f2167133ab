"""Amounts as torch.nn.utils.prune understands them, and their validation.

An amount is either a float fraction in [0, 1] or an int count. A fraction is
turned into a count with Python's ``round`` (banker's rounding), exactly as
torch does, so our counts match torch's for the same tensor.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from core.common.errors import InvalidAmountError

Amount = float | int


def plain_amount(amount: Any, where: str = "") -> Amount:
    """``amount`` as a plain Python ``float`` or ``int`` (numpy scalars converted).

    A numpy float stays a fraction and a numpy integer a count, so the amount
    means what it meant and serialises to JSON. Bools and non-numbers are refused.

    Raises:
        InvalidAmountError: a bool or a non-number.
    """
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        prefix = f"{where}: " if where else ""
        raise InvalidAmountError(f"{prefix}amount must be a number, got {amount!r}")
    if isinstance(amount, numbers.Integral):
        return int(amount)
    return float(amount)


def validate_amount(amount: Amount, where: str = "") -> None:
    """Reject amounts that are neither an int >= 0 nor a float in [0, 1]."""
    prefix = f"{where}: " if where else ""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise InvalidAmountError(f"{prefix}amount must be a number, got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise InvalidAmountError(f"{prefix}amount {amount} is negative")
        return
    if math.isnan(amount) or not 0.0 <= float(amount) <= 1.0:
        raise InvalidAmountError(f"{prefix}amount {amount} is outside [0, 1]")


def count_to_prune(amount: Amount, size: int, where: str = "") -> int:
    """How many of ``size`` units an amount prunes, with torch's rounding.

    Raises:
        InvalidAmountError: bad amount, or an int count above ``size``.
    """
    validate_amount(amount, where)
    if isinstance(amount, numbers.Integral):
        if amount > size:
            prefix = f"{where}: " if where else ""
            raise InvalidAmountError(
                f"{prefix}amount {amount} is larger than the {size} prunable units"
            )
        return int(amount)
    return round(float(amount) * size)
