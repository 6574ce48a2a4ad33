"""The numba kernel of :mod:`detector_sim.splitting`: local maxima, proto-cluster growth, shared-cell weights.

Cells are the clustered cells only (``parent`` >= 0 for each); the neighbour look-up shares the
dense global-id map of :mod:`detector_sim.clustering` (all -1 between calls). The algorithm and its
conventions are described in :mod:`detector_sim.splitting`.
"""

from __future__ import annotations

import numba
import numpy as np

@numba.njit(cache=True)
def _neighbour_positions(c, layer, ieta, iphi, n_cells, layer_offset, cell_map, out, same_layer_only):
    """Input positions of the neighbours of cell ``c`` into ``out`` (-1: not in the input); their count.

    The (up to 8) neighbours in the cell's own layer come first.
    """
    count = 0
    lay, i, j = layer[c], ieta[c], iphi[c]
    nc = n_cells[lay]
    base = layer_offset[lay]
    for ii in range(max(i - 1, 0), min(i + 2, nc)):
        for dj in range(-1, 2):
            if ii != i or dj != 0:
                out[count] = cell_map[base + ii * nc + (j + dj) % nc]
                count += 1
    if same_layer_only:
        return count
    for adjacent in (lay - 1, lay + 1):
        if adjacent < 0 or adjacent >= n_cells.size:
            continue
        na = n_cells[adjacent]
        base = layer_offset[adjacent]
        if na <= nc:
            r = nc // na
            out[count] = cell_map[base + (i // r) * na + j // r]
            count += 1
        else:
            r = na // nc
            for ii in range(i * r, i * r + r):
                for jj in range(j * r, j * r + r):
                    out[count] = cell_map[base + ii * na + jj]
                    count += 1
    return count


@numba.njit(cache=True)
def _cells_overlap(a, b, layer, ieta, iphi, n_cells):
    """Whether cells ``a`` and ``b`` overlap in (eta, phi) (nested grids: one contains the other)."""
    na, nb = n_cells[layer[a]], n_cells[layer[b]]
    coarse = min(na, nb)
    ra, rb = na // coarse, nb // coarse
    return ieta[a] // ra == ieta[b] // rb and iphi[a] // ra == iphi[b] // rb


@numba.njit(cache=True, inline="always")
def _wrap(dphi):
    return dphi - 2 * np.pi * np.floor((dphi + np.pi) / (2 * np.pi))


@numba.njit(cache=True)
def split_kernel(layer, ieta, iphi, energy, eta, phi, parent, n_parents, thresholds, secondary, min_neighbours,
                  shower_size_mm, r_mid, n_cells, layer_offset, max_neighbours, cell_map, phi_offset, cos_table,
                  sin_table, out_primary, out_second, out_weight):
    """Steps 1-4 of the module docstring on clustered cells; fills the outputs, returns cluster e, eta, phi."""
    n = layer.size
    gid = np.empty(n, dtype=np.int64)
    cos_phi = np.empty(n)
    sin_phi = np.empty(n)
    for c in range(n):
        lay = layer[c]
        gid[c] = layer_offset[lay] + ieta[c] * n_cells[lay] + iphi[c]
        cell_map[gid[c]] = c
        cos_phi[c] = cos_table[phi_offset[lay] + iphi[c]]
        sin_phi[c] = sin_table[phi_offset[lay] + iphi[c]]
    scratch = np.empty(max_neighbours, dtype=np.int64)

    # 1. local maxima (in-layer neighbours of the same cluster)
    is_max = np.zeros(n, dtype=np.bool_)
    n_max = 0
    for c in range(n):
        if not energy[c] > thresholds[layer[c]]:  # NaN threshold: never
            continue
        k = _neighbour_positions(c, layer, ieta, iphi, n_cells, layer_offset, cell_map, scratch, True)
        count = 0
        highest = True
        for t in range(k):
            m = scratch[t]
            if m < 0 or parent[m] != parent[c]:
                continue
            count += 1
            if energy[m] > energy[c] or (energy[m] == energy[c] and m < c):
                highest = False
                break
        if highest and count >= min_neighbours:
            is_max[c] = True
            n_max += 1
    maxima = np.flatnonzero(is_max)

    # 2. secondary maxima overlapping a primary maximum of their cluster give way
    for a in maxima:
        if not secondary[layer[a]]:
            continue
        for b in maxima:
            if is_max[b] and not secondary[layer[b]] and parent[b] == parent[a] \
                    and _cells_overlap(a, b, layer, ieta, iphi, n_cells):
                is_max[a] = False
                break

    # 3. proto-clusters: maxima of parents with at least two, by decreasing energy (ties: position)
    maxima_per_parent = np.zeros(n_parents, dtype=np.int64)
    for c in maxima:
        if is_max[c]:
            maxima_per_parent[parent[c]] += 1
    n_seeds = 0
    for c in maxima:
        if is_max[c] and maxima_per_parent[parent[c]] >= 2:
            n_seeds += 1
    seeds = np.empty(n_seeds, dtype=np.int64)
    k = 0
    for c in maxima:
        if is_max[c] and maxima_per_parent[parent[c]] >= 2:
            seeds[k] = c
            k += 1
    seeds = seeds[np.argsort(-energy[seeds], kind="mergesort")]

    # neighbour lists (3-D, same cluster) of the cells of split parents, then the map is released
    adjacency_start = np.zeros(n + 1, dtype=np.int64)
    adjacency = np.empty(n * max_neighbours, dtype=np.int64)
    n_links = 0
    for c in range(n):
        adjacency_start[c] = n_links
        if maxima_per_parent[parent[c]] < 2:
            continue
        k = _neighbour_positions(c, layer, ieta, iphi, n_cells, layer_offset, cell_map, scratch, False)
        for t in range(k):
            m = scratch[t]
            if m >= 0 and parent[m] == parent[c]:
                adjacency[n_links] = m
                n_links += 1
    adjacency_start[n] = n_links
    for c in range(n):
        cell_map[gid[c]] = -1

    owner = np.full(n, -1, dtype=np.int64)
    shared_with = np.full(n, -1, dtype=np.int64)
    claim_a = np.full(n, -1, dtype=np.int64)
    claim_b = np.full(n, -1, dtype=np.int64)
    for p in range(n_seeds):
        owner[seeds[p]] = p
    front = seeds.copy()
    touched = np.empty(n, dtype=np.int64)
    n_assigned = n_seeds
    while front.size:
        n_touched = 0
        for c in front:
            p = owner[c]
            for t in range(adjacency_start[c], adjacency_start[c + 1]):
                m = adjacency[t]
                if owner[m] >= 0:
                    continue
                # keep the two smallest proto ids (most energetic maxima): independent of the order
                if claim_a[m] < 0:
                    claim_a[m] = p
                    touched[n_touched] = m
                    n_touched += 1
                elif p == claim_a[m] or p == claim_b[m]:
                    pass
                elif p < claim_a[m]:
                    claim_b[m] = claim_a[m]
                    claim_a[m] = p
                elif claim_b[m] < 0 or p < claim_b[m]:
                    claim_b[m] = p
        n_next = 0
        for t in range(n_touched):
            m = touched[t]
            owner[m] = claim_a[m]
            if claim_b[m] >= 0:
                shared_with[m] = claim_b[m]
            else:
                touched[n_next] = m  # compacts in place: n_next <= t
                n_next += 1
        n_assigned += n_touched
        front = touched[:n_next].copy()

    n_split_cells = 0
    for c in range(n):
        if maxima_per_parent[parent[c]] >= 2:
            n_split_cells += 1
    if n_assigned < n_split_cells:
        # cells only shared cells border: to the neighbouring proto-cluster with the most energetic
        # maximum among those reaching them first (claims as above: independent of the order)
        front = np.flatnonzero(owner >= 0)
        while front.size:
            n_touched = 0
            for c in front:
                for t in range(adjacency_start[c], adjacency_start[c + 1]):
                    m = adjacency[t]
                    if owner[m] >= 0:
                        continue
                    if claim_a[m] < 0:
                        touched[n_touched] = m
                        n_touched += 1
                        claim_a[m] = owner[c]
                    elif owner[c] < claim_a[m]:
                        claim_a[m] = owner[c]
            for t in range(n_touched):
                owner[touched[t]] = claim_a[touched[t]]
            front = touched[:n_touched].copy()

    # 4. proto-cluster energies and centroids from unshared cells, then the shared cells' weights
    proto_e = np.zeros(n_seeds)
    proto_w = np.zeros(n_seeds)
    proto_eta = np.zeros(n_seeds)
    proto_cos = np.zeros(n_seeds)
    proto_sin = np.zeros(n_seeds)
    for c in range(n):
        p = owner[c]
        if p >= 0 and shared_with[c] < 0:
            proto_e[p] += energy[c]
            w = max(energy[c], 0.0)
            proto_w[p] += w
            proto_eta[p] += w * eta[c]
            proto_cos[p] += w * cos_phi[c]
            proto_sin[p] += w * sin_phi[c]
    proto_phi = np.empty(n_seeds)
    for p in range(n_seeds):
        if proto_w[p] > 0:
            proto_eta[p] = proto_eta[p] / proto_w[p]
            proto_phi[p] = np.arctan2(proto_sin[p], proto_cos[p])
        else:
            proto_eta[p] = eta[seeds[p]]
            proto_phi[p] = phi[seeds[p]]

    # numbering: parent by parent, split parents by decreasing maximum energy
    first_id = np.empty(n_parents, dtype=np.int64)
    n_clusters = 0
    for q in range(n_parents):
        first_id[q] = n_clusters
        n_clusters += maxima_per_parent[q] if maxima_per_parent[q] >= 2 else 1
    proto_id = np.empty(n_seeds, dtype=np.int64)
    used = np.zeros(n_parents, dtype=np.int64)
    for p in range(n_seeds):  # seeds are in decreasing energy, so each parent's protos come in order
        q = parent[seeds[p]]
        proto_id[p] = first_id[q] + used[q]
        used[q] += 1

    for c in range(n):
        p = owner[c]
        if p < 0:
            out_primary[c] = first_id[parent[c]]
            out_second[c] = -1
            out_weight[c] = 1.0
        elif shared_with[c] < 0:
            out_primary[c] = proto_id[p]
            out_second[c] = -1
            out_weight[c] = 1.0
        else:
            o = shared_with[c]
            scale = r_mid[layer[c]] / shower_size_mm
            d_p = np.hypot(eta[c] - proto_eta[p], _wrap(phi[c] - proto_phi[p])) * scale
            d_o = np.hypot(eta[c] - proto_eta[o], _wrap(phi[c] - proto_phi[o])) * scale
            e_p, e_o = max(proto_e[p], 0.0), max(proto_e[o], 0.0)
            denominator = e_p + np.exp(d_p - d_o) * e_o
            w = e_p / denominator if denominator > 0 else 0.5
            if w >= 0.5:
                out_primary[c], out_second[c], out_weight[c] = proto_id[p], proto_id[o], w
            else:
                out_primary[c], out_second[c], out_weight[c] = proto_id[o], proto_id[p], 1.0 - w

    # cluster kinematics, a shared cell in both clusters by weight
    e = np.zeros(n_clusters)
    sum_w = np.zeros(n_clusters)
    sum_eta = np.zeros(n_clusters)
    sum_cos = np.zeros(n_clusters)
    sum_sin = np.zeros(n_clusters)
    for c in range(n):
        k, w = out_primary[c], out_weight[c]
        for share in range(2):
            if share == 1:
                k, w = out_second[c], 1.0 - out_weight[c]
                if k < 0:
                    break
            a = w * abs(energy[c])
            e[k] += w * energy[c]
            sum_w[k] += a
            sum_eta[k] += a * eta[c]
            sum_cos[k] += a * cos_phi[c]
            sum_sin[k] += a * sin_phi[c]
    centre_eta = np.full(n_clusters, np.nan)
    centre_phi = np.full(n_clusters, np.nan)
    for k in range(n_clusters):
        if sum_w[k] > 0:
            centre_eta[k] = sum_eta[k] / sum_w[k]
            centre_phi[k] = np.arctan2(sum_sin[k], sum_cos[k])
    return e, centre_eta, centre_phi
