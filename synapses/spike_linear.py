"""The synapse's product ``y = x Wᵀ + b`` for training, event-driven when the input is sparse (spikes).

For an input ``x[R, J]`` with ``nnz`` nonzero entries the product only needs the weight columns of
the active inputs::

    y[r]      = b + Σ_{c : x[r,c] ≠ 0} x[r,c] W[:, c]          (forward: one bag of columns per row)
    dL/dW[:, c] = Σ_{r : x[r,c] ≠ 0} x[r,c] dL/dy[r]            (backward: one bag of rows per input)
    dL/dx     = dL/dy W                                          (dense, only if x needs a gradient)

so it costs ``nnz x out`` instead of ``R x J x out`` multiply-adds. Both sums run through
:func:`torch.nn.functional.embedding_bag` (``mode='sum'``; the per-entry values as
``per_sample_weights`` unless every nonzero is 1), over index lists built in one compiled pass. Each
output sums its terms in the order of ``c`` (forward) or ``r`` (backward), whatever the number of rows,
so a step-by-step run gives the same currents as the whole sequence at once. The path is taken for
float32 CPU tensors outside autocast whose density is at most :data:`MAX_DENSITY` and whose output has
at least :data:`MIN_OUT` features (the density bound from the measurements in docs/training.md; the
output bound an estimate: below it the list building costs about what the dense product does);
everything else is :func:`torch.nn.functional.linear`. The two differ by float rounding only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from numba import njit
from torch import nn

#: Inputs with more nonzeros than this fraction use the dense product.
MAX_DENSITY = 0.25
#: Fewer output features than this use the dense product (building the lists would cost more).
MIN_OUT = 64


@njit(cache=True)
def _count(x, row_ptr, col_ptr):
    """Row and column pointers of the nonzeros of ``x[R, J]``; True if every nonzero is 1."""
    rows, cols = x.shape
    col_ptr[:] = 0
    row_ptr[0] = 0
    binary = True
    for r in range(rows):
        n = 0
        for c in range(cols):
            v = x[r, c]
            nonzero = v != 0
            n += nonzero
            col_ptr[c + 1] += nonzero
            binary &= (v == 1) | (v == 0)
        row_ptr[r + 1] = row_ptr[r] + n
    for c in range(cols):
        col_ptr[c + 1] += col_ptr[c]
    return binary


@njit(cache=True)
def _fill(x, row_ptr, col_ptr, row_idx, col_idx, row_val, col_val):
    """The column index of each nonzero, row by row (``row_idx``, needs ``nnz + J`` slots), and the row index
    of each, column by column (``col_idx``; ``None``: not needed); their values if ``row_val`` is given."""
    rows, cols = x.shape
    nxt = col_ptr[:cols].copy()
    for r in range(rows):
        p = row_ptr[r]
        for c in range(cols):  # branch-free: write every column, advance past the nonzeros
            row_idx[p] = c
            p += x[r, c] != 0
        for q in range(row_ptr[r], row_ptr[r + 1]):
            c = row_idx[q]
            if row_val is not None:
                row_val[q] = x[r, c]
            if col_idx is not None:
                col_idx[nxt[c]] = r
                if row_val is not None:
                    col_val[nxt[c]] = x[r, c]
                nxt[c] += 1


class _Pointers(NamedTuple):
    """Where each row's and each column's nonzeros start in the lists of :func:`_bags`."""

    rows: torch.Tensor
    columns: torch.Tensor
    binary: bool  # every nonzero is 1

    @property
    def nnz(self) -> int:
        return int(self.rows[-1])


def _pointers(x: torch.Tensor) -> _Pointers:
    """The row and column pointers of the nonzeros of ``x[R, J]`` (one compiled pass)."""
    rows, columns = torch.empty(x.shape[0] + 1, dtype=torch.int32), torch.empty(x.shape[1] + 1, dtype=torch.int32)
    return _Pointers(rows, columns, bool(_count(x.numpy(), rows.numpy(), columns.numpy())))


def _bags(x: torch.Tensor, ptr: _Pointers, columns: bool):
    """``(row_idx, row_ptr, row_val)`` and, with ``columns``, ``(col_idx, col_ptr, col_val)`` of ``x``'s nonzeros
    (values ``None`` when every nonzero is 1)."""
    nnz, cols = ptr.nnz, x.shape[1]
    row_idx = torch.empty(nnz + cols, dtype=torch.int32)
    col_idx = torch.empty(nnz, dtype=torch.int32) if columns else None
    row_val = None if ptr.binary else torch.empty(nnz, dtype=x.dtype)
    col_val = None if ptr.binary or not columns else torch.empty(nnz, dtype=x.dtype)
    _fill(x.numpy(), ptr.rows.numpy(), ptr.columns.numpy(), row_idx.numpy(), *_numpy(col_idx, row_val, col_val))
    return (row_idx[:nnz], ptr.rows, row_val), ((col_idx, ptr.columns, col_val) if columns else None)


def _numpy(*tensors):
    return [None if t is None else t.numpy() for t in tensors]


def _bag_sum(bags, table: torch.Tensor) -> torch.Tensor:
    """Row ``k`` of the result: the sum of ``table``'s rows listed in bag ``k`` (times their values)."""
    idx, ptr, val = bags
    return F.embedding_bag(idx, table, ptr, mode="sum", per_sample_weights=val, include_last_offset=True)


class _SpikeLinear(torch.autograd.Function):
    """``(x[R, J], W[out, J], b | None) -> x Wᵀ + b`` through the nonzeros of ``x`` (module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, ptr: _Pointers, weight_grad: bool):
        rows, columns = _bags(x.detach(), ptr, columns=weight_grad)
        y = _bag_sum(rows, weight.detach().t().contiguous())  # (no copy for a column-major weight)
        if bias is not None:
            y += bias.detach()
        ctx.columns = columns
        ctx.save_for_backward(weight)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad = grad.contiguous()
        return (grad.mm(weight) if need_x else None,
                _bag_sum(ctx.columns, grad).t() if need_w else None,  # (autograd lays it out as the weight)
                grad.sum(0) if need_b else None, None, None)


def spike_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for ``x[..., J]``, through ``x``'s nonzeros where that is faster
    (module docstring); the same value up to float rounding, and gradients for all three."""
    if not _eligible(x, weight):
        return F.linear(x, weight, bias)
    flat = x.reshape(-1, x.shape[-1]).contiguous()
    ptr = _pointers(flat.detach())
    if ptr.nnz > MAX_DENSITY * flat.numel():
        return F.linear(x, weight, bias)
    weight_grad = torch.is_grad_enabled() and weight.requires_grad  # (the column lists serve only dL/dW)
    return _SpikeLinear.apply(flat, weight, bias, ptr, weight_grad).reshape(*x.shape[:-1], weight.shape[0])


def _eligible(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Float32 CPU tensors, a wide enough output, no autocast (module docstring)."""
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and weight.dim() == 2
            and weight.shape[0] >= MIN_OUT and x.numel() > 0 and not torch.is_autocast_enabled())


class SpikeLinear(nn.Linear):
    """``nn.Linear`` whose product runs through :func:`spike_linear` (same parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike_linear(x, self.weight, self.bias)
