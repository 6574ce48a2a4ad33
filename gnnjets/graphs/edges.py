"""Edges of the jet graphs of a whole chunk: same-layer kNN, adjacent layers, track <-> cell.

Node layout (see :mod:`gnnjets.graphs.build`): the nodes of graph ``g`` are
``node_ptr[g]:node_ptr[g+1]``, its ``cell_counts[g]`` cells first, then its tracks. Neighbours
are searched among the nodes of the same graph only, in (delta_eta, delta_phi) relative to the
jet axis: phi is already wrapped around the axis, so no jet straddles the +-pi boundary.

Edges (``source -> target``, PyG's message direction):

* ``SAME_LAYER``: each cell receives from its ``k_same_layer[L]`` nearest cells of its own layer
  L (directed kNN as in EdgeConv: in-degree min(k, cells in the layer - 1); the relation is
  often, not always, mutual);
* ``ADJACENT_LAYER``: each cell of layer L receives from its ``k_adjacent_layer[L]`` nearest
  cells of layer L-1 and of layer L+1, so both directions between adjacent layers arise;
* ``TRACK_TO_CELL``: each track sends to its ``k_track[L]`` nearest cells of every layer L,
  searched at the track's extrapolated position in that layer (NaN: the track does not reach the
  layer, no edge); ``CELL_TO_TRACK``: the same pairs reversed (``both_ways``), so that tracks
  receive messages too.

No self loops, no duplicate edges. Within a graph the edges come per target layer: for each
layer, each cell's same-layer then adjacent-layer in-edges; then per track its edges, layer by
layer. Ties in distance go to the earlier (more energetic) node.

Implementation: one compiled (numba) pass over the graphs, exact kNN by a full scan of the
candidate layer per query, no trees. Measured on the same 2000 simulated q/g jets, same machine
and load: 0.10 s with the 96-cell budget (~50 us per jet, all edge kinds) and 1.4 ms per jet
without a budget (~850 cells); an eta-sorted outward walk with early stopping was 1.5-2.5x
slower at both sizes, and scipy's cKDTree over a whole chunk ~3x slower.
"""

from __future__ import annotations

import numba
import numpy as np

from gnnjets.graphs.features import ADJACENT_LAYER, CELL_TO_TRACK, SAME_LAYER, TRACK_TO_CELL
from gnnjets.io.schema import N_CALO_LAYERS


@numba.njit(cache=True, nogil=True)
def _k_nearest(query_eta, query_phi, eta, phi, candidates, first, stop, skip, k, best_dist,
               best_node):  # pragma: no cover
    """Fill ``best_node[:found]`` with the ``k`` nodes of ``candidates[first:stop]`` nearest to
    (query_eta, query_phi), nearest first, leaving out node ``skip``; returns ``found``."""
    found = 0
    for c in range(first, stop):
        node = candidates[c]
        if node == skip:
            continue
        d_eta = eta[node] - query_eta
        d_phi = phi[node] - query_phi
        dist2 = d_eta * d_eta + d_phi * d_phi
        if found < k:
            slot = found
            found += 1
        elif dist2 < best_dist[k - 1]:
            slot = k - 1
        else:
            continue
        # insertion into the sorted list of the k best; ties keep the earlier node first
        while slot > 0 and best_dist[slot - 1] > dist2:
            best_dist[slot] = best_dist[slot - 1]
            best_node[slot] = best_node[slot - 1]
            slot -= 1
        best_dist[slot] = dist2
        best_node[slot] = node
    return found


@numba.njit(cache=True, nogil=True)
def _edges_kernel(node_ptr, cell_counts, eta, phi, node_type, track_ptr, track_eta_layer, track_phi_layer,
                  k_same, k_adjacent, k_track, both_ways, capacity):  # pragma: no cover
    num_graphs = node_ptr.shape[0] - 1
    n_layers = k_same.shape[0]
    edge_index = np.empty((2, capacity), np.int32)
    source = edge_index[0]
    target = edge_index[1]
    kind = np.empty(capacity, np.int8)
    edge_counts = np.zeros(num_graphs, np.int64)
    k_max = max(k_same.max(), k_adjacent.max(), k_track.max(), 1)
    best_dist = np.empty(k_max, np.float64)
    best_node = np.empty(k_max, np.int64)
    layer_start = np.zeros(n_layers + 1, np.int64)
    fill = np.zeros(n_layers, np.int64)
    by_layer = np.empty(max(cell_counts.max(), 1) if num_graphs else 1, np.int64)
    n_edges = 0
    for g in range(num_graphs):
        first_cell = node_ptr[g]
        n_cells = cell_counts[g]
        # the graph's cells grouped by layer (stable counting sort: energy order kept)
        layer_start[:] = 0
        for i in range(first_cell, first_cell + n_cells):
            layer_start[node_type[i] + 1] += 1
        for layer in range(n_layers):
            layer_start[layer + 1] += layer_start[layer]
            fill[layer] = layer_start[layer]
        for i in range(first_cell, first_cell + n_cells):
            by_layer[fill[node_type[i]]] = i
            fill[node_type[i]] += 1
        start_edges = n_edges
        for layer in range(n_layers):
            for c in range(layer_start[layer], layer_start[layer + 1]):
                cell = by_layer[c]
                found = _k_nearest(eta[cell], phi[cell], eta, phi, by_layer, layer_start[layer],
                                   layer_start[layer + 1], cell, k_same[layer], best_dist, best_node)
                for j in range(found):
                    source[n_edges] = best_node[j] - first_cell
                    target[n_edges] = cell - first_cell
                    kind[n_edges] = SAME_LAYER
                    n_edges += 1
                for other in (layer - 1, layer + 1):
                    if other < 0 or other >= n_layers:
                        continue
                    found = _k_nearest(eta[cell], phi[cell], eta, phi, by_layer, layer_start[other],
                                       layer_start[other + 1], -1, k_adjacent[layer], best_dist, best_node)
                    for j in range(found):
                        source[n_edges] = best_node[j] - first_cell
                        target[n_edges] = cell - first_cell
                        kind[n_edges] = ADJACENT_LAYER
                        n_edges += 1
        for t in range(track_ptr[g], track_ptr[g + 1]):
            track = first_cell + n_cells + (t - track_ptr[g])
            for layer in range(n_layers):
                t_eta = track_eta_layer[t, layer]
                t_phi = track_phi_layer[t, layer]
                if not (np.isfinite(t_eta) and np.isfinite(t_phi)):
                    continue
                found = _k_nearest(t_eta, t_phi, eta, phi, by_layer, layer_start[layer], layer_start[layer + 1],
                                   -1, k_track[layer], best_dist, best_node)
                for j in range(found):
                    source[n_edges] = track - first_cell
                    target[n_edges] = best_node[j] - first_cell
                    kind[n_edges] = TRACK_TO_CELL
                    n_edges += 1
                    if both_ways:
                        source[n_edges] = best_node[j] - first_cell
                        target[n_edges] = track - first_cell
                        kind[n_edges] = CELL_TO_TRACK
                        n_edges += 1
        edge_counts[g] = n_edges - start_edges
    # (2, n_edges) contiguous in place: the targets move down next to the sources (never
    # overwriting one not yet moved, as n_edges <= capacity), instead of a copy of the slice
    flat = edge_index.reshape(2 * capacity)
    for e in range(n_edges):
        flat[n_edges + e] = flat[capacity + e]
    return flat[:2 * n_edges].reshape((2, n_edges)), kind[:n_edges], edge_counts


def build_edges(node_ptr: np.ndarray, cell_counts: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                node_type: np.ndarray, track_eta_layer: np.ndarray, track_phi_layer: np.ndarray, *,
                k_same_layer, k_adjacent_layer, k_track, both_ways: bool = True):
    """Directed edges of all graphs of a chunk (see the module docstring).

    Args:
        node_ptr: (G+1,) node offsets of the graphs; cells first in each graph.
        cell_counts: (G,) cells of each graph.
        eta, phi: (N,) node positions relative to the jet axis (delta_phi wrapped).
        node_type: (N,) layer 0-5 for cells (tracks: any value, unused).
        track_eta_layer, track_phi_layer: (T, 6) extrapolated track positions relative to the
            axis, tracks in node order (T = total tracks); NaN where a track misses a layer.
        k_same_layer, k_adjacent_layer, k_track: per-layer neighbour counts (6 each).
        both_ways: also emit the reversed track edges.

    Returns:
        ``edge_index`` (2, E) int32 (source, target) node numbers *within their graph*,
        ``edge_type`` (E,) int8, ``edge_counts`` (G,) int64; the edges of graph ``g`` are
        contiguous, in graph order.
    """
    node_ptr = np.ascontiguousarray(node_ptr, np.int64)
    cell_counts = np.ascontiguousarray(cell_counts, np.int64)
    track_counts = np.diff(node_ptr) - cell_counts
    track_ptr = np.concatenate([[0], np.cumsum(track_counts)]).astype(np.int64)
    k_same = np.asarray(k_same_layer, np.int64)
    k_adjacent = np.asarray(k_adjacent_layer, np.int64)
    k_tr = np.asarray(k_track, np.int64)
    for name, k in (("k_same_layer", k_same), ("k_adjacent_layer", k_adjacent), ("k_track", k_tr)):
        if k.shape != (N_CALO_LAYERS,):
            raise ValueError(f"{name} must have {N_CALO_LAYERS} entries (one per layer), not {k.tolist()}")
    n_cells = int(cell_counts.sum())
    n_tracks = int(track_counts.sum())
    capacity = n_cells * (int(k_same.max()) + 2 * int(k_adjacent.max())) + n_tracks * 2 * int(k_tr.sum())
    edge_index, kind, edge_counts = _edges_kernel(
        node_ptr, cell_counts, np.ascontiguousarray(eta, np.float64), np.ascontiguousarray(phi, np.float64),
        np.ascontiguousarray(node_type, np.int64), track_ptr,
        np.ascontiguousarray(track_eta_layer, np.float64).reshape(n_tracks, N_CALO_LAYERS),
        np.ascontiguousarray(track_phi_layer, np.float64).reshape(n_tracks, N_CALO_LAYERS),
        k_same, k_adjacent, k_tr, bool(both_ways), capacity)
    return edge_index, kind, edge_counts
