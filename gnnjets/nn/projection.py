"""Projection head: the representation h -> the contrastive space z (SimCLR, Chen et al. 2020)."""

from __future__ import annotations

from torch import Tensor, nn

from gnnjets.nn.mlp import mlp


class ProjectionHead(nn.Module):
    r"""An MLP from the embedding h to z, which only feeds the loss:

    .. math::
        z = W_n\, \sigma(\cdots \sigma(W_1 h + b_1) \cdots) + b_n \qquad (n = \text{layers}, \sigma = \text{SiLU})

    The loss is computed on z, and h is kept for downstream tasks: the head absorbs the
    invariances the loss enforces, so h retains more information (SimCLR; JetCLR, arXiv:2108.04253, finds
    the same for jets). No BatchNorm (see :func:`~gnnjets.nn.mlp.mlp`).

    Args:
        in_dim: D, the width of h.
        out_dim: D_z.
        hidden_dim: width of the hidden layers (default D).
        layers: number of linear layers (default 2; 1 is a linear map).

    Shapes:
        h (B, D) -> z (B, D_z)
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, layers: int = 2):
        super().__init__()
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"layers must be a positive int, not {layers!r}")
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        self.net = mlp(in_dim, *([hidden_dim] * (layers - 1)), out_dim)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)
