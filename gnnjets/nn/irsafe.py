"""Energy weights: the primitives that make aggregation, attention and pooling infrared safe.

A jet observable is *infrared (IR) safe* when adding a particle of vanishing energy does not change
it. In a graph network the nodes of (near) zero energy are the soft particles and, at detector
level, the noise cells: ~40 % of a topocluster's cells have *negative* energy, a pure noise
fluctuation. Every operation here weights node ``j`` by ``w_j = max(E_j, 0)`` [GeV] (cell energy E
or track momentum p), so a node with ``E_j <= 0`` contributes exactly nothing, and one with small
``E_j`` contributes proportionally little.

What this guarantees, and what not:

* for a **fixed graph**, a network built only from these weighted reductions (plus node-wise maps)
  gives the same output when a zero-energy node is added together with edges to and from it: the
  node receives messages but sends none, and the pooling ignores it;
* the graph itself is not IR safe: the kNN edges of :mod:`gnnjets.graphs.edges` change when a cell
  is added (it can displace another cell's neighbour), and the node budget keeps the most energetic
  nodes, so a soft node can push out another one;
* collinear safety (splitting a node into two of the same position whose energies add up) needs
  the node maps to be independent of the energy, as in Energy Flow Networks; ours read log E, so
  the networks are not collinear safe (see JetCLR, arXiv:2108.04253, Sec. 3 for the discussion in JetCLR).

Shapes follow PyG: ``src`` has its reduced dimension first, ``index`` (M,) assigns each row to a
group in ``0..dim_size-1`` (a node for edges, a graph for nodes).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter


def energy_weights(energy: Tensor) -> Tensor:
    """``max(E, 0)`` (M,) as float32: the weight of each node; negative-noise cells weigh nothing."""
    return energy.float().clamp(min=0.0)


def energy_weighted_mean(src: Tensor, index: Tensor, energy: Tensor, dim_size: int) -> Tensor:
    """Weighted mean per group, weights ``max(E, 0)``; a group of zero total weight gives 0.

    .. math::
        \\mathrm{out}_g = \\frac{\\sum_{m: \\mathrm{index}_m = g} w_m\\, \\mathrm{src}_m}
                              {\\sum_{m: \\mathrm{index}_m = g} w_m}, \\qquad w_m = \\max(E_m, 0)

    Shapes:
        src (M, *F), index (M,), energy (M,) -> (dim_size, *F)
    """
    weight = energy_weights(energy)  # (M,)
    total = scatter(weight, index, dim=0, dim_size=dim_size, reduce="sum")  # (G,)
    fraction = weight / total.clamp(min=torch.finfo(total.dtype).tiny)[index]  # (M,), sums to 1 per group
    fraction = fraction.view(-1, *([1] * (src.dim() - 1)))
    # float32 weights: a bf16 src (autocast) is promoted, so the weights keep their precision
    return scatter(src * fraction, index, dim=0, dim_size=dim_size, reduce="sum")


def energy_biased_softmax(logits: Tensor, index: Tensor, energy: Tensor, beta: float, dim_size: int) -> Tensor:
    """Softmax of ``logits`` within each group with the weights multiplied by ``max(E, 0) ** beta``.

    The IR-safe attention of JetCLR (JetCLR, arXiv:2108.04253, Sec. 3), which adds ``beta * log pT`` to the logits:

    .. math::
        \\alpha_m = \\frac{w_m^\\beta\\, e^{s_m}}{\\sum_{m': \\mathrm{index}_{m'} = \\mathrm{index}_m}
                    w_{m'}^\\beta\\, e^{s_{m'}}}, \\qquad w_m = \\max(E_m, 0)

    Rows of zero weight get ``alpha = 0`` exactly (logit ``-inf``), so they neither receive
    attention nor shift the others'; a group whose rows all have zero weight gets all zeros, not
    NaN. ``beta`` sets how fast a soft node fades: ``alpha ~ E^beta`` as ``E -> 0``.

    Shapes:
        logits (M, heads), index (M,), energy (M,) -> (M, heads)
    """
    if beta <= 0:
        raise ValueError(f"'beta' must be positive (0 is a plain softmax: use torch_geometric.utils.softmax), "
                         f"not {beta!r}")
    positive = (energy > 0)[:, None]  # (M, 1)
    log_energy = torch.log(torch.where(positive, energy[:, None].float(), 1.0))  # (M, 1); log(1) keeps grads finite
    biased = torch.where(positive, logits.float() + beta * log_energy, -torch.inf)  # (M, heads)
    peak = torch.full((dim_size, biased.shape[1]), -torch.inf, dtype=biased.dtype, device=biased.device)
    peak = peak.scatter_reduce(0, index[:, None].expand_as(biased), biased.detach(), reduce="amax")  # (G, heads)
    peak = torch.where(torch.isfinite(peak), peak, 0.0)  # groups without a positive-energy row
    numerator = torch.exp(biased - peak[index])  # (M, heads), 0 for zero-energy rows
    denominator = scatter(numerator, index, dim=0, dim_size=dim_size, reduce="sum")  # (G, heads)
    # after subtracting the peak the largest term is exp(0) = 1, so a non-empty sum is >= 1 and an
    # all-zero-energy group sums to 0: clamping at 1 changes nothing but that 0 / 0
    return (numerator / denominator.clamp(min=1.0)[index]).to(logits.dtype)
