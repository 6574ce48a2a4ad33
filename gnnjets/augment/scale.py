"""A common energy-scale factor per view: every energy of a jet multiplied by one random number."""

from __future__ import annotations

import torch

from gnnjets.augment.base import JetTransform, graph_ids
from gnnjets.base.checks import check_number
from gnnjets.graphs.features import node_energy_reference, with_energies


def scale_jet_energy(data, factor: torch.Tensor, scaling):
    """``data`` (a copy) with the energies of each graph multiplied by its ``factor`` (num_graphs,).

    Node energies, the graph's ``energy_ref`` and ``jet_e`` scale together (the jet-energy scale
    of a detector moves everything at once); the log-energy and significance columns follow.
    """
    graph, _ = graph_ids(data)
    factor = factor.to(device=data.energy.device, dtype=data.energy.dtype)
    new_energy = data.energy * factor[graph]
    if getattr(data, "energy_ref", None) is not None:
        data.energy_ref = data.energy_ref * factor
    reference = node_energy_reference(data)
    data.x = with_energies(data.x, data.node_type, data.energy, new_energy, scaling, reference)
    data.energy = new_energy
    return data


class ScaleJetEnergy(JetTransform):
    """Multiply all energies of each jet by ``exp(s)``, ``s`` uniform in [-max_log_scale, max_log_scale].

    A calorimeter's energy scale is known to a few per cent; two replicas that differ by a common
    factor are the same jet, so the representation should not hinge on the overall scale. With
    jet-relative log-energies (``FeatureScaling.energy_reference = "jet"``) only the cell
    significances move. Total energy changes by the factor, by design (the one transform here that
    does not conserve it).

    Args:
        max_log_scale: half-width of the uniform range of the log factor (0.1: +-10 %).
        generator, scaling: see :class:`~gnnjets.augment.base.JetTransform`.
    """

    moves_nodes = False

    def __init__(self, max_log_scale: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.max_log_scale = check_number("max_log_scale", max_log_scale, 0, 1)

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):
        _, num_graphs = graph_ids(data)
        log_scale = (2 * torch.rand(num_graphs, generator=generator, dtype=torch.float64) - 1) * self.max_log_scale
        return scale_jet_energy(data, torch.exp(log_scale), self.scaling)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_log_scale={self.max_log_scale:.3g})"
