"""Layers that execute only their kept weights: :class:`SparseLinear`, :class:`SparseConv1x1`.

Each holds its weight in compressed sparse rows (:class:`~core.speed.sparse_kernels.Csr`:
float32 values, int16 column indices below 32768 inputs else int32, int64 row
starts) as buffers, so ``copy.deepcopy``, ``state_dict`` and parameter counts
see them, and runs the numba kernels of :mod:`core.speed.sparse_kernels` with
``torch.get_num_threads()`` bands. Inference only: the output carries no
gradient (an input that requires one is refused), float32 on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from core.common.errors import PruningError
from core.speed import sparse_kernels
from core.speed.sparse_kernels import COLUMN_KERNEL_FROM, Csr


class SparseKernelError(PruningError):
    """A sparse layer was given an input its kernels cannot run (device, dtype, gradient)."""


class _CsrModule(nn.Module):
    """Common storage of the sparse layers: the CSR buffers and the bias."""

    values: Tensor
    indices: Tensor
    indptr: Tensor
    bias_values: Tensor

    def __init__(self, csr: Csr, bias: Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = csr.shape
        self.register_buffer("values", torch.from_numpy(csr.values))
        self.register_buffer("indices", torch.from_numpy(csr.indices))
        self.register_buffer("indptr", torch.from_numpy(csr.indptr))
        self.has_bias = bias is not None
        zeros = torch.zeros(self.out_features, dtype=torch.float32)
        b = zeros if bias is None else bias.detach().to("cpu", torch.float32).clone()
        self.register_buffer("bias_values", b.contiguous())

    @property
    def nnz(self) -> int:
        """Number of stored (kept) weights."""
        return int(self.values.numel())

    @property
    def sparsity(self) -> float:
        """Fraction of the weight's entries not stored."""
        total = self.out_features * self.in_features
        return 1.0 - self.nnz / total if total else 0.0

    def csr(self) -> Csr:
        """The weight in compressed sparse rows (numpy views of the buffers)."""
        return self._views()[0]

    def _views(self) -> tuple[Csr, np.ndarray]:
        """The CSR weight and the bias as numpy views, built once per set of buffers (a
        ``.to()`` that replaces them gets fresh views; in-place loads keep them valid)."""
        buffers = self._buffers
        tensors = (
            buffers["values"],
            buffers["indices"],
            buffers["indptr"],
            buffers["bias_values"],
        )
        cached = self.__dict__.get("_cached_views")
        if cached is not None and all(a is b for a, b in zip(cached[0], tensors, strict=True)):
            views: tuple[Csr, np.ndarray] = cached[1]
            return views
        values, indices, indptr, bias = (t.numpy() if t is not None else None for t in tensors)
        assert values is not None and indices is not None and indptr is not None
        assert bias is not None
        views = (Csr(values, indices, indptr, (self.out_features, self.in_features)), bias)
        self.__dict__["_cached_views"] = (tensors, views)
        return views

    def __getstate__(self) -> dict[str, object]:
        """Pickled / deep-copied without the cached numpy views (rebuilt on first use)."""
        state = dict(self.__dict__)
        state.pop("_cached_views", None)
        return state

    def dense_weight(self) -> Tensor:
        """The weight as a dense ``(out_features, in_features)`` tensor (zeros restored)."""
        return torch.from_numpy(self.csr().to_dense())

    def stored_values(self) -> list[Tensor]:
        """The numbers this layer holds as weights: kept values, and the bias if it has one."""
        return [self.values, self.bias_values] if self.has_bias else [self.values]

    def flops_for(self, x: Tensor) -> int:
        """Floating-point operations of one call on ``x`` (2 per kept weight and input
        vector, as torch's counter counts a multiply-add)."""
        return 2 * self.nnz * (x.numel() // max(1, self.in_features))

    def _check(self, x: Tensor) -> np.ndarray:
        """``x`` as a float32 C-ordered numpy array, or a clear error."""
        if x.device.type != "cpu":
            raise SparseKernelError(
                f"{type(self).__name__} runs on the CPU; the input is on {x.device}"
            )
        if x.requires_grad and torch.is_grad_enabled():
            raise SparseKernelError(
                f"{type(self).__name__} is for inference only: run it under torch.no_grad()"
            )
        if x.dtype != torch.float32:
            raise SparseKernelError(f"{type(self).__name__} takes float32 input, got {x.dtype}")
        return np.ascontiguousarray(x.detach().numpy())


class SparseLinear(_CsrModule):
    """A Linear layer whose zero weights are skipped (CSR weight, numba kernel, bias).

    ``forward`` accepts ``(..., in_features)`` like :class:`torch.nn.Linear`.
    Build one with :meth:`from_linear`.
    """

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> SparseLinear:
        """The layer's weights in CSR form; exact zeros of the weight are dropped."""
        weight = linear.weight.detach().to("cpu", torch.float32).numpy()
        return cls(Csr.from_dense(weight), linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias`` over the last dimension of ``x``."""
        if x.shape[-1] != self.in_features:
            raise SparseKernelError(
                f"SparseLinear expects {self.in_features} input features, got shape "
                f"{tuple(x.shape)}"
            )
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        samples = flat.shape[0]
        csr, bias = self._views()
        if samples >= COLUMN_KERNEL_FROM:
            # Columns layout: inputs x samples (free when x is the transposed output of
            # another sparse layer), result outputs x samples, handed back transposed.
            columns = self._check(flat.t())[None]
            out = sparse_kernels.rows_times_columns(csr, columns, bias)
            result = torch.from_numpy(out[0]).t()
        else:
            out = sparse_kernels.rows_times_vectors(csr, self._check(flat), bias)
            result = torch.from_numpy(out)
        return result.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"nnz={self.nnz}, sparsity={self.sparsity:.1%}, bias={self.has_bias}"
        )


class SparseConv1x1(_CsrModule):
    """A 1x1 ``Conv2d`` (groups 1, no padding; any stride) whose zero weights are skipped.

    Per sample the input ``(C, H, W)`` is a ``(C, H*W)`` matrix, the layout the
    column kernel reads, and the output ``(O, H*W)`` is already ``(O, H, W)``.
    """

    def __init__(self, csr: Csr, bias: Tensor | None, stride: tuple[int, int]) -> None:
        super().__init__(csr, bias)
        self.stride = stride

    @staticmethod
    def supports(conv: nn.Module) -> bool:
        """Whether ``conv`` is a 1x1 Conv2d this layer can replace."""
        return (
            isinstance(conv, nn.Conv2d)
            and tuple(conv.kernel_size) == (1, 1)
            and conv.groups == 1
            and tuple(conv.dilation) == (1, 1)
            and isinstance(conv.padding, tuple)
            and tuple(conv.padding) == (0, 0)
        )

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> SparseConv1x1:
        """The convolution's weights in CSR form; exact zeros are dropped."""
        if not cls.supports(conv):
            raise SparseKernelError(
                "only 1x1 Conv2d layers without padding, dilation or groups run sparse"
            )
        weight = conv.weight.detach().to("cpu", torch.float32).reshape(conv.out_channels, -1)
        stride = (int(conv.stride[0]), int(conv.stride[1]))
        return cls(Csr.from_dense(weight.numpy()), conv.bias, stride)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` of shape ``(N, C, H, W)`` (or ``(C, H, W)``)."""
        single = x.dim() == 3
        batch = x[None] if single else x
        if batch.dim() != 4 or batch.shape[1] != self.in_features:
            raise SparseKernelError(
                f"SparseConv1x1 expects (N, {self.in_features}, H, W) input, got {tuple(x.shape)}"
            )
        if self.stride != (1, 1):
            batch = batch[:, :, :: self.stride[0], :: self.stride[1]]
        n, c, h, w = batch.shape
        columns = self._check(batch.reshape(n, c, h * w))
        csr, bias = self._views()
        out = sparse_kernels.rows_times_columns(csr, columns, bias)
        result = torch.from_numpy(out).reshape(n, self.out_features, h, w)
        return result[0] if single else result

    def flops_for(self, x: Tensor) -> int:
        """Floating-point operations of one call on ``x`` (strided positions only)."""
        h, w = x.shape[-2], x.shape[-1]
        positions = -(-h // self.stride[0]) * -(-w // self.stride[1])
        samples = x.numel() // max(1, self.in_features * h * w)
        return 2 * self.nnz * samples * positions

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, kernel_size=(1, 1), "
            f"stride={self.stride}, nnz={self.nnz}, sparsity={self.sparsity:.1%}"
        )


class TorchCsrLinear(nn.Module):
    """A Linear layer run by torch's own sparse CSR product (cuSPARSE on CUDA, MKL or
    torch's kernel on the CPU): the sparse form on devices the numba kernels do not serve,
    and the baseline they are measured against."""

    weight: Tensor
    bias: Tensor | None

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", linear.weight.detach().to_sparse_csr())
        bias = None if linear.bias is None else linear.bias.detach().clone()
        self.register_buffer("bias", bias)

    @property
    def nnz(self) -> int:
        """Number of stored (kept) weights."""
        return int(self.weight.values().numel())

    def stored_values(self) -> list[Tensor]:
        """The numbers this layer holds as weights: kept values, and the bias if it has one."""
        values = self.weight.values()
        return [values] if self.bias is None else [values, self.bias]

    def flops_for(self, x: Tensor) -> int:
        """Floating-point operations of one call on ``x`` (2 per kept weight and vector)."""
        return 2 * self.nnz * (x.numel() // max(1, self.in_features))

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias`` over the last dimension of ``x``."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        if self.bias is None:
            out = torch.mm(self.weight, flat.t())
        else:
            out = torch.addmm(self.bias[:, None], self.weight, flat.t())
        return out.t().reshape(*lead, self.out_features)
