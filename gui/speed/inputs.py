"""Reading the speed panels' text fields: lists of sizes, ratios and shapes.

Users type ``1, 16, 64`` or ``0 0.2 0.5``; these helpers turn such text into
tuples and raise :class:`ValueError` with a message fit to show under the field.
"""

from __future__ import annotations

import re

# Commas, semicolons and spaces separate; so does an x or × between two numbers (3x64x64).
_SPLIT = re.compile(r"(?<=\d)\s*[x×]\s*(?=\d)|[\s,;]+")


def _items(text: str) -> list[str]:
    return [item for item in _SPLIT.split(text.strip()) if item]


def parse_positive_ints(text: str, what: str, *, limit: int = 1 << 20) -> tuple[int, ...]:
    """``"1, 16, 64"`` -> ``(1, 16, 64)``: positive whole numbers, duplicates dropped, in order.

    Raises:
        ValueError: empty, not a whole number, or outside ``1..limit``.
    """
    values: list[int] = []
    items = _items(text)
    if not items:
        raise ValueError(f"{what}: enter at least one number, e.g. 1, 16, 64")
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise ValueError(f"{what}: {value} is outside 1..{limit:,}")
        if value not in values:
            values.append(value)
    return tuple(values)


def parse_ratios(text: str, what: str = "Ratios") -> tuple[float, ...]:
    """``"0, 0.2, 80%"`` -> ``(0.0, 0.2, 0.8)``: fractions in [0, 1), percentages allowed.

    Raises:
        ValueError: empty, not a number, or outside [0, 1).
    """
    values: list[float] = []
    items = _items(text)
    if not items:
        raise ValueError(f"{what}: enter at least one ratio, e.g. 0, 0.5, 0.9")
    for item in items:
        percent = item.endswith("%")
        try:
            value = float(item.rstrip("%"))
        except ValueError:
            raise ValueError(f"{what}: {item!r} is not a number") from None
        if percent:
            value /= 100.0
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{what}: {item} is outside 0..0.99 (a share of the weights pruned)")
        if value not in values:
            values.append(value)
    return tuple(values)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3, 64, 64"`` or ``"3x64x64"`` -> ``(3, 64, 64)``: one sample's shape, without batch.

    Raises:
        ValueError: empty or not positive whole numbers.
    """
    return tuple(_shape_items(text))


def _shape_items(text: str) -> list[int]:
    items = _items(text)
    if not items:
        raise ValueError("Input shape: enter one sample's shape without the batch, e.g. 3, 64, 64")
    shape: list[int] = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"Input shape: {item!r} is not a whole number") from None
        if value < 1:
            raise ValueError(f"Input shape: {value} is not a positive size")
        shape.append(value)
    return shape


def format_list(values: tuple[float, ...] | tuple[int, ...]) -> str:
    """``(1, 16, 64)`` -> ``"1, 16, 64"``; floats without trailing zeros."""
    return ", ".join(f"{v:g}" for v in values)
