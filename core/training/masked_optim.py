"""An optimiser that holds pruning masks: pruned weights stay exactly zero.

Zeroing weights after each step is not enough: momentum buffers and Adam's
moments at pruned positions would keep the gradients they saw, and weight
decay would act on them. :class:`MaskedOptimizer` zeroes the gradients at
pruned positions before each step, and after it sets the weights *and* every
per-weight optimiser state tensor (momentum buffer, first and second moments)
at pruned positions to exactly +0.0. Either half alone would keep the weights
at zero for SGD, Adam and AdamW; together they also hold for any optimiser
state and for weights that were not zero to begin with.

Weight decay applies to weights with two or more dimensions (Linear, Conv,
embeddings), not to biases and normalisation parameters (the usual practice).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from core.common.errors import PruningError

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw")
"""Every optimiser name."""

#: How each optimiser is named in labels.
OPTIMIZER_LABELS: dict[str, str] = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


class MaskedOptimizer:
    """SGD (with momentum), Adam or AdamW over ``model``'s trainable parameters, with
    the pruned entries of the parameters named in ``masks`` held at zero.

    Args:
        model: the model trained (in place).
        masks: ``{parameter name: bool tensor}``, True = kept; parameters not named
            are trained freely.
        optimizer: one of :data:`OPTIMIZERS`.
        lr, momentum, weight_decay: as in torch (momentum for SGD only).
    """

    def __init__(
        self,
        model: nn.Module,
        masks: Mapping[str, Tensor],
        optimizer: str,
        *,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ) -> None:
        params = dict(model.named_parameters(remove_duplicate=False))
        self.pruned: list[tuple[nn.Parameter, Tensor]] = []
        held: set[int] = set()
        for name, mask in masks.items():
            param = params.get(name)
            if param is None:
                raise PruningError(f"{name}: masked but not a parameter of the model")
            if tuple(mask.shape) != tuple(param.shape):
                raise PruningError(f"{name}: mask {tuple(mask.shape)} != {tuple(param.shape)}")
            if id(param) not in held:
                held.add(id(param))
                self.pruned.append((param, ~mask.to(device=param.device, dtype=torch.bool)))
        trainable = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        if not groups:
            raise PruningError("the model has no trainable parameters")
        if optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=lr, momentum=momentum
            )
        elif optimizer == "adam":
            self.optimizer = torch.optim.Adam(groups, lr=lr)
        elif optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(groups, lr=lr)
        else:
            raise PruningError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        self.zero_pruned()

    def set_lr(self, lr: float) -> None:
        """Use ``lr`` from the next step on."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def zero_grad(self) -> None:
        """Drop the gradients."""
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        """One optimiser step that leaves pruned weights and their state at exactly zero."""
        with torch.no_grad():
            for param, pruned in self.pruned:
                if param.grad is not None:
                    param.grad.masked_fill_(pruned, 0.0)
        self.optimizer.step()
        self.zero_pruned()

    def zero_pruned(self) -> None:
        """Set pruned weights, and every state tensor shaped like them, to +0.0."""
        with torch.no_grad():
            for param, pruned in self.pruned:
                param.masked_fill_(pruned, 0.0)
                for value in self.optimizer.state.get(param, {}).values():
                    if isinstance(value, Tensor) and value.shape == param.shape:
                        value.masked_fill_(pruned, 0.0)
