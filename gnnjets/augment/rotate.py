"""Rotation of a jet in the (eta, phi) plane about its energy-weighted axis (JetCLR, arXiv:2108.04253, Sec. 2)."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch_geometric.utils import scatter

from gnnjets.augment.base import JetTransform, graph_ids, uniform
from gnnjets.graphs.features import FeatureScaling, with_positions


def energy_weighted_axis(pos: Tensor, energy: Tensor, graph: Tensor, num_graphs: int) -> Tensor:
    """(num_graphs, 2) energy-weighted centroid of each graph's ``pos``.

    Weights are ``max(energy, 0)``: negative-noise cells carry no physical energy. A graph with no
    positive energy gets the origin (the reconstructed jet axis).
    """
    weight = energy.clamp(min=0).double()  # (N,)
    total = scatter(weight, graph, dim=0, dim_size=num_graphs, reduce="sum")  # (G,)
    moment = scatter(pos.double() * weight[:, None], graph, dim=0, dim_size=num_graphs, reduce="sum")  # (G, 2)
    return torch.where(total[:, None] > 0, moment / total.clamp(min=1e-300)[:, None], torch.zeros_like(moment))


def rotate_jet(data, angle: Tensor, scaling: FeatureScaling | None = None, update_derived: bool = True):
    """``data`` (a copy, not modified in place) with every graph rotated by its ``angle``.

    Args:
        data: a JetGraph or a Batch of them.
        angle: (num_graphs,) radians, counter-clockwise in the (eta, phi) plane.
        scaling: the graphs' feature scaling (for the delta_eta/phi columns of ``x``).
        update_derived: recompute ``x``'s angle columns and ``edge_attr`` (``False``: left stale
            for a caller that recomputes them, see :func:`~gnnjets.graphs.features.with_positions`).

    ``pos`` turns about the energy-weighted axis; the angle columns of ``x`` and ``edge_attr``
    follow, energies and everything else stay. Pairwise distances are kept exactly (up to
    rounding); the jet mass is not (rotations in (eta, phi) are not Lorentz transformations),
    a negligible change for jets with R <~ 1 (JetCLR, arXiv:2108.04253, Sec. 2).
    """
    graph, num_graphs = graph_ids(data)
    axis = energy_weighted_axis(data.pos, data.energy, graph, num_graphs)[graph]  # (N, 2)
    angle = angle.to(device=data.pos.device, dtype=torch.float64)[graph]  # (N,)
    cos, sin = torch.cos(angle), torch.sin(angle)
    relative = data.pos.double() - axis  # (N, 2)
    rotated = torch.stack([cos * relative[:, 0] - sin * relative[:, 1],
                           sin * relative[:, 0] + cos * relative[:, 1]], dim=1) + axis
    return with_positions(data, rotated.to(data.pos.dtype), scaling or FeatureScaling(), update_derived)


class RotateJet(JetTransform):
    """Rotate each jet about its energy-weighted axis by an angle drawn uniformly in [0, max_angle).

    Args:
        max_angle: upper end of the angle range [rad]; the default 2 pi samples all orientations,
            as JetCLR does (JetCLR, arXiv:2108.04253, Sec. 2).
        generator, scaling: see :class:`~gnnjets.augment.base.JetTransform`.
    """

    def __init__(self, max_angle: float = 2 * math.pi, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_angle, bool) or not isinstance(max_angle, (int, float)) or not 0 <= max_angle <= 2 * math.pi:
            raise ValueError(f"'max_angle' must be a number in [0, 2 pi], not {max_angle!r}")
        self.max_angle = float(max_angle)

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):
        _, num_graphs = graph_ids(data)
        return rotate_jet(data, uniform(num_graphs, 0.0, self.max_angle, generator), self.scaling, update_derived)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_angle={self.max_angle:.3f})"
