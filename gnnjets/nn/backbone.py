"""The graph encoder ("backbone"): a batch of jet graphs -> one embedding h per jet (replica SSL, arXiv:2503.11632).

Input: a PyG ``Batch`` (or a single graph) in the layout of :mod:`gnnjets.graphs.features`: ``x``
(N, F), ``node_type`` (N,), ``energy`` (N,) [GeV], ``edge_index`` (2, E), ``edge_attr`` (E, 4),
``batch`` (N,). Output: ``h`` (B, D), the representation used downstream.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnjets.nn.config import BackboneConfig, pooling_parts
from gnnjets.nn.edgeconv import EdgeConvBlock
from gnnjets.nn.encoders import EdgeEncoder, NodeEncoder
from gnnjets.nn.gatv2 import GATv2Block
from gnnjets.nn.mlp import mlp
from gnnjets.nn.pooling import build_pooling
from gnnjets.nn.sage import GlobalContext, MeanNeighbourBlock, NeighbourMean, mean_edge_features


def graph_index(data) -> tuple[Tensor, int]:
    """(graph of each node (N,), number of graphs): ``data.batch`` for a batch, zeros for one graph.

    The number is taken as the batch gives it, without ``int()``: a traced or exported model
    (:mod:`gnnjets.export`) then keeps the number of jets dynamic.
    """
    batch = getattr(data, "batch", None)
    if batch is None:
        return torch.zeros(data.num_nodes, dtype=torch.int64, device=data.x.device), 1
    return batch, data.num_graphs


class Backbone(nn.Module):
    r"""Type-specific encoders -> L message-passing blocks -> LayerNorm -> node readout phi -> pooling.

    .. math::
        h^{(0)}_i &= \mathrm{MLP}_{\mathrm{type}(i)}(x_i) \qquad (\text{cells, tracks: } :class:`NodeEncoder`) \\
        h^{(l)} &= \mathrm{Block}_l(h^{(l-1)}, e) \qquad l = 1..L \quad (\text{EdgeConv or GATv2, residual}) \\
        \phi_i &= \mathrm{MLP}(\mathrm{LayerNorm}(h^{(L)}_i)) \in \mathbb{R}^D \\
        h_b &= \mathrm{POOL}_{i \in b}\, \phi_i

    The readout :math:`\phi` (H -> D -> D) comes before the pooling so that every pooling, energy-
    weighted included, stays a plain weighted sum of node terms (no map after it that could break
    IR safety), and so that h can use all D > H dimensions. Every step is per node or per edge of one
    graph: h is invariant to the order of the nodes and independent of the other jets of the batch.

    Args:
        config: a :class:`~gnnjets.nn.config.BackboneConfig` (or a dict of its fields).

    Shapes:
        batch with x (N, F), node_type (N,), energy (N,), edge_index (2, E), edge_attr (E, 4),
        batch (N,) -> h (B, D)
    """

    def __init__(self, config: BackboneConfig | dict | None = None):
        super().__init__()
        config = BackboneConfig.from_dict(config) if isinstance(config, dict) or config is None else config
        if not isinstance(config, BackboneConfig):
            raise TypeError(f"config must be a BackboneConfig or a dict, not {config!r}")
        self.config = config
        self.node_encoder = NodeEncoder(config.hidden)
        self.edge_encoder = EdgeEncoder(config.edge_angle_scale)
        edge_dim = self.edge_encoder.out_features
        if config.kind == "edgeconv":
            blocks = [EdgeConvBlock(config.hidden, edge_dim, config.aggregation, config.dropout)
                      for _ in range(config.layers)]
        elif config.kind == "sage":
            blocks = [MeanNeighbourBlock(config.hidden, edge_dim, config.dropout) for _ in range(config.layers)]
        else:
            blocks = [GATv2Block(config.hidden, edge_dim, config.heads, config.dropout, config.attention_energy_beta)
                      for _ in range(config.layers)]
        self.blocks = nn.ModuleList(blocks)
        self.contexts = nn.ModuleList([GlobalContext(config.hidden) for _ in range(config.layers)]
                                      if config.global_context else [])
        self.norm = nn.LayerNorm(config.hidden)
        self.readout = mlp(config.hidden, config.embedding_dim, config.embedding_dim)
        self.pool = build_pooling(config.pooling, config.embedding_dim)

    @property
    def embedding_dim(self) -> int:
        """D, the width of h as :meth:`forward` returns it (learned part plus appended jet scalars)."""
        return self.config.output_dim

    @property
    def learned_dim(self) -> int:
        """The width of :meth:`encode`: the pooled, learned part of h."""
        return self.config.learned_dim

    def _uses_energy(self) -> bool:
        config = self.config
        return ("energy" in pooling_parts(config.pooling) or (config.kind == "edgeconv" and config.aggregation == "energy")
                or (config.kind == "gatv2" and config.attention_energy_beta > 0))

    def node_embeddings(self, data) -> Tensor:
        """phi (N, D): the per-node embeddings that the pooling sums up (for diagnostics and probes)."""
        for name in ("x", "node_type", "edge_index", "edge_attr") + (("energy",) if self._uses_energy() else ()):
            if getattr(data, name, None) is None:
                present = ", ".join(sorted(k for k in data.keys() if getattr(data, k, None) is not None))
                raise ValueError(f"the backbone needs the graph attribute {name!r}; this graph has: {present}")
        x = data.x
        if x.dim() != 2 or x.shape[1] != self.config.node_features:
            raise ValueError(f"x has shape {tuple(x.shape)} but the backbone was built for "
                             f"{self.config.node_features} feature columns (BackboneConfig.node_features); "
                             f"were the graphs built with another gnnjets.graphs.features layout?")
        energy = data.energy if self._uses_energy() else None
        h = self.node_encoder(x, data.node_type)  # (N, H)
        edge_features = self.edge_encoder(data.edge_attr)  # (E, 7)
        batch, num_graphs = graph_index(data)
        if self.config.kind == "sage":  # the neighbourhood means, once for every block
            adjacency = NeighbourMean(data.edge_index, h.shape[0])
            edge_features = mean_edge_features(data.edge_index, edge_features, h.shape[0])  # (N, 7)
        for layer, block in enumerate(self.blocks):
            if self.config.kind == "sage":
                h = block(h, adjacency, edge_features)  # (N, H)
            else:
                h = block(h, data.edge_index, edge_features, energy)  # (N, H)
            if self.contexts:
                h = self.contexts[layer](h, batch, num_graphs)  # (N, H)
        return self.readout(self.norm(h))  # (N, D)

    def encode(self, data) -> Tensor:
        """The learned part of h (B, :attr:`learned_dim`): node embeddings pooled per graph. This is
        what the projector of a contrastive loss sees."""
        phi = self.node_embeddings(data)  # (N, D)
        batch, num_graphs = graph_index(data)
        energy = data.energy if self._uses_energy() else None
        return self.pool(phi, batch, num_graphs, energy)  # (B, D * poolings)

    def forward(self, data) -> Tensor:
        """h (B, :attr:`embedding_dim`): :meth:`encode`, then the jet scalars if ``append_jet_features``."""
        h = self.encode(data)
        if not self.config.append_jet_features:
            return h
        jet_features = getattr(data, "jet_features", None)
        if jet_features is None:
            raise ValueError("append_jet_features: the graphs carry no jet_features; build them with this "
                             "version of gnnjets.graphs")
        return torch.cat([h, jet_features.to(h.dtype).reshape(h.shape[0], -1)], dim=1)

    def extra_repr(self) -> str:
        c = self.config
        return (f"kind={c.kind!r}, hidden={c.hidden}, layers={c.layers}, embedding_dim={c.embedding_dim}, "
                f"pooling={c.pooling!r}")
