"""2:4 semi-structured sparsity: which masks have it, which devices run it, the conversion.

NVIDIA GPUs from Ampere on (compute capability 8.0) have sparse tensor cores
that skip half of a weight when every group of 4 consecutive inputs keeps at
most 2. PyTorch reaches them through ``torch.sparse.to_sparse_semi_structured``;
float32 weights take its CUTLASS backend (cuSPARSELt, the default, wants
half precision), so the form is compared with the dense model at the same
precision. Anywhere else the pattern is just zeros in a dense tensor.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

#: Smallest output/input sizes (and multiples) the CUTLASS float32 kernels take.
MIN_ROWS = 32
MIN_COLS = 32
#: Fraction of groups that must keep exactly 2 for a mask to count as made 2:4.
STRICT_FRACTION = 0.9


def is_two_four(mask: Tensor, *, strict: bool = False) -> bool:
    """Whether a 2-D mask keeps at most 2 of every 4 consecutive inputs (and prunes some).

    ``strict``: also ask that nearly every group (90%) keeps exactly 2, i.e. that the
    pattern was made as 2:4 rather than being a much sparser mask that happens to fit.
    """
    if mask.dim() != 2 or mask.shape[1] % 4 or mask.numel() == 0:
        return False
    groups = mask.reshape(mask.shape[0], -1, 4).sum(dim=-1)
    if not bool((groups <= 2).all()) or bool(mask.all()):
        return False
    return not strict or float((groups == 2).float().mean()) >= STRICT_FRACTION


def semi_structured_unavailable(device: str) -> str | None:
    """Why 2:4 kernels cannot run on ``device`` (None when they can)."""
    if not device.startswith("cuda"):
        return (
            f"2:4 semi-structured kernels need an NVIDIA GPU (Ampere or newer); the device is "
            f"{device}, where a 2:4 pattern is just zeros in a dense tensor"
        )
    if not torch.cuda.is_available():
        return "2:4 semi-structured kernels need CUDA, and this PyTorch sees no CUDA GPU"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    if major < 8:
        return (
            f"2:4 semi-structured kernels need compute capability 8.0 (Ampere) or newer; "
            f"{torch.cuda.get_device_name(torch.device(device))} has {major}.{minor}"
        )
    return None


def fits_kernels(linear: nn.Linear) -> bool:
    """Whether the Linear's weight has a shape the float32 2:4 kernels accept."""
    out_f, in_f = linear.weight.shape
    return out_f % MIN_ROWS == 0 and in_f % MIN_COLS == 0 and out_f > 0 and in_f > 0


def to_semi_structured(model: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    """A copy of ``model`` (already on a capable GPU) whose 2:4-sparse Linear weights are
    semi-structured tensors; also the names of the converted layers (may be empty)."""
    from torch.sparse import SparseSemiStructuredTensorCUTLASS

    work = copy.deepcopy(model)
    converted: list[str] = []
    for name, module in work.named_modules():
        if not isinstance(module, nn.Linear) or not fits_kernels(module):
            continue
        weight = module.weight.detach()
        if weight.dtype != torch.float32 or not is_two_four(weight != 0):
            continue
        sparse = SparseSemiStructuredTensorCUTLASS.from_dense(weight.contiguous())
        module.weight = nn.Parameter(sparse, requires_grad=False)
        converted.append(name)
    return work, tuple(converted)
