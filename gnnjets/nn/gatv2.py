"""GATv2 attention over the graph's edges, as a transformer-style block (Brody et al., "How
Attentive are Graph Attention Networks?", 2022), with optional infrared-safe attention (JetCLR, arXiv:2108.04253, Sec. 3).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import softmax

from gnnjets.nn.irsafe import energy_biased_softmax
from gnnjets.nn.mlp import mlp


class GATv2Block(MessagePassing):
    r"""Multi-head GATv2 attention with edge attributes, then a node-wise feed-forward; pre-norm residuals.

    .. math::
        u &= \mathrm{LayerNorm}_1(h) \\
        s^k_{ij} &= a_k^\top\, \mathrm{LeakyReLU}_{0.2}\big(W^k_s u_j + W^k_t u_i + W^k_e e_{ij}\big) \\
        \alpha^k_{ij} &= \frac{w_j^\beta \exp s^k_{ij}}{\sum_{j' \in \mathcal{N}(i)} w_{j'}^\beta \exp s^k_{ij'}}
            \qquad (w_j = \max(E_j, 0);\ \beta = 0: \text{ the plain softmax}) \\
        h' &= h + \big\Vert_{k=1}^{K} \textstyle\sum_{j \in \mathcal{N}(i)} \alpha^k_{ij} W^k_s u_j + b \\
        h'' &= h' + \mathrm{MLP}(\mathrm{LayerNorm}_2(h'))

    for heads k = 1..K of H / K channels each, edges :math:`j \to i` (``edge_index[0] ->
    edge_index[1]``). The attention layer alone is PyG's ``GATv2Conv(H, H // K, heads=K,
    edge_dim=edge_dim, add_self_loops=False)`` (tested equal); no self loops, since the residual
    already carries :math:`h_i`. The feed-forward (H -> 2H -> H, SiLU) supplies the non-linearity
    that the attention output, linear in :math:`u_j` for given weights, lacks.

    ``beta > 0`` is the IR-safe attention of JetCLR: adding :math:`\beta \log E_j` to the logits
    makes a zero-energy node receive zero attention, so it sends nothing; with energy-weighted
    pooling the backbone then ignores such nodes (:mod:`gnnjets.nn.irsafe` says what that guarantees).

    Normalisation: LayerNorm per node (see :class:`~gnnjets.nn.edgeconv.EdgeConvBlock`).

    Args:
        hidden: node width H (input = output), a multiple of ``heads``.
        edge_dim: width of the edge inputs :math:`e_{ij}`.
        heads: K (default 4).
        dropout: dropout on both residual branches (default 0).
        energy_beta: :math:`\beta` (default 0, plain GATv2).
        negative_slope: of the LeakyReLU (default 0.2, as GATv2).

    Shapes:
        h (N, H), edge_index (2, E), edge_features (E, edge_dim), energy (N,) or None (needed for
        ``energy_beta > 0``) -> (N, H)
    """

    def __init__(self, hidden: int, edge_dim: int, heads: int = 4, dropout: float = 0.0, energy_beta: float = 0.0,
                 negative_slope: float = 0.2):
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        if energy_beta < 0:
            raise ValueError(f"energy_beta must be >= 0, not {energy_beta!r}")
        super().__init__(aggr="sum", node_dim=0)
        self.hidden, self.heads, self.channels = hidden, heads, hidden // heads
        self.energy_beta = energy_beta
        self.negative_slope = negative_slope
        self.norm = nn.LayerNorm(hidden)
        self.lin_source = nn.Linear(hidden, hidden)  # W_s: keys and values of the senders u_j
        self.lin_target = nn.Linear(hidden, hidden)  # W_t: queries of the receivers u_i
        self.lin_edge = nn.Linear(edge_dim, hidden, bias=False)  # W_e
        self.att = nn.Parameter(torch.empty(heads, self.channels))  # a_k
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.norm_feedforward = nn.LayerNorm(hidden)
        self.feedforward = mlp(hidden, 2 * hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        glorot(self.att)

    def forward(self, h: Tensor, edge_index: Tensor, edge_features: Tensor, energy: Tensor | None = None) -> Tensor:
        if self.energy_beta > 0 and energy is None:
            raise ValueError("energy_beta > 0 needs the node energies (batch.energy)")
        h = h + self.dropout(self.attention(self.norm(h), edge_index, edge_features, energy))  # (N, H)
        return h + self.dropout(self.feedforward(self.norm_feedforward(h)))  # (N, H)

    def attention(self, u: Tensor, edge_index: Tensor, edge_features: Tensor, energy: Tensor | None = None) -> Tensor:
        """The attention layer alone (no norm, no residual): ``(N, H) -> (N, H)``."""
        source = self.lin_source(u).view(-1, self.heads, self.channels)  # (N, K, C)
        target = self.lin_target(u).view(-1, self.heads, self.channels)  # (N, K, C)
        edge = self.lin_edge(edge_features).view(-1, self.heads, self.channels)  # (E, K, C)
        alpha = self.edge_updater(edge_index, source=source, target=target, edge=edge, energy=energy,
                                  size=(u.shape[0], u.shape[0]))  # (E, K)
        out = self.propagate(edge_index, source=source, alpha=alpha, size=(u.shape[0], u.shape[0]))  # (N, K, C)
        return out.reshape(-1, self.hidden) + self.bias  # (N, H)

    def edge_update(self, source_j: Tensor, target_i: Tensor, edge: Tensor, energy_j: Tensor | None,
                    index: Tensor, dim_size: int) -> Tensor:
        score = F.leaky_relu(source_j + target_i + edge, self.negative_slope)  # (E, K, C)
        logits = (score * self.att).sum(dim=-1)  # (E, K)
        if self.energy_beta > 0:
            return energy_biased_softmax(logits, index, energy_j, self.energy_beta, dim_size)
        return softmax(logits, index, num_nodes=dim_size)

    def message(self, source_j: Tensor, alpha: Tensor) -> Tensor:
        return source_j * alpha.unsqueeze(-1).to(source_j.dtype)  # (E, K, C)

    def __repr__(self) -> str:
        beta = f", energy_beta={self.energy_beta}" if self.energy_beta else ""
        return f"{self.__class__.__name__}({self.hidden}, heads={self.heads}{beta})"
