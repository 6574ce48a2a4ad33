"""Topoclustering of calorimeter cells ("4-2-0", as in ATLAS and COCOA) and cluster kinematics.

Cells are a sparse list: parallel 1-D arrays ``layer``, ``ieta``, ``iphi`` (integers, the grid of
:mod:`detector_sim.geometry`), ``energy`` [GeV] and ``sigma`` [GeV, the cell's noise], one entry per
cell, each (layer, ieta, iphi) at most once. The significance of a cell is ``|energy| / sigma``.

Neighbours of a cell (layer L, ieta i, iphi j) with ``n = N_CELLS[L]``:

- in its layer, the 8 surrounding cells; phi wraps around (``(j +- 1) mod n``), eta does not;
- in the adjacent layers L - 1 and L + 1, the cells that overlap it in (eta, phi). Adjacent
  granularities are integer multiples of each other, ``r = N_CELLS[fine] // N_CELLS[coarse]``:
  coarse cell (i, j) overlaps fine cells ``i*r .. i*r+r-1`` x ``j*r .. j*r+r-1``, fine cell (i, j)
  overlaps coarse cell ``(i // r, j // r)``. Layers two apart are never neighbours.

The clustering itself runs in one numba kernel; the neighbour lookup is a dense map from global
cell id to position in the input, preallocated once per process and reset after each call to
just the entries the call touched (so a call costs O(number of cells), not O(detector size)).
"""

from __future__ import annotations

import numba
import numpy as np

from detector_sim.geometry import LAYER_OFFSET, N_CELLS, N_CELLS_TOTAL, N_LAYERS
from gnnjets.base.kinematics import wrap_phi

# COCOA's thresholds, in units of the cell noise sigma
SEED_THRESHOLD = 4.6
GROW_THRESHOLD = 2.0
BOUNDARY_THRESHOLD = 0.0

if np.any(np.maximum(N_CELLS[:-1], N_CELLS[1:]) % np.minimum(N_CELLS[:-1], N_CELLS[1:])):
    raise ImportError(f"adjacent layer granularities must be integer multiples of each other, not {N_CELLS.tolist()}")

_LAYER_OFFSET = LAYER_OFFSET.astype(np.int64)
_N_CELLS = N_CELLS.astype(np.int64)
#: global cell id -> position in the current call's input (-1: not in the input); all -1 between
#: calls. Shared by every call in this process: the kernel holds the GIL (no ``nogil``), so two
#: threads can never use it at the same time.
_CELL_MAP = np.full(N_CELLS_TOTAL, -1, dtype=np.int32)
#: most neighbours a cell can have: 8 in its layer, and in each adjacent layer one cell or r x r
_MAX_NEIGHBOURS = max(
    8 + sum(max(N_CELLS[adjacent] // N_CELLS[lay], 1) ** 2 for adjacent in (lay - 1, lay + 1) if 0 <= adjacent < N_LAYERS)
    for lay in range(N_LAYERS))

# status codes of the kernel's input checks
_OK, _BAD_LAYER, _BAD_IETA, _BAD_IPHI, _BAD_SIGMA, _BAD_ENERGY, _DUPLICATE = range(7)


def topoclusters(layer, ieta, iphi, energy, sigma, *, seed_threshold: float = SEED_THRESHOLD,
                 grow_threshold: float = GROW_THRESHOLD, boundary_threshold: float = BOUNDARY_THRESHOLD) -> np.ndarray:
    """Topoclusters of a sparse list of cells: the cluster index of every cell.

    Algorithm (4-2-0 with the default thresholds), with significance ``s = |energy| / sigma``
    and neighbours as in the module docstring:

    1. Seeds are the cells with ``s > seed_threshold``; each starts a proto-cluster. They are
       ranked by decreasing ``s`` (ties: input order).
    2. The clusters grow breadth-first, all together, one generation at a time; generation 0 is
       the seeds, and each generation is processed in decreasing ``s`` (ties: input order).
       For every neighbour of a processed cell:

       - not yet in a cluster, ``s > grow_threshold``: joins the processed cell's cluster and
         is processed in the next generation (a *growing* cell; seeds are growing cells too);
       - not yet in a cluster, ``boundary_threshold < s <= grow_threshold``: joins as a
         *boundary* cell and grows no further;
       - already in another proto-cluster and itself a growing cell: the two proto-clusters
         merge (union-find). Boundary cells never cause merges.
    3. Clusters are numbered 0 .. K-1 by decreasing significance of their most significant seed.

    So the growing cells of the clusters are exactly the connected components of the cells with
    ``s > grow_threshold`` that contain a seed, and a boundary cell neighbouring several clusters
    goes to the first that reaches it: the one whose neighbouring growing cell has the fewest
    steps to a seed, then the largest ``s``. The result does not depend on the order of the
    input cells (except between cells of exactly equal significance).

    Args:
        layer, ieta, iphi: integer arrays, the cells' positions in the grid of
            :mod:`detector_sim.geometry`; each cell at most once.
        energy: cell energies [GeV]; negative (noise) energies count by their magnitude.
        sigma: cell noise [GeV], > 0.
        seed_threshold: significance a cell must exceed to seed a cluster (COCOA: 4.6).
        grow_threshold: significance a cell must exceed to join and extend a cluster (2).
        boundary_threshold: significance a neighbour must exceed to join as boundary cell (0:
            every cell with non-zero energy). ``0 <= boundary <= grow <= seed``.

    Returns:
        int64 array, the cluster index of each cell, -1 for cells in no cluster.

    Shapes:
        all inputs ``(N,)``; output ``(N,)``.
    """
    seed_threshold = _check_threshold("seed_threshold", seed_threshold)
    grow_threshold = _check_threshold("grow_threshold", grow_threshold)
    boundary_threshold = _check_threshold("boundary_threshold", boundary_threshold)
    if not 0.0 <= boundary_threshold <= grow_threshold <= seed_threshold:
        raise ValueError("thresholds must satisfy 0 <= boundary_threshold <= grow_threshold <= seed_threshold, "
                         f"not boundary={boundary_threshold}, grow={grow_threshold}, seed={seed_threshold}")
    fields = {"layer": layer, "ieta": ieta, "iphi": iphi, "energy": energy, "sigma": sigma}
    layer, ieta, iphi = (_as_1d(name, fields[name], integer=True) for name in ("layer", "ieta", "iphi"))
    energy, sigma = (_as_1d(name, fields[name], integer=False) for name in ("energy", "sigma"))
    _check_lengths(layer=layer, ieta=ieta, iphi=iphi, energy=energy, sigma=sigma)

    cluster_index = np.empty(layer.size, dtype=np.int64)
    status, cell, first = _topocluster_kernel(layer, ieta, iphi, energy, sigma, seed_threshold, grow_threshold,
                                              boundary_threshold, _N_CELLS, _LAYER_OFFSET, _MAX_NEIGHBOURS, _CELL_MAP,
                                              cluster_index)
    if status != _OK:
        raise ValueError(_describe_bad_cell(status, cell, first, layer, ieta, iphi, energy, sigma))
    return cluster_index


def cluster_kinematics(cluster_index, energy, eta, phi, layer=None) -> dict[str, np.ndarray]:
    """Energy, direction and size of each cluster, from its cells.

    With weights ``w = |energy|`` (noise cells may be negative):
    ``e = sum(energy)``; ``eta = sum(w eta) / sum(w)``;
    ``phi = atan2(sum(w sin phi), sum(w cos phi))`` (the weighted circular mean, so a cluster
    across phi = +-pi is centred there), wrapped to (-pi, pi]; ``pt = e / cosh(eta)`` (massless
    cells); ``n_cells`` the number of cells. A cluster without cells or with zero total weight
    gets NaN eta, phi and pt.

    Args:
        cluster_index: int array from :func:`topoclusters` (-1: cell in no cluster, ignored).
        energy: cell energies [GeV].
        eta, phi: cell centres (see :func:`detector_sim.geometry.cell_centre`).
        layer: optional int array of cell layers; if given, the result also has ``e_layer``.

    Returns:
        dict of arrays over the K = ``max(cluster_index) + 1`` clusters: ``e``, ``eta``, ``phi``,
        ``pt`` (float64, GeV and radians), ``n_cells`` (int64), and with ``layer`` given
        ``e_layer`` (float64, energy per cluster and layer).

    Shapes:
        inputs ``(N,)``; outputs ``(K,)``, ``e_layer`` ``(K, N_LAYERS)``.
    """
    cluster_index = _as_1d("cluster_index", cluster_index, integer=True)
    energy = _as_1d("energy", energy, integer=False)
    eta = _as_1d("eta", eta, integer=False)
    phi = _as_1d("phi", phi, integer=False)
    arrays = dict(cluster_index=cluster_index, energy=energy, eta=eta, phi=phi)
    if layer is not None:
        arrays["layer"] = layer = _as_1d("layer", layer, integer=True)
    _check_lengths(**arrays)
    if cluster_index.size and cluster_index.min() < -1:
        raise ValueError(f"'cluster_index' must be >= -1 (-1: no cluster), not {cluster_index.min()}")

    in_cluster = cluster_index >= 0
    index = cluster_index[in_cluster]  # (M,)
    n_clusters = int(index.max()) + 1 if index.size else 0
    energy, eta, phi = energy[in_cluster], eta[in_cluster], phi[in_cluster]  # (M,)
    weight = np.abs(energy)

    def total(values):
        return np.bincount(index, weights=values, minlength=n_clusters)  # (K,)

    e, weight_sum = total(energy), total(weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta_centre = total(weight * eta) / weight_sum
    eta_centre[weight_sum == 0] = np.nan
    phi_centre = wrap_phi(np.arctan2(total(weight * np.sin(phi)), total(weight * np.cos(phi))))
    phi_centre[weight_sum == 0] = np.nan
    result = {
        "e": e,
        "eta": eta_centre,
        "phi": phi_centre,
        "pt": e / np.cosh(eta_centre),
        "n_cells": np.bincount(index, minlength=n_clusters).astype(np.int64),
    }
    if layer is not None:
        layer = layer[in_cluster]
        outside = (layer < 0) | (layer >= N_LAYERS)
        if outside.any():
            raise ValueError(f"'layer' must be in 0..{N_LAYERS - 1}, not {layer[outside][0]}")
        e_layer = np.bincount(index * N_LAYERS + layer, weights=energy, minlength=n_clusters * N_LAYERS)
        result["e_layer"] = e_layer.reshape(n_clusters, N_LAYERS)  # (K, N_LAYERS)
    return result


# ----------------------------------------------------------------------------- input checks

def _check_threshold(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise ValueError(f"'{name}' must be a finite number, not {value!r}")
    return float(value)


def _as_1d(name: str, values, *, integer: bool) -> np.ndarray:
    """``values`` as a contiguous 1-D int64 (``integer``) or float64 array, or a ValueError naming it."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"'{name}' must be a 1-D array, not of shape {array.shape}")
    kind = array.dtype.kind
    if integer and kind not in "iu" and not (array.size == 0 and kind == "f"):
        raise ValueError(f"'{name}' must be an integer array, not {array.dtype}")
    if not integer and kind not in "iuf":
        raise ValueError(f"'{name}' must be a real-number array, not {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64 if integer else np.float64)


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {name: array.size for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}: {length}" for name, length in lengths.items())
        raise ValueError(f"all cell arrays must have the same length, not {listed}")


def _describe_bad_cell(status, cell, first, layer, ieta, iphi, energy, sigma) -> str:
    where = f"cell {cell}"
    if status == _BAD_LAYER:
        return f"'layer' must be in 0..{N_LAYERS - 1}; {where} has layer {layer[cell]}"
    n = N_CELLS[layer[cell]]
    if status == _BAD_IETA:
        return f"'ieta' must be in 0..{n - 1} in layer {layer[cell]}; {where} has ieta {ieta[cell]}"
    if status == _BAD_IPHI:
        return f"'iphi' must be in 0..{n - 1} in layer {layer[cell]}; {where} has iphi {iphi[cell]}"
    if status == _BAD_SIGMA:
        return f"'sigma' must be finite and > 0 for every cell; {where} has sigma {sigma[cell]}"
    if status == _BAD_ENERGY:
        return f"'energy' must be finite for every cell; {where} has energy {energy[cell]}"
    return (f"cells must be unique; cells {first} and {cell} are both "
            f"(layer {layer[cell]}, ieta {ieta[cell]}, iphi {iphi[cell]})")


# ----------------------------------------------------------------------------- numba kernel

@numba.njit(cache=True)
def _find(parent, a):
    """Root of ``a`` in the union-find forest ``parent``."""
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:  # path compression
        up = parent[a]
        parent[a] = root
        a = up
    return root


@numba.njit(cache=True)
def _by_significance(cells, significance):
    """``cells`` ordered by decreasing significance, ties by increasing input position."""
    # quicksort, then the (rare) runs of equal significance by position: twice as fast as a
    # stable mergesort of the position-sorted cells
    cells = cells[np.argsort(-significance[cells])]
    start = 0
    for k in range(1, cells.size + 1):
        if k == cells.size or significance[cells[k]] != significance[cells[start]]:
            if k - start > 1:
                cells[start:k] = np.sort(cells[start:k])
            start = k
    return cells


@numba.njit(cache=True)
def _topocluster_kernel(layer, ieta, iphi, energy, sigma, seed_threshold, grow_threshold, boundary_threshold,
                        n_cells, layer_offset, max_neighbours, cell_map, labels):
    """Check the cells, fill ``cell_map``, cluster into ``labels``, reset ``cell_map``.

    Returns ``(status, cell, first)``: ``_OK`` or the first failed check with the offending
    input position (and for a duplicate the earlier position); ``cell_map`` is all -1 on return.
    """
    n = layer.size
    n_layers = n_cells.size
    cell_id = np.empty(n, dtype=np.int64)
    significance = np.empty(n, dtype=np.float64)
    status, bad, first = _OK, -1, -1
    n_mapped = 0
    for i in range(n):
        lay = layer[i]
        if lay < 0 or lay >= n_layers:
            status = _BAD_LAYER
        elif ieta[i] < 0 or ieta[i] >= n_cells[lay]:
            status = _BAD_IETA
        elif iphi[i] < 0 or iphi[i] >= n_cells[lay]:
            status = _BAD_IPHI
        elif not (sigma[i] > 0.0 and np.isfinite(sigma[i])):
            status = _BAD_SIGMA
        elif not np.isfinite(energy[i]):
            status = _BAD_ENERGY
        else:
            gid = layer_offset[lay] + ieta[i] * n_cells[lay] + iphi[i]
            if cell_map[gid] >= 0:
                status, first = _DUPLICATE, cell_map[gid]
            else:
                cell_map[gid] = i
                cell_id[i] = gid
                n_mapped += 1
                significance[i] = abs(energy[i]) / sigma[i]
        if status != _OK:
            bad = i
            break
    if status != _OK:
        for i in range(n_mapped):
            cell_map[cell_id[i]] = -1
        return status, bad, first

    labels[:] = -1
    n_seeds = 0
    n_growing = 0
    for i in range(n):
        if significance[i] > grow_threshold:
            n_growing += 1
            if significance[i] > seed_threshold:
                n_seeds += 1
    seeds = np.empty(n_seeds, dtype=np.int64)
    k = 0
    for i in range(n):
        if significance[i] > seed_threshold:
            seeds[k] = i
            k += 1
    front = _by_significance(seeds, significance)
    parent = np.arange(n_seeds)
    for k in range(n_seeds):
        labels[front[k]] = k  # proto-cluster id = seed rank
    next_front = np.empty(n_growing, dtype=np.int64)  # every growing cell enters one generation at most

    neighbours = np.empty(max_neighbours, dtype=np.int64)
    while front.size:
        n_next = 0
        for c in front:
            # input positions of the cell's neighbours (-1: not in the input)
            n_neighbours = 0
            lay, i, j = layer[c], ieta[c], iphi[c]
            nc = n_cells[lay]
            base = layer_offset[lay]
            for ii in range(max(i - 1, 0), min(i + 2, nc)):
                for dj in range(-1, 2):
                    if ii != i or dj != 0:
                        neighbours[n_neighbours] = cell_map[base + ii * nc + (j + dj) % nc]
                        n_neighbours += 1
            for adjacent in (lay - 1, lay + 1):
                if adjacent < 0 or adjacent >= n_layers:
                    continue
                na = n_cells[adjacent]
                base = layer_offset[adjacent]
                if na <= nc:  # adjacent layer coarser (or equal): the one cell containing this one
                    r = nc // na
                    neighbours[n_neighbours] = cell_map[base + (i // r) * na + j // r]
                    n_neighbours += 1
                else:  # adjacent layer finer: the r x r cells inside this one
                    r = na // nc
                    for ii in range(i * r, i * r + r):
                        for jj in range(j * r, j * r + r):
                            neighbours[n_neighbours] = cell_map[base + ii * na + jj]
                            n_neighbours += 1

            # the growth rules (written out here: a helper call per neighbour costs ~10x more)
            label = labels[c]
            for k in range(n_neighbours):
                m = neighbours[k]
                if m < 0:
                    continue
                other = labels[m]
                if other < 0:
                    if significance[m] > grow_threshold:
                        labels[m] = label
                        next_front[n_next] = m
                        n_next += 1
                    elif significance[m] > boundary_threshold:
                        labels[m] = label
                elif other != label and significance[m] > grow_threshold:
                    # union by smallest proto-cluster id: a root is its cluster's most significant seed
                    root_a, root_b = _find(parent, label), _find(parent, other)
                    if root_a < root_b:
                        parent[root_b] = root_a
                    elif root_b < root_a:
                        parent[root_a] = root_b
        front = _by_significance(next_front[:n_next], significance)

    # roots are the smallest proto-cluster id of their cluster, so numbering the roots in
    # increasing id numbers the clusters by decreasing most significant seed
    cluster_of_proto = np.empty(n_seeds, dtype=np.int64)
    n_clusters = 0
    for k in range(n_seeds):
        root = _find(parent, k)
        if root == k:
            cluster_of_proto[k] = n_clusters
            n_clusters += 1
        else:  # root < k: numbered already
            cluster_of_proto[k] = cluster_of_proto[root]
    for i in range(n):
        cell_map[cell_id[i]] = -1
        if labels[i] >= 0:
            labels[i] = cluster_of_proto[labels[i]]
    return _OK, -1, -1
