"""Unstructured methods: individual weights are zeroed wherever they are.

:class:`L1Unstructured` on big layers skips torch's ``topk`` (the bulk of the
time) in the packed path the session uses: it runs global pruning's selection
over the one layer (``core.pruning.global_prune.prune_smallest``): a sampled
threshold bracket, one chunked pass that builds the mask, and an exact
selection among the few weights inside the bracket. The pruned count
is torch's; the mask equals torch's except among weights whose |w| equals the
layer's threshold, where ties are pruned in flat order. :meth:`compute_mask`,
the bool-tensor API, stays torch's kernel exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from core.common.jobs import NEVER_CANCELLED, CancelToken, run_job
from core.pruning.amounts import Amount, count_to_prune
from core.pruning.global_prune import GlobalLayer, prune_smallest
from core.pruning.importance import Importance, Magnitude, RandomScores
from core.pruning.masks import PackedMask
from core.pruning.methods.base import ScoredMethod
from core.pruning.methods.spec import AMOUNT, ParamSpec, seed_spec

#: Layers of at most this many weights take torch's ``topk``, fast and exact at that size.
TOPK_LIMIT = 1 << 16


@dataclass(frozen=True)
class L1Unstructured(ScoredMethod):
    """Prune the ``amount`` entries with the smallest absolute value (torch's kernel)."""

    amount: Amount = 0.5

    name: ClassVar[str] = "l1_unstructured"
    label: ClassVar[str] = "L1 unstructured"
    summary: ClassVar[str] = "Zero the individual weights with the smallest magnitude |w|."
    kind: ClassVar[str] = "unstructured"
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (AMOUNT,)

    def importance(self) -> Importance:
        return Magnitude(1)

    def compute_packed(
        self,
        t: torch.Tensor,
        current: PackedMask | None = None,
        token: CancelToken = NEVER_CANCELLED,
    ) -> PackedMask:
        """The new packed mask; big CPU layers go chunk by chunk (see module docstring)."""
        if t.numel() <= TOPK_LIMIT or t.device.type != "cpu":
            return super().compute_packed(t, current, token)
        remaining = t.numel() if current is None else current.kept
        k = count_to_prune(self.amount, remaining)
        return run_job(prune_smallest(GlobalLayer("the layer", t.detach(), current), k, token))


@dataclass(frozen=True)
class RandomUnstructured(ScoredMethod):
    """Prune ``amount`` entries chosen at random (seeded, reproducible)."""

    amount: Amount = 0.5
    seed: int = 0

    name: ClassVar[str] = "random_unstructured"
    label: ClassVar[str] = "Random unstructured"
    summary: ClassVar[str] = "Zero randomly chosen individual weights (a baseline to compare with)."
    kind: ClassVar[str] = "unstructured"
    param_specs: ClassVar[tuple[ParamSpec, ...]] = (AMOUNT, seed_spec("weights"))

    def importance(self) -> Importance:
        return RandomScores(self.seed)
