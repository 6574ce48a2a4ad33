"""EdgeConv block with edge attributes, pre-norm residual (Wang et al., "Dynamic Graph CNN", 2019).

The message-passing layer of the COCOA-style backbone (replica SSL, arXiv:2503.11632): each node gathers messages
computed from itself, the difference to a neighbour and the edge between them (relative angles,
edge type), on the fixed cell/track graph of :mod:`gnnjets.graphs` (no dynamic kNN).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from gnnjets.nn.config import AGGREGATIONS
from gnnjets.nn.irsafe import energy_weighted_mean


class EdgeConvBlock(MessagePassing):
    r"""EdgeConv with edge attributes inside a pre-norm residual block.

    .. math::
        u &= \mathrm{LayerNorm}(h) \\
        m_{ij} &= \sigma\big(\Theta\, [u_i,\; u_j - u_i,\; e_{ij}] + b\big) \\
        h_i' &= h_i + W \cdot \mathop{\mathrm{AGG}}_{j \in \mathcal{N}(i)} m_{ij}
        \qquad (\text{max: } h_i' = h_i + \max_j W m_{ij})

    with :math:`\sigma` = SiLU and edges :math:`j \to i` (``edge_index[0] -> edge_index[1]``).

    Two exact rewrites make it ~2.3x cheaper (forward + backward, 2 CPU threads, 115 nodes and
    1500 edges per jet, H = 64) than the textbook per-edge MLP, without changing the function:
    (1) :math:`\Theta [u_i, u_j - u_i, e_{ij}] = (\Theta_1 - \Theta_2) u_i + \Theta_2 u_j + \Theta_3 e_{ij}`,
    so the two node terms are computed once per node, N x H x H, instead of once per edge,
    E x 2H x H (E ~ 13 N); (2) for the linear aggregations (mean, sum, energy-weighted
    mean) the second linear layer commutes with the aggregation, :math:`\mathrm{AGG}_j\, W m_{ij} =
    W\, \mathrm{AGG}_j\, m_{ij}`, and runs on the nodes too. Only ``"max"`` keeps it per edge, and
    its backward through ``scatter_reduce`` (no torch-scatter) is ~10x slower than mean's: a max
    block costs ~2x a mean block.

    Normalisation: LayerNorm acts on each node on its own, so a jet's output never depends on the
    other jets of the batch (BatchNorm would couple them) nor on the size of its graph, and it is
    unchanged by adding nodes (GraphNorm's per-graph statistics are not).

    Aggregations: ``"mean"`` (default), ``"sum"``, ``"max"``, ``"energy"``: the mean weighted by
    ``max(E_j, 0)`` (:func:`~gnnjets.nn.irsafe.energy_weighted_mean`), the infrared-safe choice
    (a zero-energy node sends nothing). A node without in-edges receives 0 and keeps its h.

    Args:
        hidden: node width H (input = output).
        edge_dim: width of the edge inputs :math:`e_{ij}` (:class:`~gnnjets.nn.encoders.EdgeEncoder`).
        aggregation: one of :data:`~gnnjets.nn.config.AGGREGATIONS` (default ``"mean"``).
        dropout: dropout on the residual branch (default 0).

    Shapes:
        h (N, H), edge_index (2, E), edge_features (E, edge_dim), energy (N,) or None
        (needed for ``"energy"``) -> (N, H)
    """

    def __init__(self, hidden: int, edge_dim: int, aggregation: str = "mean", dropout: float = 0.0):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {aggregation!r}")
        super().__init__(aggr=None, node_dim=0)  # aggregate() below
        self.hidden = hidden
        self.aggregation = aggregation
        self.norm = nn.LayerNorm(hidden)
        self.lin_message = nn.Linear(2 * hidden + edge_dim, hidden)  # Theta, b on [u_i, u_j - u_i, e_ij]
        self.lin_out = nn.Linear(hidden, hidden, bias=False)  # W; no bias so that it commutes with AGG
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, edge_index: Tensor, edge_features: Tensor, energy: Tensor | None = None) -> Tensor:
        if self.aggregation == "energy" and energy is None:
            raise ValueError("aggregation='energy' needs the node energies (batch.energy)")
        u = self.norm(h)  # (N, H)
        theta = self.lin_message.weight  # (H, 2H + edge_dim)
        hidden = self.hidden
        theta_self, theta_diff, theta_edge = theta[:, :hidden], theta[:, hidden:2 * hidden], theta[:, 2 * hidden:]
        self_term = F.linear(u, theta_self - theta_diff, self.lin_message.bias)  # (N, H)
        neighbour_term = F.linear(u, theta_diff)  # (N, H)
        edge_term = F.linear(edge_features, theta_edge)  # (E, H)
        out = self.propagate(edge_index, self_term=self_term, neighbour_term=neighbour_term, edge_term=edge_term,
                             energy=energy, size=(h.shape[0], h.shape[0]))  # (N, H)
        return h + self.dropout(out)

    def message(self, self_term_i: Tensor, neighbour_term_j: Tensor, edge_term: Tensor) -> Tensor:
        m = self.act(self_term_i + neighbour_term_j + edge_term)  # (E, H)
        return self.lin_out(m) if self.aggregation == "max" else m

    def aggregate(self, inputs: Tensor, index: Tensor, dim_size: int, energy_j: Tensor | None) -> Tensor:
        if self.aggregation == "energy":
            return energy_weighted_mean(inputs, index, energy_j, dim_size)
        if self.aggregation == "max":
            # torch's scatter_reduce directly: PyG's scatter(reduce="max") warns on CUDA without torch-scatter
            out = inputs.new_zeros((dim_size, inputs.shape[1]))
            return out.scatter_reduce(0, index[:, None].expand_as(inputs), inputs, reduce="amax", include_self=False)
        return scatter(inputs, index, dim=0, dim_size=dim_size, reduce=self.aggregation)

    def update(self, aggregated: Tensor) -> Tensor:
        return aggregated if self.aggregation == "max" else self.lin_out(aggregated)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.hidden}, edge_dim={self.lin_message.in_features - 2 * self.hidden}, "
                f"aggregation={self.aggregation!r})")
