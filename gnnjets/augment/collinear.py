"""Collinear splitting: a node's energy shared between two nodes at the same place (JetCLR, arXiv:2108.04253, Sec. 2, eq. 10)."""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch

from gnnjets.augment.base import JetTransform
from gnnjets.graphs.batching import NODE_ATTRS, set_batch_metadata
from gnnjets.graphs.features import TRACK, FeatureScaling, node_energy_reference, with_energies


@numba.njit(cache=True, nogil=True)
def _inherited_edges_kernel(source, target, edge_attr, new_number, child_number, edge_ptr):  # pragma: no cover
    total = 0
    for e in range(source.shape[0]):
        a, b = child_number[source[e]] >= 0, child_number[target[e]] >= 0
        total += 1 + a + b + (a and b)
    new_edge_index = np.empty((2, total), np.int64)
    new_attr = np.empty((total, edge_attr.shape[1]), edge_attr.dtype)
    edge_counts = np.zeros(edge_ptr.shape[0] - 1, np.int64)
    n = 0
    for g in range(edge_ptr.shape[0] - 1):
        first = n
        for e in range(edge_ptr[g], edge_ptr[g + 1]):
            s, t = new_number[source[e]], new_number[target[e]]
            cs, ct = child_number[source[e]], child_number[target[e]]
            # the edge, then from the source's new half, to the target's, between the new halves
            n = _emit(new_edge_index, new_attr, n, s, t, edge_attr, e)
            if cs >= 0:
                n = _emit(new_edge_index, new_attr, n, cs, t, edge_attr, e)
            if ct >= 0:
                n = _emit(new_edge_index, new_attr, n, s, ct, edge_attr, e)
            if cs >= 0 and ct >= 0:
                n = _emit(new_edge_index, new_attr, n, cs, ct, edge_attr, e)
        edge_counts[g] = n - first
    return new_edge_index, new_attr, edge_counts


@numba.njit(cache=True, nogil=True, inline="always")
def _emit(edge_index, edge_attr, n, source, target, parent_attr, parent):  # pragma: no cover
    edge_index[0, n] = source
    edge_index[1, n] = target
    for column in range(edge_attr.shape[1]):
        edge_attr[n, column] = parent_attr[parent, column]
    return n + 1


def inherited_edges(edge_index: Tensor, edge_attr: Tensor, new_number: Tensor, child_number: Tensor,
                    edge_ptr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Edges after splitting: every edge, each followed by its copies for the split ends.

    ``new_number[i]`` is old node i's number after the split, ``child_number[i]`` the number of
    its new half (-1: not split). For an edge s -> t the copies are child(s) -> t, s -> child(t)
    and child(s) -> child(t), those whose ends exist, with the attributes of their edge (a half
    sits where its parent is). Copies follow their edge, so the edges of a graph stay contiguous
    (``edge_ptr``: (G+1,) edge offsets of the graphs).

    Returns ``edge_index`` (2, E'), ``edge_attr`` (E', 4), per-graph edge counts (G,).
    """
    if edge_index.device.type == "cpu":
        out = _inherited_edges_kernel(edge_index[0].contiguous().numpy(), edge_index[1].contiguous().numpy(),
                                      edge_attr.contiguous().numpy(), new_number.numpy(), child_number.numpy(),
                                      edge_ptr.numpy())
        return tuple(torch.from_numpy(array) for array in out)
    return inherited_edges_torch(edge_index, edge_attr, new_number, child_number, edge_ptr)


def inherited_edges_torch(edge_index: Tensor, edge_attr: Tensor, new_number: Tensor, child_number: Tensor,
                          edge_ptr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`inherited_edges` in torch operations (any device)."""
    source, target = edge_index[0], edge_index[1]
    child_source, child_target = child_number[source], child_number[target]
    from_child, to_child = child_source >= 0, child_target >= 0
    copies = 1 + from_child.long() + to_child.long() + (from_child & to_child).long()  # (E,)
    device = source.device
    parent = torch.repeat_interleave(torch.arange(source.numel(), device=device), copies)  # (E',) edge copied
    rank = torch.arange(parent.numel(), device=device) - (torch.cumsum(copies, 0) - copies)[parent]
    # variant 0: the edge itself, 1: from the source's child, 2: to the target's child, 3: child to child
    variant = torch.where(from_child[parent], rank, 2 * rank)
    new_source = torch.where((variant == 1) | (variant == 3), child_source[parent], new_number[source[parent]])
    new_target = torch.where(variant >= 2, child_target[parent], new_number[target[parent]])
    edge_graph = torch.repeat_interleave(torch.arange(edge_ptr.numel() - 1, device=device), torch.diff(edge_ptr))
    counts = torch.zeros(edge_ptr.numel() - 1, dtype=torch.int64, device=device)
    counts.index_add_(0, edge_graph, copies)
    return torch.stack([new_source, new_target]), edge_attr[parent], counts


def split_nodes(data, nodes: Tensor, fraction: Tensor, scaling: FeatureScaling | None = None):
    """``data`` (a copy) with each node of ``nodes`` split into two collinear halves.

    Args:
        data: a JetGraph or a Batch of them.
        nodes: (M,) distinct node numbers to split.
        fraction: (M,) share of the energy that stays with the original node, in [0, 1]; the new
            node takes the rest.
        scaling: the graphs' feature scaling.

    The new node is inserted right after its parent (so cells stay before tracks and a batch stays
    sorted by graph), at the same ``pos``, with the same ``node_type``, charge and impact
    parameters, its ``log_energy`` and ``significance`` recomputed. It inherits every edge of its
    parent, in and out (and, where both ends were split, the edge between the two new nodes);
    the two halves are not linked to each other. The energies of the two halves add up to the
    original exactly: the larger half is computed first and the smaller as the difference.
    """
    scaling = scaling or FeatureScaling()
    device = data.energy.device
    num_nodes = data.num_nodes
    nodes = nodes.long().to(device)
    count = int(nodes.numel())
    if count == 0:
        return data
    energy = data.energy[nodes]  # (M,)
    fraction = fraction.to(device=device, dtype=energy.dtype)
    larger = energy * torch.maximum(fraction, 1 - fraction)
    smaller = energy - larger  # exact (Sterbenz): larger is within [energy / 2, energy]
    kept = torch.where(fraction >= 0.5, larger, smaller)
    moved = torch.where(fraction >= 0.5, smaller, larger)

    # new numbering: every node moves down by the number of splits before it; a half follows its parent
    is_split = torch.zeros(num_nodes, dtype=torch.int64, device=device)
    is_split[nodes] = 1
    new_number = torch.arange(num_nodes, device=device) + torch.cumsum(is_split, 0) - is_split  # (N,)
    child_number = torch.where(is_split.bool(), new_number + 1, -1)  # (N,)
    children = child_number[nodes]  # (M,)

    node_type = data.node_type
    reference = node_energy_reference(data)
    reference = None if reference is None else reference[nodes]
    new_values = {
        "x": (data.x, with_energies(data.x[nodes], node_type[nodes], energy, kept, scaling, reference),
              with_energies(data.x[nodes], node_type[nodes], energy, moved, scaling, reference)),
        "energy": (data.energy, kept, moved),
        "pos": (data.pos, data.pos[nodes], data.pos[nodes]),
        "node_type": (node_type, node_type[nodes], node_type[nodes]),
    }
    for name in NODE_ATTRS:
        old, parent_rows, child_rows = new_values[name]
        out = old.new_empty((num_nodes + count,) + tuple(old.shape[1:]))
        out[new_number] = old
        out[new_number[nodes]] = parent_rows
        out[children] = child_rows
        data[name] = out

    if isinstance(data, Batch):
        edge_ptr = data._slice_dict["edge_index"]
        node_counts = torch.diff(data.ptr) + torch.bincount(data.batch[nodes], minlength=data.num_graphs)
        graph = data.batch.new_empty(num_nodes + count)
        graph[new_number] = data.batch
        graph[children] = data.batch[nodes]
        data.batch = graph
    else:
        edge_ptr = torch.tensor([0, data.edge_index.shape[1]], device=device)
    data.edge_index, data.edge_attr, edge_counts = inherited_edges(data.edge_index, data.edge_attr, new_number,
                                                                   child_number, edge_ptr)
    if isinstance(data, Batch):
        set_batch_metadata(data, node_counts, edge_counts)
    return data


class CollinearSplit(JetTransform):
    """Split each eligible node with probability ``probability`` into two collinear halves.

    The split fraction is uniform in [0, 1]. Eligible: nodes with positive energy (a negative-noise
    cell has no energy to share), cells only by default: a track is one measured charged particle,
    and splitting it would double its charge and impact parameters; ``split_tracks=True`` splits
    tracks too (both halves keep charge, d0 and z0). Total energy is conserved exactly; see
    :func:`split_nodes` for what the new nodes and edges are.

    Args:
        probability: chance that an eligible node is split.
        split_tracks: also split tracks.
        generator, scaling: see :class:`~gnnjets.augment.base.JetTransform`.
    """

    moves_nodes = False  # the new halves sit where their parents are

    def __init__(self, probability: float = 0.1, split_tracks: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise ValueError(f"'probability' must be a number in [0, 1], not {probability!r}")
        if not isinstance(split_tracks, bool):
            raise TypeError(f"'split_tracks' must be True or False, not {split_tracks!r}")
        self.probability = float(probability)
        self.split_tracks = split_tracks

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):
        eligible = data.energy > 0
        if not self.split_tracks:
            eligible &= data.node_type != TRACK
        draw = torch.rand(data.num_nodes, generator=generator, dtype=torch.float64).to(eligible.device)
        nodes = torch.nonzero(eligible & (draw < self.probability)).flatten()
        fraction = torch.rand(nodes.numel(), generator=generator, dtype=torch.float64)
        # positions are unchanged, nothing to defer: stale edge_attr rows (update_derived=False
        # upstream) are copied as they are, with their edge type, which is all a recompute needs
        return split_nodes(data, nodes, fraction, self.scaling)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(probability={self.probability:.3g}, split_tracks={self.split_tracks})"
