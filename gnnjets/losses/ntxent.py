"""NT-Xent, the SimCLR contrastive loss, for any number of detector replicas per jet.

Conventions used by every loss in :mod:`gnnjets.losses`: a batch of embeddings is either one
tensor ``z`` of shape ``(N, R, D)`` (N jets, R >= 2 views of each: detector replicas and/or
augmentations, D features) or the R views given separately as ``(N, D)`` tensors, so a training
step reads ``loss(model(view_a), model(view_b))`` as in lightly. Row ``n`` of every view belongs
to the same jet. :func:`stack_views` turns either form into the ``(N, R, D)`` tensor; flattened,
embedding ``(n, r)`` sits at row ``a = n * R + r``.

Losses compute in float32 (float64 inputs stay float64) with autocast switched off inside, so
they can be called on the bf16 outputs of a model run under ``torch.autocast``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_REDUCTIONS = ("mean", "sum", "none")


def stack_views(*views: Tensor | Sequence[Tensor]) -> Tensor:
    """The ``(N, R, D)`` tensor of a batch of views, whichever way the views were passed.

    Accepts one ``(N, R, D)`` tensor, R >= 2 tensors ``(N, D)`` (``stack_views(z_a, z_b)``), or a
    single list/tuple of those ``(N, D)`` tensors. The dtype is kept (no copy for a 3-D tensor).

    Raises:
        TypeError: an input is not a floating-point tensor.
        ValueError: wrong number of dimensions, fewer than two views, or views of different shapes.
    """
    if len(views) == 1 and isinstance(views[0], (list, tuple)):
        views = tuple(views[0])
    if len(views) == 0:
        raise ValueError("no views given; pass a (N, R, D) tensor or two or more (N, D) tensors")
    for i, view in enumerate(views):
        if not isinstance(view, Tensor):
            raise TypeError(f"view {i} must be a torch.Tensor, not {type(view).__name__}: {view!r}")
        if not view.is_floating_point():
            raise TypeError(f"view {i} must be a floating-point tensor, not {view.dtype}")
    if len(views) == 1:
        (z,) = views
        if z.dim() == 3:
            if z.shape[1] < 2:
                raise ValueError(f"z of shape {tuple(z.shape)} = (N, R, D) has R = {z.shape[1]} view; "
                                 "the positives of a jet are its other views, so R must be at least 2")
            return z
        if z.dim() == 2:
            raise ValueError(f"a single tensor of shape {tuple(z.shape)} holds one view; pass two or more "
                             "(N, D) views, loss(z_a, z_b), or one (N, R, D) tensor")
        raise ValueError(f"z must have shape (N, R, D), not {tuple(z.shape)}")
    for i, view in enumerate(views):
        if view.dim() != 2:
            raise ValueError(f"with several views each must have shape (N, D); view {i} has shape "
                             f"{tuple(view.shape)}")
        if view.shape != views[0].shape:
            raise ValueError(f"all views must have the same shape (N, D); view 0 has {tuple(views[0].shape)}, "
                             f"view {i} has {tuple(view.shape)}")
    dtype = views[0].dtype
    for view in views[1:]:
        dtype = torch.promote_types(dtype, view.dtype)
    return torch.stack([view.to(dtype) for view in views], dim=1)  # (N, R, D)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half and bfloat16 inputs, the input dtype otherwise (float32 or float64)."""
    return torch.promote_types(dtype, torch.float32)


class NTXentLoss(nn.Module):
    r"""Normalised-temperature cross entropy (SimCLR, Chen et al. 2020, arXiv:2002.05709),
    generalised to R >= 2 views per jet by averaging over the R - 1 positives of each anchor.

    The M = N R embeddings are normalised, :math:`\hat z_a = z_a / \lVert z_a \rVert`, and
    compared by :math:`s_{ab} = \hat z_a \cdot \hat z_b / \tau`. For an anchor a = (n, r), the
    positives P(a) = {(n, r') : r' != r} are the other views of the same jet and the negatives are
    the (N - 1) R views of the other jets. The loss of the anchor is

    .. math::

        \ell_a = \frac{1}{R-1} \sum_{p \in P(a)}
                 -\log \frac{\exp(s_{ap})}{\sum_{i \in \mathcal D(a)} \exp(s_{ai})}
               = \log \sum_{i \in \mathcal D(a)} \exp(s_{ai})
                 - \frac{1}{R-1} \sum_{p \in P(a)} s_{ap},

    with the denominator set

    * ``positive_in_denominator=True`` (default): :math:`\mathcal D(a) = \{i \ne a\}`, all
      M - 1 other embeddings. For R = 2 this is exactly the NT-Xent of SimCLR and of the
      detector-replica talk (replica SSL, arXiv:2503.11632: :math:`\sum_{i \ne a}^{2N}`), and the loss of the JetCLR
      code; for R > 2 it is SupCon's :math:`\mathcal L_{out}` with the jet as the label.
    * ``positive_in_denominator=False``: :math:`\mathcal D(a) = \{i \notin P(a) \cup \{a\}\}`,
      the negatives only: the decoupled contrastive loss (DCL, Yeh et al. 2022,
      arXiv:2110.06848). JetCLR's Eq. (7), read literally (:math:`j \ne i` drops
      :math:`z_i'` too), is this form.

    The reduction is over the M anchors, so with R = 2 the mean is SimCLR's average over the 2N
    (anchor, positive) terms. Lower bounds: with the positive in the denominator
    :math:`\ell_a \ge \log(R-1)`; an identical embedding for every jet gives
    :math:`\log(NR-1)` (with) or :math:`\log((N-1)R)` (without).

    The log-sum-exp runs on a masked logit matrix (excluded entries set to :math:`-\infty`), so
    small temperatures do not overflow; the whole computation is in float32 (float64 stays
    float64) with autocast disabled, so bf16 model outputs are fine.

    Args:
        temperature: :math:`\tau > 0`; 0.1 is a common SimCLR choice for batches of a few
            hundred pairs (replica SSL, arXiv:2503.11632, uses N = 300 pairs but states no value). Default 0.1.
        positive_in_denominator: keep the positives' terms in the denominator (SimCLR, arXiv:2002.05709; replica SSL)
            or drop them (decoupled). Default True.
        reduction: ``"mean"`` over the M anchors, ``"sum"``, or ``"none"`` for the ``(N, R)``
            per-anchor losses. Default ``"mean"``.

    Shapes:
        - input: ``z`` of shape (N, R, D), or R tensors (N, D) (or one list/tuple of them),
          N >= 2 jets, R >= 2 views.
        - output: scalar for ``"mean"`` and ``"sum"``, (N, R) for ``"none"``; float32 (float64
          for float64 input).

    Example::

        loss_fn = NTXentLoss(temperature=0.1)
        loss = loss_fn(model(view_a), model(view_b))
    """

    def __init__(self, temperature: float = 0.1, positive_in_denominator: bool = True, reduction: str = "mean"):
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"'temperature' must be a positive finite number, not {temperature!r}")
        if not isinstance(positive_in_denominator, bool):
            raise TypeError(f"'positive_in_denominator' must be a bool, not {positive_in_denominator!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"'reduction' must be one of {', '.join(map(repr, _REDUCTIONS))}, not {reduction!r}")
        self.temperature = float(temperature)
        self.positive_in_denominator = positive_in_denominator
        self.reduction = reduction

    def forward(self, *views: Tensor | Sequence[Tensor]) -> Tensor:
        z = stack_views(*views)  # (N, R, D)
        n_jets, n_views, dim = z.shape
        if n_jets < 2:
            raise ValueError(f"NT-Xent needs at least 2 jets per batch (the other jets are the negatives), "
                             f"got N = {n_jets}")
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = F.normalize(z.to(compute_dtype(z.dtype)), dim=-1)
            flat = z.reshape(n_jets * n_views, dim)  # (M, D), row a = n * R + r
            logits = torch.einsum("ad,bd->ab", flat, flat) / self.temperature  # (M, D), (M, D) -> (M, M)

            jet = torch.arange(n_jets, device=z.device).repeat_interleave(n_views)  # (M,)
            same_jet = jet[:, None] == jet[None, :]  # (M, M)
            is_self = torch.eye(len(jet), dtype=torch.bool, device=z.device)  # (M, M)
            is_positive = same_jet & ~is_self  # (M, M), R - 1 per row
            excluded = is_self if self.positive_in_denominator else same_jet  # (M, M)

            log_denominator = torch.logsumexp(logits.masked_fill(excluded, float("-inf")), dim=1)  # (M,)
            mean_positive = logits.masked_fill(~is_positive, 0.0).sum(dim=1) / (n_views - 1)  # (M,)
            loss = log_denominator - mean_positive  # (M,)

        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss.reshape(n_jets, n_views)

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, positive_in_denominator={self.positive_in_denominator}, "
                f"reduction={self.reduction!r}")
