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

import numpy as np

from detector_sim.clustering import _CELL_MAP, _LAYER_OFFSET, _MAX_NEIGHBOURS, _N_CELLS
from detector_sim.geometry import N_CELLS, N_LAYERS, R_MID_MM
from detector_sim.splitting_kernel import split_kernel
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
        e, eta_centre, phi_centre = split_kernel(
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
