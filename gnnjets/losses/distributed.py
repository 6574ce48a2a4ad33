"""Negatives from every rank: the projections of all processes of a distributed job, with gradients.

Under DDP each process sees B jets. A contrastive loss on the local batch alone trains N ranks
with N small batches (B - 1 negatives per anchor) instead of one large one (N B - 1).
:func:`gather_across_ranks` concatenates the projections of every rank, rank 0's first; its
backward sums the gradient of the gathered rows over the ranks (an all-reduce) and hands each
rank the rows it contributed, the gradient of its own rows summed over every rank's loss. Every rank then computes the same loss L on the N B
jets; rank r's rows receive N dL/dz_r, and DDP's average over the ranks brings the parameter
gradient back to exactly dL/dtheta: N ranks x B jets train like one process on N B jets.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """The number of processes of the job (1 outside torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherWithGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z.contiguous())
        ctx.rows = (dist.get_rank() * z.shape[0], (dist.get_rank() + 1) * z.shape[0])
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on every rank's rows: sum their gradients
        return grad[ctx.rows[0]:ctx.rows[1]]


def gather_across_ranks(z: Tensor) -> Tensor:
    """``z`` (B, ...) of every rank concatenated along dim 0, rank order, differentiable; ``z`` itself
    in a single process. Every rank must pass the same shape (the loader drops short batches)."""
    if world_size() == 1:
        return z
    return _GatherWithGradient.apply(z)
