"""Self-supervised losses and their diagnostics.

``NTXentLoss`` (contrastive, any number of replicas per jet) and ``VICRegLoss`` (no negatives)
take the views of a batch of jets as one ``(N, R, D)`` tensor or as R tensors ``(N, D)``, so a
training step reads ``loss(model(view_a), model(view_b))``. :mod:`gnnjets.losses.diagnostics`
holds the numbers to log alongside (alignment, uniformity, pair cosines, effective rank).
"""

from gnnjets.losses.diagnostics import (
    alignment,
    contrastive_diagnostics,
    effective_rank,
    positive_negative_cosine,
    uniformity,
)
from gnnjets.losses.ntxent import NTXentLoss, stack_views
from gnnjets.losses.vicreg import VICRegLoss, covariance_loss, invariance_loss, variance_loss

__all__ = [
    "NTXentLoss",
    "VICRegLoss",
    "alignment",
    "contrastive_diagnostics",
    "covariance_loss",
    "effective_rank",
    "invariance_loss",
    "positive_negative_cosine",
    "stack_views",
    "uniformity",
    "variance_loss",
]
