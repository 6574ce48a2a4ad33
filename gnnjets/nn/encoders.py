"""Input encoders: node features of cells and tracks, and edge attributes, into the network's widths.

Cells and tracks measure different things. Of the columns of ``x`` (:mod:`gnnjets.graphs.features`)
a cell fills log E, delta eta, delta phi, its layer one-hot and the significance E/sigma, and has
charge = d0 = z0 = 0; a track fills log pT, delta eta, delta phi, charge, d0 and z0, and has
significance 0. A shared encoder would have to learn that those zeros mean "not applicable", not
"measured zero" (a neutral cell is not a track of charge 0), so each node type gets its own MLP
reading only its meaningful columns. The six cell layers share one MLP: the layer one-hot enters its
first linear layer, which amounts to a learned per-layer embedding added to the cell's features, and
lets the layers share what they have in common (energy and position) with a sixth of the parameters
of six separate MLPs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gnnjets.graphs.features import (
    CHARGE, D0, DELTA_ETA, DELTA_PHI, EDGE_DELTA_ETA, EDGE_DELTA_PHI, EDGE_DELTA_R, EDGE_TYPE, EDGE_TYPE_NAMES,
    LOG_COUNT, LOG_ENERGY, N_CALO_LAYERS, NODE_TYPE_OFFSET, NUM_EDGE_FEATURES, SIGNIFICANCE, TRACK, Z0,
)
from gnnjets.nn.mlp import mlp

#: columns of ``x`` read by the cell encoder: log E, delta eta, delta phi, layer one-hot (6), E/sigma,
#: log count (> 0 for the per-layer remainder nodes)
CELL_COLUMNS = (LOG_ENERGY, DELTA_ETA, DELTA_PHI, *range(NODE_TYPE_OFFSET, NODE_TYPE_OFFSET + N_CALO_LAYERS),
                SIGNIFICANCE, LOG_COUNT)
#: columns of ``x`` read by the track encoder: log pT, delta eta, delta phi, charge, d0, z0
TRACK_COLUMNS = (LOG_ENERGY, DELTA_ETA, DELTA_PHI, CHARGE, D0, Z0)
NUM_EDGE_TYPES = len(EDGE_TYPE_NAMES)


class NodeEncoder(nn.Module):
    """Type-specific node encoders: ``h_i = MLP_cell(x_i[cell columns])`` for cells,
    ``h_i = MLP_track(x_i[track columns])`` for tracks (two layers each, SiLU).

    Args:
        hidden: output width H.

    Shapes:
        x (N, F), node_type (N,) int64 in 0..6 (6 = track) -> (N, H)
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.register_buffer("cell_columns", torch.tensor(CELL_COLUMNS), persistent=False)
        self.register_buffer("track_columns", torch.tensor(TRACK_COLUMNS), persistent=False)
        self.cell = mlp(len(CELL_COLUMNS), hidden, hidden)
        self.track = mlp(len(TRACK_COLUMNS), hidden, hidden)

    def forward(self, x: Tensor, node_type: Tensor) -> Tensor:
        is_track = node_type == TRACK  # (N,)
        cell_rows = torch.nonzero(~is_track).squeeze(1)  # (N_cells,)
        track_rows = torch.nonzero(is_track).squeeze(1)  # (N_tracks,)
        h_cell = self.cell(x[cell_rows][:, self.cell_columns])  # (N_cells, H)
        h_track = self.track(x[track_rows][:, self.track_columns])  # (N_tracks, H)
        h = h_cell.new_empty((x.shape[0], h_cell.shape[1]))  # every row is filled below
        return h.index_copy(0, cell_rows, h_cell).index_copy(0, track_rows, h_track.to(h_cell.dtype))

    def extra_repr(self) -> str:
        return f"cells read {len(CELL_COLUMNS)} columns, tracks {len(TRACK_COLUMNS)}"


class EdgeEncoder(nn.Module):
    """Edge inputs of the message-passing blocks: scaled angles and the edge type one-hot.

    .. math::
        e_{ij} = \\left[\\frac{\\Delta\\eta_{ij}}{s}, \\frac{\\Delta\\phi_{ij}}{s}, \\frac{\\Delta R_{ij}}{s},
                 \\mathrm{onehot}(\\mathrm{type}_{ij})\\right]

    No parameters: the first linear layer of each block weighs these. The edge type arrives as a
    float column of ``edge_attr`` (same layer, adjacent layer, track -> cell, cell -> track).

    Args:
        angle_scale: s [rad], see :attr:`~gnnjets.nn.config.BackboneConfig.edge_angle_scale`.

    Shapes:
        edge_attr (E, 4) -> (E, 3 + number of edge types)
    """

    def __init__(self, angle_scale: float = 0.1):
        super().__init__()
        self.angle_scale = angle_scale
        self.register_buffer("angle_columns", torch.tensor([EDGE_DELTA_ETA, EDGE_DELTA_PHI, EDGE_DELTA_R]),
                             persistent=False)

    @property
    def out_features(self) -> int:
        return 3 + NUM_EDGE_TYPES

    def forward(self, edge_attr: Tensor) -> Tensor:
        if edge_attr.dim() != 2 or edge_attr.shape[1] != NUM_EDGE_FEATURES:
            raise ValueError(f"edge_attr must have shape (E, {NUM_EDGE_FEATURES}) (delta_eta, delta_phi, delta_r, "
                             f"edge_type), not {tuple(edge_attr.shape)}")
        edge_type = edge_attr[:, EDGE_TYPE].long()  # (E,)
        if edge_type.numel() and (int(edge_type.min()) < 0 or int(edge_type.max()) >= NUM_EDGE_TYPES):
            raise ValueError(f"edge types must lie in 0..{NUM_EDGE_TYPES - 1} ({', '.join(EDGE_TYPE_NAMES)}), "
                             f"found {int(edge_type.min())}..{int(edge_type.max())}")
        angles = edge_attr[:, self.angle_columns] / self.angle_scale  # (E, 3)
        return torch.cat([angles, F.one_hot(edge_type, NUM_EDGE_TYPES).to(angles.dtype)], dim=1)  # (E, 7)

    def extra_repr(self) -> str:
        return f"angle_scale={self.angle_scale}, edge_types={NUM_EDGE_TYPES}"
