"""Pruning methods by name, and their construction from plain parameters or option strings."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.common.errors import PruningError
from core.pruning.methods.base import PruningMethod, ScoredMethod
from core.pruning.methods.rules import CustomMask, MagnitudeThreshold, QuantileRule
from core.pruning.methods.sparsity import BlockSparsity, NMSparsity
from core.pruning.methods.spec import ParamSpec
from core.pruning.methods.structured import LnStructured, RandomStructured
from core.pruning.methods.unstructured import L1Unstructured, RandomUnstructured

METHODS: dict[str, type[PruningMethod]] = {
    cls.name: cls
    for cls in (
        L1Unstructured,
        RandomUnstructured,
        LnStructured,
        RandomStructured,
        NMSparsity,
        BlockSparsity,
        MagnitudeThreshold,
        QuantileRule,
        CustomMask,
    )
}


def method_class(name: str) -> type[PruningMethod]:
    """The method class registered as ``name``.

    Raises:
        PruningError: unknown method.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise PruningError(
            f"unknown pruning method {name!r}; known: {', '.join(METHODS)}"
        ) from None


def make_method(name: str, **params: Any) -> PruningMethod:
    """Build a method from its registry name and parameters (as :meth:`params` gives them).

    Raises:
        PruningError: unknown method or parameter, or a bad value.
    """
    cls = method_class(name)
    if cls is CustomMask and "mask_bits" in params:
        from core.pruning.masks import PackedMask

        bits = np.frombuffer(base64.b64decode(params["mask_bits"]), dtype=np.uint8).copy()
        params = {"mask": PackedMask(bits, params["mask_shape"])}
    try:
        return cls(**params)
    except TypeError as exc:
        raise PruningError(f"bad parameters for {name}: {exc}") from None


def method_from_options(name: str, options: Mapping[str, str]) -> PruningMethod:
    """Build a method from command-line style strings, e.g. ``{"norm": "2", "dim": "0"}``.

    Each value is parsed through the method's :class:`ParamSpec` (``--keep`` /
    ``--group`` for N:M, ``--norm`` for Ln structured, ``"50%"`` amounts, ...).

    Raises:
        PruningError: unknown method or option, or a value that does not parse.
    """
    return method_class(name).from_options(options)


__all__ = [
    "METHODS",
    "BlockSparsity",
    "CustomMask",
    "L1Unstructured",
    "LnStructured",
    "MagnitudeThreshold",
    "NMSparsity",
    "ParamSpec",
    "PruningMethod",
    "QuantileRule",
    "RandomStructured",
    "RandomUnstructured",
    "ScoredMethod",
    "make_method",
    "method_class",
    "method_from_options",
]
