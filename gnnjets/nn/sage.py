r"""Mean-neighbour message passing (GraphSAGE-style) with edge geometry: the cheap block for CPUs.

EdgeConv (:mod:`gnnjets.nn.edgeconv`) applies a nonlinearity to every edge: on a jet graph with
~13 in-edges per node its per-edge work (E x H gathers, additions, activations and scatters,
forward and backward) is most of a training step. Here every nonlinearity acts on nodes; the
edges only carry two *linear* averages, computed as one sparse-matrix product each:

.. math::
    u &= \mathrm{LayerNorm}(h) \\
    \bar u_i &= \frac{1}{|\mathcal N(i)|} \sum_{j \in \mathcal N(i)} u_j, \qquad
    \bar e_i = \frac{1}{|\mathcal N(i)|} \sum_{j \in \mathcal N(i)} e_{ij} \\
    h_i' &= h_i + W_2\, \sigma\big(W_1 [u_i, \bar u_i, \bar e_i] + b_1\big)

(GraphSAGE, Hamilton, Ying, Leskovec, arXiv:1706.02216, with a residual pre-norm block and the
mean edge attributes: the average offset and distance of a node's neighbours, which says where
the node sits in its shower). The neighbourhood mean is a fixed row-normalised sparse matrix A
of the batch, built once per forward pass (:func:`mean_adjacency`) and shared by every block;
``torch.sparse.mm`` multiplies it at the speed of a dense copy of the node states.

Less expressive per layer than EdgeConv (a message cannot depend nonlinearly on the pair), so the
backbone pairs it with a global context after each block (``BackboneConfig.global_context``).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter


def mean_adjacency(edge_index: Tensor, num_nodes: int) -> Tensor:
    """The row-normalised adjacency ``A[i, j] = 1 / in_degree(i)`` for each edge ``j -> i``, sparse CSR (N, N).

    A node without in-edges has an empty row: its mean is 0.
    """
    source, target = edge_index[0], edge_index[1]
    order = torch.argsort(target * num_nodes + source)  # CSR: rows (targets) in order, columns sorted
    source, target = source[order], target[order]
    degree = torch.bincount(target, minlength=num_nodes)
    crow = torch.zeros(num_nodes + 1, dtype=torch.int64, device=edge_index.device)
    crow[1:] = torch.cumsum(degree, 0)
    values = (1.0 / degree.clamp(min=1).float())[target]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's "beta" and invariant-check notices
        return torch.sparse_csr_tensor(crow, source, values, (num_nodes, num_nodes))


class NeighbourMean:
    """``u -> A u``, the mean over each node's in-neighbours, built once per forward pass for every block.

    A sparse CSR product normally; while the model is traced or exported to ONNX (which has no
    sparse matrices), the same mean as a gather and a scatter-add.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int):
        self.exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        if self.exporting:
            self.source, self.target, self.num_nodes = edge_index[0], edge_index[1], num_nodes
            ones = torch.ones_like(self.target, dtype=torch.float32)
            self.degree = scatter(ones, self.target, dim=0, dim_size=num_nodes, reduce="sum").clamp(min=1.0)
        else:
            self.matrix = mean_adjacency(edge_index, num_nodes)

    def __call__(self, u: Tensor) -> Tensor:
        if self.exporting:  # scatter-add: ONNX's ScatterElements with reduction="add" (index_add_ drops repeats)
            total = scatter(u[self.source], self.target, dim=0, dim_size=self.num_nodes, reduce="sum")
            return total / self.degree[:, None].to(u.dtype)
        with torch.autocast(u.device.type, enabled=False):  # sparse kernels take float32 only
            return torch.sparse.mm(self.matrix, u.float()).to(u.dtype)


def mean_edge_features(edge_index: Tensor, edge_features: Tensor, num_nodes: int) -> Tensor:
    """(N, F) mean of the features (E, F) of each node's in-edges; 0 for a node without in-edges."""
    target = edge_index[1]
    total = scatter(edge_features, target, dim=0, dim_size=num_nodes, reduce="sum")
    degree = scatter(torch.ones_like(target, dtype=edge_features.dtype), target, dim=0, dim_size=num_nodes,
                     reduce="sum")
    return total / degree.clamp(min=1.0)[:, None]  # scatter-adds, not bincount: they export to ONNX


class MeanNeighbourBlock(nn.Module):
    """One mean-neighbour block (see the module docstring).

    Args:
        hidden: node width H (input = output).
        edge_dim: width of the edge inputs (:class:`~gnnjets.nn.encoders.EdgeEncoder`).
        dropout: dropout on the residual branch.

    Shapes:
        h (N, H), neighbours: a :class:`NeighbourMean` of the graph, mean_edge_features (N, edge_dim)
        -> (N, H)
    """

    def __init__(self, hidden: int, edge_dim: int, dropout: float = 0.0):
        super().__init__()
        self.hidden = hidden
        self.norm = nn.LayerNorm(hidden)
        self.lin_in = nn.Linear(2 * hidden + edge_dim, hidden)
        self.lin_out = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, neighbours, mean_edge_features: Tensor) -> Tensor:
        u = self.norm(h)  # (N, H)
        message = self.lin_in(torch.cat([u, neighbours(u), mean_edge_features.to(u.dtype)], dim=1))  # (N, H)
        return h + self.dropout(self.lin_out(self.act(message)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, edge_dim={self.lin_in.in_features - 2 * self.hidden})"


class GlobalContext(nn.Module):
    r"""A virtual node: every node receives an MLP of its graph's mean node state.

    .. math:: h_i' = h_i + \mathrm{MLP}\big(\mathrm{mean}_{j \in g(i)} \mathrm{LayerNorm}(h)_j\big)

    Message passing over nearest neighbours reaches a few cells per layer and block; this carries
    what the whole jet looks like (how many prongs, where the energy is) to every node. The mean
    (not the sum) keeps it independent of the node count.

    Shapes:
        h (N, H), batch (N,) -> (N, H)
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        u = self.norm(h)
        total = scatter(u, batch, dim=0, dim_size=num_graphs, reduce="sum")  # (B, H)
        count = scatter(torch.ones_like(batch, dtype=u.dtype), batch, dim=0, dim_size=num_graphs, reduce="sum")
        count = count.clamp(min=1.0)[:, None]  # scatter-adds, not bincount: they export to ONNX
        return h + self.mlp(total / count)[batch]
