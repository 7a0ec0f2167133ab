"""Small helpers around a model for evaluation and training: its device, its logits,
and its train/eval flags put back afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from core.common.errors import PruningError


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model with none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def model_float_dtype(model: nn.Module) -> torch.dtype | None:
    """The dtype of the model's first floating-point parameter (None: it has none)."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    return None


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a model's output: the tensor itself, a ``.logits`` attribute
    (Hugging Face outputs), a ``"logits"`` key, or the first item of a tuple.

    Raises:
        PruningError: nothing in the output is a tensor.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict) and isinstance(output.get("logits"), torch.Tensor):
        logits: torch.Tensor = output["logits"]
        return logits
    attribute = getattr(output, "logits", None)
    if isinstance(attribute, torch.Tensor):
        return attribute
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        first: torch.Tensor = output[0]
        return first
    raise PruningError(
        f"the model returned a {type(output).__name__}, not logits: evaluation and fine-tuning "
        "need a tensor (N, classes), an output with .logits, or a tuple starting with one"
    )


@contextmanager
def modes_restored(model: nn.Module, training: bool | None = None) -> Iterator[nn.Module]:
    """Put every submodule's train/eval flag back on exit; on entry switch the whole
    model to train (``training=True``) or eval (``False``) mode, or leave it (None)."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        if training is not None:
            model.train(training)
        yield model
    finally:
        for module, flag in modes:
            module.training = flag
