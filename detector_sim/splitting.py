"""Splitting of topoclusters at local energy maxima, as ATLAS does (arXiv:1603.02934, section 4.3).

Topoclustering (:mod:`detector_sim.clustering`) only ever merges: the showers of a dense jet touch
and grow into one cluster holding most of the jet's energy, so that cluster-level jet mass and
substructure are lost. The splitter divides every cluster with two or more local maxima.

Cells are the sparse list of :mod:`detector_sim.clustering` (``layer``, ``ieta``, ``iphi``,
``energy`` [GeV]) plus the cell centres ``eta``, ``phi`` and the topocluster index of each cell.

1. **Local maxima.** A cell of a splitting layer ``L`` is a local maximum when its energy
   exceeds ``thresholds_gev[L]`` (500 MeV by default, NaN: no maxima in that layer), at least
   ``min_neighbours`` (4) of its 8 in-layer neighbours belong to the same cluster, and none of
   those has more energy (equal energies: the earlier input position wins).
2. **Secondary layers.** A maximum in a layer flagged secondary is dropped when a maximum of a
   primary layer of the same cluster overlaps it in (eta, phi) (the grids nest, so one cell
   contains the other). ATLAS uses its EM middle/back layers as primary and the presampler,
   strips and hadronic layers as secondary, so that one hadron's EM and hadronic deposits are
   not split apart when the EM part already has a maximum.
3. **Growth.** Each surviving maximum seeds a proto-cluster (ids by decreasing maximum energy).
   The proto-clusters grow together, one generation at a time, through the cells of their parent
   cluster (3-D neighbours as in topoclustering, no thresholds). A cell reached in the same
   generation by two proto-clusters is *shared* between them (reached by more: the two with the
   most energetic maxima) and grows no further; the other reached cells join their proto-cluster
   and grow on. Cells that only shared cells border are given, in a last breadth-first pass in
   which shared cells grow for the first of their two (the more energetic maximum), to the
   first proto-cluster reaching them (of several at once, the one with the most energetic
   maximum). The result does not depend on the order of the input cells (except between cells
   of exactly equal energy).
4. **Shared cells** are divided with the ATLAS weights ``w1 = E1 / (E1 + r E2)``, ``w2 = 1 -
   w1``, ``r = exp(d1 - d2)``, where ``E_k`` is proto-cluster k's energy from its unshared cells
   (negative counted as 0) and ``d_k`` the distance from the cell to its energy-weighted
   centroid, ``R_mid(layer) * dR``, in units of ``shower_size_mm`` (50 mm, ATLAS's typical EM
   shower size). The cell's *primary* cluster is the one with the larger weight.

Clusters with fewer than two maxima are kept whole. Output clusters are numbered parent by parent
(in the parent's topocluster order), and within a split parent by decreasing maximum energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detector_sim.clustering import _CELL_MAP, _LAYER_OFFSET, _MAX_NEIGHBOURS, _N_CELLS
from detector_sim.geometry import N_CELLS, N_LAYERS, R_MID_MM
from gnnjets.base.kinematics import wrap_phi

#: ATLAS's local-maximum energy threshold (arXiv:1603.02934)
SPLIT_THRESHOLD_GEV = 0.5
#: a maximum needs at least this many in-layer neighbours in its cluster (ATLAS: 4)
MIN_NEIGHBOURS = 4
#: distance unit of the shared-cell weights (ATLAS: the typical EM shower size, ~5 cm)
SHOWER_SIZE_MM = 50.0
#: per layer (ECAL1, ECAL2, ECAL3, HCAL1, HCAL2, HCAL3): maxima threshold [GeV] (None: not a
#: splitting layer) and whether the layer is secondary. ECAL2/ECAL3 play ATLAS's EM middle/back
#: layers (primary); ECAL1 (the strips) and the HCAL layers are secondary.
DEFAULT_THRESHOLDS_GEV = (SPLIT_THRESHOLD_GEV,) * N_LAYERS
DEFAULT_SECONDARY_LAYERS = (0, 3, 4, 5)

if any(max(a, b) % min(a, b) for a in N_CELLS for b in N_CELLS):
    raise ImportError(f"the layer granularities must nest (each a multiple of the others), not {N_CELLS.tolist()}")

_R_MID_MM = np.asarray(R_MID_MM, dtype=np.float64)
#: cos and sin of the cell-centre phi of every (layer, iphi), at ``_PHI_OFFSET[layer] + iphi``:
#: table look-ups instead of two trigonometric calls per cell in the kernel
_PHI_OFFSET = np.concatenate([[0], np.cumsum(N_CELLS)]).astype(np.int64)
_PHI_CENTRES = np.concatenate([-np.pi + (np.arange(n) + 0.5) * (2 * np.pi / n) for n in N_CELLS])
_COS_PHI, _SIN_PHI = np.cos(_PHI_CENTRES), np.sin(_PHI_CENTRES)


@dataclass
class SplitClusters:
    """The clusters after splitting, cell by cell, and their kinematics.

    ``primary``: cluster of each cell (-1: in no cluster); ``secondary``: the second cluster of a
    shared cell (-1: not shared); ``weight``: the primary cluster's share of the cell (1 for
    unshared cells, in [0.5, 1] for shared ones). Cluster kinematics as in
    :func:`~detector_sim.clustering.cluster_kinematics`, a shared cell counted in both clusters
    with its weights: ``e = sum(w E)``, ``eta`` and ``phi`` the ``w |E|``-weighted (circular)
    means, ``pt = e / cosh(eta)``.

    Shapes: ``primary``, ``secondary``, ``weight`` ``(N,)`` over the input cells; ``e``, ``eta``,
    ``phi``, ``pt`` ``(K,)`` over the clusters.
    """

    primary: np.ndarray
    secondary: np.ndarray
    weight: np.ndarray
    e: np.ndarray
    eta: np.ndarray
    phi: np.ndarray

    @property
    def n_clusters(self) -> int:
        return self.e.size

    @property
    def pt(self) -> np.ndarray:
        return self.e / np.cosh(self.eta)

    def kinematics(self) -> dict[str, np.ndarray]:
        """``e``, ``eta``, ``phi``, ``pt`` of the clusters as a dict."""
        return {"e": self.e, "eta": self.eta, "phi": self.phi, "pt": self.pt}


def layer_settings(thresholds_gev=DEFAULT_THRESHOLDS_GEV, secondary_layers=DEFAULT_SECONDARY_LAYERS):
    """Per-layer arrays for the kernel: thresholds (NaN: no maxima) and the secondary flags."""
    if len(thresholds_gev) != N_LAYERS:
        raise ValueError(f"'thresholds_gev' needs one entry per layer ({N_LAYERS}), not {len(thresholds_gev)}")
    thresholds = np.array([np.nan if t is None else float(t) for t in thresholds_gev], dtype=np.float64)
    secondary = np.zeros(N_LAYERS, dtype=np.bool_)
    for layer in secondary_layers:
        if not 0 <= layer < N_LAYERS:
            raise ValueError(f"'secondary_layers' must hold layers 0..{N_LAYERS - 1}, not {layer}")
        secondary[layer] = True
    return thresholds, secondary


class Splitter:
    """The splitting of :func:`split_topoclusters` with its settings checked once (call it per replica).

    >>> splitter = Splitter(thresholds_gev=[0.5] * 6)                                   # doctest: +SKIP
    >>> clusters = splitter(layer, ieta, iphi, energy, eta, phi, cluster_index)          # doctest: +SKIP
    """

    def __init__(self, thresholds_gev=DEFAULT_THRESHOLDS_GEV, secondary_layers=DEFAULT_SECONDARY_LAYERS,
                 min_neighbours: int = MIN_NEIGHBOURS, shower_size_mm: float = SHOWER_SIZE_MM):
        self.thresholds, self.secondary = layer_settings(thresholds_gev, secondary_layers)
        if isinstance(min_neighbours, bool) or not isinstance(min_neighbours, (int, np.integer)) or not 0 <= min_neighbours <= 8:
            raise ValueError(f"'min_neighbours' must be an integer in 0..8, not {min_neighbours!r}")
        if not shower_size_mm > 0:
            raise ValueError(f"'shower_size_mm' must be positive, not {shower_size_mm!r}")
        self.min_neighbours = int(min_neighbours)
        self.shower_size_mm = float(shower_size_mm)

    def __repr__(self) -> str:
        thresholds = [None if np.isnan(t) else float(t) for t in self.thresholds]
        return (f"Splitter(thresholds_gev={thresholds}, secondary_layers={np.flatnonzero(self.secondary).tolist()}, "
                f"min_neighbours={self.min_neighbours}, shower_size_mm={self.shower_size_mm:g})")

    def __call__(self, layer, ieta, iphi, energy, eta, phi, cluster_index) -> SplitClusters:
        cluster_index = np.asarray(cluster_index, dtype=np.int64)
        cells = np.flatnonzero(cluster_index >= 0)
        if cells.size == cluster_index.size:  # every cell clustered (the simulation passes just those)
            return self.split_clustered(layer, ieta, iphi, energy, eta, phi, cluster_index)
        inner = self.split_clustered(*(np.asarray(a)[cells] for a in (layer, ieta, iphi, energy, eta, phi, cluster_index)))
        primary = np.full(cluster_index.size, -1, dtype=np.int64)
        second = np.full(cluster_index.size, -1, dtype=np.int64)
        weight = np.ones(cluster_index.size, dtype=np.float64)
        primary[cells], second[cells], weight[cells] = inner.primary, inner.secondary, inner.weight
        return SplitClusters(primary, second, weight, inner.e, inner.eta, inner.phi)

    def split_clustered(self, layer, ieta, iphi, energy, eta, phi, cluster_index) -> SplitClusters:
        """Like calling the splitter, for cells that are all in some topocluster (``cluster_index >= 0``)."""
        n = len(cluster_index)
        if n == 0:
            empty = np.zeros(0)
            return SplitClusters(np.zeros(0, np.int64), np.zeros(0, np.int64), empty, empty, empty, empty)
        cluster_index = np.ascontiguousarray(cluster_index, dtype=np.int64)
        out_primary = np.empty(n, dtype=np.int64)
        out_second = np.empty(n, dtype=np.int64)
        out_weight = np.empty(n, dtype=np.float64)
        e, eta_centre, phi_centre = _split_kernel(
            np.ascontiguousarray(layer, dtype=np.int64), np.ascontiguousarray(ieta, dtype=np.int64),
            np.ascontiguousarray(iphi, dtype=np.int64), np.ascontiguousarray(energy, dtype=np.float64),
            np.ascontiguousarray(eta, dtype=np.float64), np.ascontiguousarray(phi, dtype=np.float64),
            cluster_index, int(cluster_index.max()) + 1, self.thresholds, self.secondary, self.min_neighbours,
            self.shower_size_mm, _R_MID_MM, _N_CELLS, _LAYER_OFFSET, _MAX_NEIGHBOURS, _CELL_MAP, _PHI_OFFSET, _COS_PHI,
            _SIN_PHI, out_primary, out_second, out_weight)
        return SplitClusters(out_primary, out_second, out_weight, e, eta_centre, wrap_phi(phi_centre))


def split_topoclusters(layer, ieta, iphi, energy, eta, phi, cluster_index, *,
                       thresholds_gev=DEFAULT_THRESHOLDS_GEV, secondary_layers=DEFAULT_SECONDARY_LAYERS,
                       min_neighbours: int = MIN_NEIGHBOURS, shower_size_mm: float = SHOWER_SIZE_MM) -> SplitClusters:
    """Split the topoclusters ``cluster_index`` of the cells at their local maxima (module docstring).

    Args:
        layer, ieta, iphi: integer cell positions (each cell once, as for topoclustering).
        energy: cell energies [GeV]; eta, phi: cell centres.
        cluster_index: topocluster of each cell (-1: none), numbered 0..K-1 (every number used).
        thresholds_gev: per layer, the energy a local maximum must exceed; None or NaN: none there.
        secondary_layers: layers whose maxima give way to overlapping maxima of the other layers.
        min_neighbours: in-layer neighbours in the cluster a maximum needs.
        shower_size_mm: distance unit of the shared-cell weights.

    Returns:
        :class:`SplitClusters`.

    Shapes:
        inputs ``(N,)``; outputs ``(N,)`` and ``(K',)`` over the clusters after splitting.
    """
    return Splitter(thresholds_gev, secondary_layers, min_neighbours, shower_size_mm)(
        layer, ieta, iphi, energy, eta, phi, cluster_index)


# ----------------------------------------------------------------------------- numba kernel

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
def _split_kernel(layer, ieta, iphi, energy, eta, phi, parent, n_parents, thresholds, secondary, min_neighbours,
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
