"""Graph pooling: node embeddings phi_i (N, D) -> one vector per jet (B, D).

All poolings share one call, ``pool(x, batch, num_graphs, energy=None)``, reduce the nodes of each
graph only (a jet's output never depends on its batch mates), are invariant to the order of the
nodes, and give zeros for a graph without nodes. Which are infrared (IR) safe, i.e. unchanged by
adding a node of zero energy (given unchanged phi of the other nodes):

==============  =================================================  ========
name            h_jet                                              IR safe
==============  =================================================  ========
``sum``         sum_i phi_i                                        no (a soft node adds its phi)
``mean``        sum_i phi_i / n                                    no (n changes)
``attention``   sum_i softmax_i(g(phi_i)) phi_i                    no (a soft node takes weight)
``energy``      sum_i max(E_i, 0) phi_i / sum_j max(E_j, 0)        yes
==============  =================================================  ========

Energy-weighted pooling is IR safe because a zero-energy node has weight exactly 0 whatever its
phi, and a soft node weight proportional to its energy, so h is continuous as E_i -> 0. It is
collinear safe only if phi depends on the node's position alone (as in an Energy Flow Network):
then splitting a node into two at the same position with E_a + E_b = E_i leaves the sum unchanged.
Our phi reads log E, so the backbone is not collinear safe. Negative-energy noise cells get weight 0.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from gnnjets.nn.config import POOLINGS, pooling_parts
from gnnjets.nn.irsafe import energy_weighted_mean

#: poolings whose output is unchanged by nodes of zero energy
IR_SAFE_POOLINGS = ("energy",)


class SumPooling(nn.Module):
    r""":math:`h_b = \sum_{i \in b} \phi_i`. Keeps the node multiplicity (a strong q/g observable).

    Shapes:
        x (N, D), batch (N,) -> (B, D)
    """

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, energy: Tensor | None = None) -> Tensor:
        return scatter(x, batch, dim=0, dim_size=num_graphs, reduce="sum")


class MeanPooling(nn.Module):
    r""":math:`h_b = \frac{1}{n_b} \sum_{i \in b} \phi_i`. Independent of the node count.

    Shapes:
        x (N, D), batch (N,) -> (B, D)
    """

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, energy: Tensor | None = None) -> Tensor:
        return scatter(x, batch, dim=0, dim_size=num_graphs, reduce="mean")


class AttentionPooling(nn.Module):
    r"""Learned attention over the nodes of each graph (Ilse et al., "Attention-based Deep Multiple
    Instance Learning", 2018; PyG's ``AttentionalAggregation``):

    .. math::
        g_i = w^\top \tanh(V \phi_i + c), \qquad
        h_b = \sum_{i \in b} \mathrm{softmax}_{i \in b}(g_i)\, \phi_i

    The softmax runs over the nodes of each graph (PyG ``softmax`` with the batch vector).

    Args:
        dim: D, the width of :math:`\phi`; the gate's hidden width is D / 2.

    Shapes:
        x (N, D), batch (N,) -> (B, D)
    """

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(dim, max(dim // 2, 1)), nn.Tanh(), nn.Linear(max(dim // 2, 1), 1))

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, energy: Tensor | None = None) -> Tensor:
        weight = softmax(self.gate(x).float(), batch, num_nodes=num_graphs)  # (N, 1), sums to 1 per graph
        return scatter(x * weight, batch, dim=0, dim_size=num_graphs, reduce="sum")  # float32 under autocast too


class EnergyWeightedPooling(nn.Module):
    r"""Infrared-safe pooling: the energy-weighted mean of the node embeddings,

    .. math::
        h_b = \sum_{i \in b} \frac{w_i}{\sum_{j \in b} w_j}\, \phi_i, \qquad w_i = \max(E_i, 0)

    with E the cell energy or track momentum [GeV]; a graph without positive energy gives 0.
    See the module docstring for what is IR and collinear safe.

    Shapes:
        x (N, D), batch (N,), energy (N,) -> (B, D)
    """

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, energy: Tensor | None = None) -> Tensor:
        if energy is None:
            raise ValueError("energy-weighted pooling needs the node energies (batch.energy)")
        return energy_weighted_mean(x, batch, energy, num_graphs)


class ConcatenatedPooling(nn.Module):
    r"""Several poolings side by side: :math:`h_b = [\mathrm{pool}_1(\phi)_b, \mathrm{pool}_2(\phi)_b, ...]`.

    E.g. ``"mean+energy"``: the plain mean of the nodes (every cell counts, noise included) next to
    the energy-weighted mean (what carries the energy). Width ``len(poolings) * D``.
    """

    def __init__(self, poolings: list[nn.Module]):
        super().__init__()
        self.poolings = nn.ModuleList(poolings)

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int, energy: Tensor | None = None) -> Tensor:
        return torch.cat([pool(x, batch, num_graphs, energy) for pool in self.poolings], dim=1)


def build_pooling(name: str, dim: int) -> nn.Module:
    """The pooling called ``name`` (one of :data:`~gnnjets.nn.config.POOLINGS`, or several joined
    with "+") for embeddings of width ``dim``."""
    parts = pooling_parts(name)
    if len(parts) > 1:
        return ConcatenatedPooling([build_pooling(part, dim) for part in parts])
    if name == "sum":
        return SumPooling()
    if name == "mean":
        return MeanPooling()
    if name == "attention":
        return AttentionPooling(dim)
    if name == "energy":
        return EnergyWeightedPooling()
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {name!r}")
