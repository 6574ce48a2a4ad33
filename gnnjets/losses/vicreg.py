r"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce, LeCun 2022,
arXiv:2105.04906), for any number of views per jet.

No negatives: the views of a jet are pulled together (invariance) while each feature is kept
spread over the batch (variance) and the features are kept decorrelated (covariance), which
together prevent the collapse to a constant embedding. The loss is built from three small pure
term functions, each on ``(N, D)`` embeddings (N jets, D features):

.. math::

    s(Z, Z') = \frac{1}{N D} \sum_{n, d} (z_{nd} - z'_{nd})^2, \qquad
    v(Z) = \frac{1}{D} \sum_d \max\!\left(0,\; \gamma - \sqrt{\mathrm{Var}_n(z_{nd}) + \epsilon}\right),

.. math::

    c(Z) = \frac{1}{D} \sum_{d \ne d'} C(Z)_{dd'}^2, \qquad
    C(Z) = \frac{1}{N-1} \sum_n (z_n - \bar z)(z_n - \bar z)^\top,

with the unbiased variance, as in the paper. Views are passed as in :mod:`gnnjets.losses.ntxent`
(one ``(N, R, D)`` tensor, or R tensors ``(N, D)``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnnjets.losses.ntxent import compute_dtype, stack_views


def invariance_loss(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared distance between two views of the same jets, :math:`s(Z, Z')`.

    Shapes: ``a``, ``b`` (N, D) -> scalar.
    """
    return F.mse_loss(a, b)


def variance_loss(x: Tensor, target: float = 1.0, eps: float = 1e-4) -> Tensor:
    r"""Hinge on the standard deviation of every feature over the batch, :math:`v(Z)`:
    zero once every feature's std reaches ``target`` (the paper's :math:`\gamma`).

    ``eps`` keeps the square root's gradient finite when a feature has collapsed; a fully
    collapsed feature costs ``target - sqrt(eps)``.

    Shapes: ``x`` (N, D), N >= 2 -> scalar.
    """
    std = torch.sqrt(x.var(dim=0) + eps)  # (D,), unbiased
    return F.relu(target - std).mean()


def covariance_loss(x: Tensor) -> Tensor:
    """Sum of the squared off-diagonal entries of the feature covariance matrix, divided by the
    number of features, :math:`c(Z)`: zero for decorrelated features.

    Shapes: ``x`` (N, D), N >= 2 -> scalar.
    """
    n, dim = x.shape
    centred = x - x.mean(dim=0)  # (N, D)
    cov = torch.einsum("nd,ne->de", centred, centred) / (n - 1)  # (N, D), (N, D) -> (D, D)
    off_diagonal = cov.masked_fill(torch.eye(dim, dtype=torch.bool, device=x.device), 0.0)  # (D, D)
    return off_diagonal.pow(2).sum() / dim


class VICRegLoss(nn.Module):
    r"""VICReg loss for R >= 2 views per jet.

    .. math::

        \mathcal L = \lambda \binom{R}{2}^{-1} \sum_{r < r'} s(Z_r, Z_{r'})
                   + \mu \frac{1}{R} \sum_r v(Z_r)
                   + \nu \frac{2}{R} \sum_r c(Z_r),

    with the terms of the module docstring: the average over view pairs of the official two-view
    loss (variance :math:`(v(Z) + v(Z'))/2`, covariance :math:`c(Z) + c(Z')`), so that for R = 2
    it is exactly the official code's loss with the paper's weights 25/25/1, and its scale does
    not grow with R.

    Computed in float32 (float64 stays float64) with autocast disabled: covariances in bf16 are
    not worth having.

    Args:
        invariance_weight: :math:`\lambda`. Default 25 (paper).
        variance_weight: :math:`\mu`. Default 25 (paper).
        covariance_weight: :math:`\nu`. Default 1 (paper value).
        variance_target: :math:`\gamma`, the std each feature is pushed up to. Default 1.0.
        eps: added to the variance under the square root. Default 1e-4 (official code).

    Shapes:
        - input: ``z`` of shape (N, R, D), or R tensors (N, D) (or one list/tuple of them),
          N >= 2 jets, R >= 2 views.
        - output: scalar.

    Example::

        loss_fn = VICRegLoss()
        loss = loss_fn(model(view_a), model(view_b))
        terms = loss_fn.terms(z_a, z_b)  # unweighted terms, for logging
    """

    def __init__(self, invariance_weight: float = 25.0, variance_weight: float = 25.0,
                 covariance_weight: float = 1.0, variance_target: float = 1.0, eps: float = 1e-4):
        super().__init__()
        for name, value in (("invariance_weight", invariance_weight), ("variance_weight", variance_weight),
                            ("covariance_weight", covariance_weight)):
            if not _is_finite_number(value) or value < 0:
                raise ValueError(f"'{name}' must be a non-negative finite number, not {value!r}")
        for name, value in (("variance_target", variance_target), ("eps", eps)):
            if not _is_finite_number(value) or value <= 0:
                raise ValueError(f"'{name}' must be a positive finite number, not {value!r}")
        self.invariance_weight = float(invariance_weight)
        self.variance_weight = float(variance_weight)
        self.covariance_weight = float(covariance_weight)
        self.variance_target = float(variance_target)
        self.eps = float(eps)

    def terms(self, *views: Tensor | Sequence[Tensor]) -> dict[str, Tensor]:
        """The unweighted ``invariance``, ``variance`` and ``covariance`` terms (scalars, with
        gradients), averaged over view pairs / views as in the class docstring."""
        z = stack_views(*views)  # (N, R, D)
        n_jets, n_views, _ = z.shape
        if n_jets < 2:
            raise ValueError(f"VICReg needs at least 2 jets per batch (it uses the batch variance), got N = {n_jets}")
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.to(compute_dtype(z.dtype))
            pairs = list(itertools.combinations(range(n_views), 2))
            invariance = sum(invariance_loss(z[:, r], z[:, q]) for r, q in pairs) / len(pairs)
            variance = sum(variance_loss(z[:, r], self.variance_target, self.eps) for r in range(n_views)) / n_views
            covariance = 2 * sum(covariance_loss(z[:, r]) for r in range(n_views)) / n_views  # pairs: c(Z) + c(Z')
        return {"invariance": invariance, "variance": variance, "covariance": covariance}

    def forward(self, *views: Tensor | Sequence[Tensor]) -> Tensor:
        terms = self.terms(*views)
        return (self.invariance_weight * terms["invariance"] + self.variance_weight * terms["variance"]
                + self.covariance_weight * terms["covariance"])

    def extra_repr(self) -> str:
        return (f"invariance_weight={self.invariance_weight}, variance_weight={self.variance_weight}, "
                f"covariance_weight={self.covariance_weight}, variance_target={self.variance_target}, "
                f"eps={self.eps}")


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
