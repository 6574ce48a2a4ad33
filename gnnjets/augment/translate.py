"""Translation of a jet in the (eta, phi) plane (JetCLR, arXiv:2108.04253, Sec. 2)."""

from __future__ import annotations

import torch
from torch import Tensor

from gnnjets.augment.base import JetTransform, graph_ids, uniform
from gnnjets.base.kinematics import wrap_phi
from gnnjets.graphs.features import FeatureScaling, with_positions


def translate_jet(data, shift: Tensor, scaling: FeatureScaling | None = None, update_derived: bool = True):
    """``data`` (a copy) with the nodes of each graph shifted by its ``shift`` (num_graphs, 2) = (d_eta, d_phi).

    delta_phi is wrapped back into (-pi, pi]; ``edge_attr`` uses wrapped differences, so pairwise
    distances are unchanged even if a jet is pushed across the boundary. ``update_derived``: as
    for :func:`~gnnjets.augment.rotate_jet`.
    """
    graph, _ = graph_ids(data)
    moved = data.pos.double() + shift.to(device=data.pos.device, dtype=torch.float64)[graph]  # (N, 2)
    moved = torch.stack([moved[:, 0], wrap_phi(moved[:, 1])], dim=1)
    return with_positions(data, moved.to(data.pos.dtype), scaling or FeatureScaling(), update_derived)


class TranslateJet(JetTransform):
    """Shift each jet by d_eta, d_phi drawn independently and uniformly in [-max_shift, max_shift].

    Choice of scale: an absolute range in radians, the same for every jet, with the default 1.0 of
    JetCLR (JetCLR, arXiv:2108.04253, Sec. 2: "shifts in each direction limited to -1...1 ... performs better than
    restricting to smaller shifts"). It is larger than the jets (R = 0.4 / 0.8), so the
    (delta_eta, delta_phi) columns no longer tell where the axis is and the representation must
    depend on distances between nodes only. Smaller values suit fine-tuning on absolute positions.

    Args:
        max_shift: half-width of the uniform range for each of d_eta and d_phi [rad].
        generator, scaling: see :class:`~gnnjets.augment.base.JetTransform`.
    """

    def __init__(self, max_shift: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)) or not 0 <= max_shift <= 3:
            raise ValueError(f"'max_shift' must be a number in [0, 3], not {max_shift!r}")
        self.max_shift = float(max_shift)

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):
        _, num_graphs = graph_ids(data)
        shift = uniform(2 * num_graphs, -self.max_shift, self.max_shift, generator).view(num_graphs, 2)
        return translate_jet(data, shift, self.scaling, update_derived)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_shift={self.max_shift:.3f})"
