"""Pruning methods by name, and their construction from plain parameters."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from core.common.errors import PruningError
from core.pruning.methods.base import PruningMethod
from core.pruning.methods.patterns import BlockSparsity, NMSparsity
from core.pruning.methods.rules import CustomMask, MagnitudeThreshold, QuantileRule
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


def make_method(name: str, **params: Any) -> PruningMethod:
    """Build a method from its registry name and parameters (as :meth:`params` gives them).

    Raises:
        PruningError: unknown method or parameter.
    """
    try:
        cls = METHODS[name]
    except KeyError:
        raise PruningError(
            f"unknown pruning method {name!r}; known: {', '.join(METHODS)}"
        ) from None
    if cls is CustomMask and "mask_bits" in params:
        from core.pruning.masks import PackedMask

        bits = np.frombuffer(base64.b64decode(params["mask_bits"]), dtype=np.uint8).copy()
        params = {"mask": PackedMask(bits, params["mask_shape"]).to_bool()}
    if "n" in params and isinstance(params["n"], str) and params["n"] != "fro":
        params = {**params, "n": float(params["n"])}
    try:
        return cls(**params)
    except TypeError as exc:
        raise PruningError(f"bad parameters for {name}: {exc}") from None


__all__ = [
    "METHODS",
    "BlockSparsity",
    "CustomMask",
    "L1Unstructured",
    "LnStructured",
    "MagnitudeThreshold",
    "NMSparsity",
    "PruningMethod",
    "QuantileRule",
    "RandomStructured",
    "RandomUnstructured",
    "make_method",
]
