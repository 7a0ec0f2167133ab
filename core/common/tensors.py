"""Raw flat access to parameter storage as numpy arrays, for chunked kernels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def flat_numpy(t: torch.Tensor) -> np.ndarray:
    """A flat numpy view of a contiguous CPU tensor (bf16 seen as its 16-bit pattern)."""
    flat = t.detach().view(-1)
    if flat.dtype == torch.bfloat16:
        flat = flat.view(torch.int16)
    return flat.numpy()


@contextmanager
def writable_flat(t: torch.Tensor) -> Iterator[np.ndarray]:
    """Yield a flat numpy array of ``t``'s values; changes are written back to ``t``.

    CPU contiguous tensors are viewed in place; others (CUDA, strided) go
    through a CPU copy that is copied back on exit.
    """
    if t.device.type == "cpu" and t.is_contiguous():
        yield flat_numpy(t)
        return
    copy = t.detach().to("cpu", copy=True).contiguous()
    yield flat_numpy(copy)
    with torch.no_grad():
        t.copy_(copy.to(t.device).view(t.shape))
