"""Parameter schemas: how a method's parameters are typed, bounded, labelled and spelled.

Every method class lists its parameters as :class:`ParamSpec` items. The
schema serves three readers from one place:

* the method itself, which coerces what it is given (numpy scalars become
  plain ``int``/``float``, so ``params()`` is always JSON-serialisable) and
  rejects values of the wrong type or out of bounds;
* the GUI, which builds its parameter pages from it;
* a command line, which parses option strings through :meth:`ParamSpec.parse`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.common.errors import InvalidAmountError, UnsupportedParameterError
from core.pruning.amounts import plain_amount, validate_amount

#: ``int``: a whole number; ``dim``: a tensor dimension (bounds depend on the weight);
#: ``float``: a finite real; ``choice``: one of :attr:`ParamSpec.choices`;
#: ``fraction``: a real in [0, 1]; ``amount``: a fraction in [0, 1] or an int count.
ParamType = Literal["int", "dim", "float", "choice", "fraction", "amount"]

_INT_TEXT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a pruning method (see module docstring)."""

    #: The constructor keyword, e.g. ``"n"``.
    name: str
    type: ParamType
    default: Any
    #: Short human label, e.g. ``"Norm"``.
    label: str
    #: One sentence for tooltips and ``--help``.
    help: str
    #: Command-line spelling, e.g. ``"--norm"``.
    cli: str
    #: Inclusive bounds (None: unbounded).
    low: float | None = None
    high: float | None = None
    #: For ``choice``: ``(label, value)`` pairs, in display order.
    choices: tuple[tuple[str, Any], ...] = ()
    #: What the value counts or measures, for display (``"rows"``, ``"|w|"``...).
    unit: str = ""
    #: Another parameter's name whose value bounds this one from above (N <= M).
    high_from: str | None = None

    @property
    def option(self) -> str:
        """The command-line spelling without leading dashes, e.g. ``"norm"``."""
        return self.cli.lstrip("-")

    def coerce(self, value: Any) -> Any:
        """``value`` as a plain Python value of this type, checked against the bounds.

        Raises:
            InvalidAmountError: a bad ``amount`` or ``fraction``.
            UnsupportedParameterError: any other bad value.
        """
        if self.type == "amount":
            amount = plain_amount(value)
            validate_amount(amount)
            return amount
        if self.type == "fraction":
            return self._coerce_fraction(value)
        if self.type == "choice":
            return self._coerce_choice(value)
        if self.type in ("int", "dim"):
            number: float = plain_int(value, self.name)
        else:
            number = plain_float(value, self.name)
        self._check_bounds(number)
        return number

    def parse(self, text: str) -> Any:
        """A command-line string turned into a checked value (``"50%"`` is 0.5).

        Raises:
            PruningError: text that is not a valid value (see :meth:`coerce`).
        """
        text = text.strip()
        if self.type == "choice":
            return self._coerce_choice(text)
        if self.type in ("fraction", "amount") and text.endswith("%"):
            return self.coerce(self._number(text[:-1], float) / 100.0)
        if self.type in ("int", "dim") or (self.type == "amount" and _INT_TEXT.fullmatch(text)):
            return self.coerce(self._number(text, int))
        return self.coerce(self._number(text, float))

    def choice_label(self, value: Any) -> str:
        """The display label of a choice value."""
        canonical = self._coerce_choice(value)
        return next(label for label, v in self.choices if _same(v, canonical))

    # -- helpers -------------------------------------------------------------------------
    def _number(self, text: str, kind: Callable[[str], Any]) -> Any:
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise self._error(f"{self.cli} expects {noun}, got {text!r}") from None

    def _error(self, message: str) -> UnsupportedParameterError | InvalidAmountError:
        if self.type in ("amount", "fraction"):
            return InvalidAmountError(message)
        return UnsupportedParameterError(message)

    def _check_bounds(self, number: float) -> None:
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            low = "-inf" if self.low is None else f"{self.low:g}"
            high = "inf" if self.high is None else f"{self.high:g}"
            raise UnsupportedParameterError(
                f"{self.name} must be in [{low}, {high}], got {number:g}"
            )

    def _coerce_fraction(self, value: Any) -> float:
        fraction = plain_amount(value)
        if isinstance(fraction, int) and fraction > 1:
            raise UnsupportedParameterError(
                f"{self.label.lower()} takes a fraction in [0, 1], not a count ({fraction})"
            )
        validate_amount(fraction)
        return float(fraction)  # 0 and 1 are fractions here, never counts

    def _coerce_choice(self, value: Any) -> Any:
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, bool):
            for _label, choice in self.choices:
                if _same(choice, value):
                    return choice
            if isinstance(value, str):
                for _label, choice in self.choices:
                    if _same(choice, _choice_text(value)):
                        return choice
        known = ", ".join(_format(choice) for _label, choice in self.choices)
        raise UnsupportedParameterError(f"{self.name} must be one of {known}, got {value!r}")


def _same(choice: Any, value: Any) -> bool:
    """Whether ``value`` is ``choice`` (2 and 2.0 are; the string "2" is not)."""
    if isinstance(choice, str) or isinstance(value, str):
        return isinstance(choice, str) and isinstance(value, str) and choice == value
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == choice


def _choice_text(text: str) -> Any:
    """A choice typed as text: a number where it reads as one, else the lower-cased text."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        return text


def _format(value: Any) -> str:
    return str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))


def plain_int(value: Any, name: str) -> int:
    """``value`` as a Python ``int`` (numpy integers accepted; bools and floats refused)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedParameterError(f"{name} must be an integer, got {value!r}")
    return value


def plain_float(value: Any, name: str) -> float:
    """``value`` as a finite Python ``float`` (ints and numpy numbers accepted; bools refused)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UnsupportedParameterError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise UnsupportedParameterError(f"{name} must be finite, got {value!r}")
    return number


# -- specs shared by several methods ------------------------------------------------------

#: The largest seed the GUI's spin box holds (and the schema accepts).
MAX_SEED = 2**31 - 1

AMOUNT = ParamSpec(
    "amount",
    "amount",
    0.5,
    "Amount",
    "How much to prune: a fraction in [0, 1] of the remaining units, or an int count.",
    "--amount",
)


def seed_spec(what: str) -> ParamSpec:
    """The random seed of a method that picks ``what`` at random."""
    return ParamSpec(
        "seed",
        "int",
        0,
        "Seed",
        f"Random seed: the same seed picks the same {what}.",
        "--seed",
        low=0,
        high=MAX_SEED,
    )


DIM = ParamSpec(
    "dim",
    "dim",
    0,
    "Dim",
    "Dimension whose slices are pruned whole: 0 = output channels / rows, "
    "1 = input channels / columns; negative counts from the end.",
    "--dim",
)
