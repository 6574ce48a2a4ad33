r"""Cheap numbers to log during self-supervised training: is the representation aligned,
uniform, and not collapsing?

* alignment and uniformity (Wang & Isola 2020, arXiv:2005.10242) of the normalised projector
  outputs: positives should be close (alignment -> 0), the batch should spread over the
  hypersphere (uniformity well below 0: about :math:`-2t` for many points spread uniformly in
  high dimension, 0 for a collapse onto one point);
* the mean cosine similarity of positive and of negative pairs;
* the effective rank (Roy & Vetterli 2007) of the backbone and projector embeddings: a
  dimensional collapse shows as a rank far below the embedding dimension, down to 1.

Embeddings follow the conventions of :mod:`gnnjets.losses.ntxent`: ``z`` is ``(N, R, D)`` (N
jets, R views) or R tensors ``(N, D)``. Every function runs under ``torch.no_grad()``, computes in
float32 or better, and costs one ``(N R) x (N R)`` similarity matrix or one SVD of an
``(N R) x D`` matrix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gnnjets.losses.ntxent import compute_dtype, stack_views


@torch.no_grad()
def alignment(z_a: Tensor, z_b: Tensor, alpha: float = 2.0) -> Tensor:
    r"""Mean distance between the normalised embeddings of positive pairs:
    :math:`\frac{1}{N} \sum_n \lVert \hat z_{a,n} - \hat z_{b,n} \rVert^\alpha`.

    0 for perfectly aligned views; :math:`2^{\alpha/2}` for orthogonal ones, :math:`2^\alpha` for
    opposite ones. (Related to the cosine: for alpha = 2 it is :math:`2 - 2 \cos`.)

    Args:
        alpha: the power of the distance. Default 2 (Wang & Isola).

    Shapes: ``z_a``, ``z_b`` (N, D) -> scalar.
    """
    z_a = F.normalize(z_a.to(compute_dtype(z_a.dtype)), dim=-1)  # (N, D)
    z_b = F.normalize(z_b.to(compute_dtype(z_b.dtype)), dim=-1)  # (N, D)
    return (z_a - z_b).norm(dim=-1).pow(alpha).mean()


@torch.no_grad()
def uniformity(z: Tensor, t: float = 2.0) -> Tensor:
    r"""Log of the mean Gaussian potential between distinct normalised embeddings:
    :math:`\log \binom{N}{2}^{-1} \sum_{i<j} \exp(-t \lVert \hat z_i - \hat z_j \rVert^2)`.

    0 when all embeddings coincide, lower the more uniformly they cover the hypersphere,
    never below :math:`-4t`. Computed as a log-sum-exp.

    Args:
        t: the inverse width of the potential. Default 2 (Wang & Isola).

    Shapes: ``z`` (N, D), N >= 2 -> scalar.
    """
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"uniformity needs z of shape (N, D) with N >= 2, not {tuple(z.shape)}")
    z = F.normalize(z.to(compute_dtype(z.dtype)), dim=-1)  # (N, D)
    squared_distance = torch.pdist(z).pow(2)  # (N (N - 1) / 2,), pairs i < j
    return torch.logsumexp(-t * squared_distance, dim=0) - math.log(len(squared_distance))


@torch.no_grad()
def positive_negative_cosine(*views: Tensor | Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Mean cosine similarity of the positive pairs (two views of one jet) and of the negative
    pairs (views of two different jets), over all such pairs of the batch.

    Shapes: ``z`` (N, R, D) or R tensors (N, D), N >= 2, R >= 2 -> (scalar, scalar).
    """
    z = stack_views(*views)  # (N, R, D)
    n_jets, n_views, dim = z.shape
    if n_jets < 2:
        raise ValueError(f"negative pairs need at least 2 jets, got N = {n_jets}")
    flat = F.normalize(z.to(compute_dtype(z.dtype)), dim=-1).reshape(n_jets * n_views, dim)  # (M, D)
    cosine = torch.einsum("ad,bd->ab", flat, flat)  # (M, D), (M, D) -> (M, M)
    jet = torch.arange(n_jets, device=z.device).repeat_interleave(n_views)  # (M,)
    same_jet = jet[:, None] == jet[None, :]  # (M, M)
    is_positive = same_jet & ~torch.eye(len(jet), dtype=torch.bool, device=z.device)  # (M, M)
    # the matrix is symmetric, so the mean over ordered pairs is the mean over unordered ones
    return cosine[is_positive].mean(), cosine[~same_jet].mean()


@torch.no_grad()
def effective_rank(h: Tensor) -> Tensor:
    r"""Effective rank (Roy & Vetterli 2007) of the centred embedding matrix:
    :math:`\exp(-\sum_k p_k \log p_k)` with :math:`p_k = \sigma_k / \sum_j \sigma_j` its
    normalised singular values.

    Between 1 (rank one: a dimensional collapse) and :math:`\min(N, D)` (all singular values
    equal); 0 for a matrix whose rows are all equal (complete collapse). Computed in float64.

    Shapes: ``h`` (N, D), or (..., D) whose leading dimensions are flattened into rows -> scalar.
    """
    if h.dim() < 2:
        raise ValueError(f"effective_rank needs h of shape (N, D), not {tuple(h.shape)}")
    h = h.reshape(-1, h.shape[-1]).to(torch.float64)  # (N, D)
    singular = torch.linalg.svdvals(h - h.mean(dim=0))  # (min(N, D),)
    total = singular.sum()
    if total <= 0:
        return torch.zeros((), dtype=torch.float64, device=h.device)
    p = singular / total  # (min(N, D),)
    return torch.exp(-torch.special.xlogy(p, p).sum())


@torch.no_grad()
def contrastive_diagnostics(h: Tensor | Sequence[Tensor], z: Tensor | Sequence[Tensor]) -> dict[str, float]:
    """Everything above as plain floats, for a logger.

    ``alignment`` is averaged over the view pairs and ``uniformity`` over the views (each view's
    N jets, as Wang & Isola do); the cosines are over all positive / negative pairs; the
    effective ranks are over all N R rows of ``h`` (backbone) and ``z`` (projector).

    Returns:
        ``{"alignment", "uniformity", "pos_cosine", "neg_cosine", "effective_rank_h",
        "effective_rank_z"}``.

    Shapes: ``h`` (N, R, D_h), R tensors (N, D_h), or (N R, D_h); ``z`` (N, R, D_z) or R
    tensors (N, D_z).
    """
    z = stack_views(z)  # (N, R, D_z)
    n_views = z.shape[1]
    h = h if isinstance(h, Tensor) else stack_views(h)  # (N, R, D_h) or (N R, D_h)
    pairs = list(itertools.combinations(range(n_views), 2))
    positive, negative = positive_negative_cosine(z)
    return {
        "alignment": sum(alignment(z[:, r], z[:, q]).item() for r, q in pairs) / len(pairs),
        "uniformity": sum(uniformity(z[:, r]).item() for r in range(n_views)) / n_views,
        "pos_cosine": positive.item(),
        "neg_cosine": negative.item(),
        "effective_rank_h": effective_rank(h).item(),
        "effective_rank_z": effective_rank(z).item(),
    }
