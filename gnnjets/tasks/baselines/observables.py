r"""Nine standard jet observables: the baseline any learned representation must beat.

``jet_observables`` -> ``(n, 9)`` float64, one row per selected entry, columns
(:data:`OBSERVABLE_NAMES`):

=====================  ======================================================================
``n_tracks``           tracks of the jet (pT > 1 GeV, within Delta R < R of the axis)
``n_cells``            cells of the jet's topoclusters (noise cells included)
``n_topoclusters``     distinct topoclusters among those cells
``log_pt``             log(jet_pt / GeV) of the reco jet (EM scale)
``track_girth``        :math:`\sum_i p_{T,i} \Delta R_i / \sum_i p_{T,i}` over tracks (0 without tracks)
``cell_girth``         the same over the positive cells, :math:`p_{T,i} = E_i / \cosh\eta_i`
``track_ptd``          :math:`\sqrt{\sum_i p_{T,i}^2} / \sum_i p_{T,i}` over tracks (0 without tracks)
``ecal_fraction``      positive cell energy in the ECAL layers (0-2) over all positive cell energy
``cell_mass``          invariant mass [GeV] of the positive cells as massless four-vectors
=====================  ======================================================================

Multiplicities, widths and the fragmentation function are the classic quark/gluon
discriminants (gluons radiate more: more, softer, wider constituents); the mass and the ECAL
fraction carry the top jets' prongs and the jets' electromagnetic content. Delta R is measured to
the reco jet axis with Delta phi wrapped. The mass is computed from the cells rather than read
from ``jet_m`` so that it does not depend on how the clusters were formed. ``ids`` as every
baseline reader (:mod:`gnnjets.tasks.baselines.reading`).

>>> values, ids = jet_observables("data/qg_small.root")                        # doctest: +SKIP
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from gnnjets.base.kinematics import delta_phi
from gnnjets.io.arrays import flat_values
from gnnjets.tasks.baselines.reading import ID_BRANCHES, concatenate, selected_chunks

OBSERVABLE_NAMES = ("n_tracks", "n_cells", "n_topoclusters", "log_pt", "track_girth", "cell_girth", "track_ptd",
                    "ecal_fraction", "cell_mass")
OBSERVABLE_BRANCHES = ID_BRANCHES + ("jet_pt", "jet_eta", "jet_phi", "cell_e", "cell_eta", "cell_phi", "cell_layer",
                                     "cell_topo_idx", "track_pt", "track_eta", "track_phi")
#: calorimeter layers 0..2 are the ECAL
ECAL_LAYERS = 3


def _per_record_sums(record: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(record, weights=values, minlength=n)


def observables_of_chunk(chunk: ak.Array) -> np.ndarray:
    """The nine observables (n, 9) of the records of one chunk (fields of :data:`OBSERVABLE_BRANCHES`)."""
    n = len(chunk)
    jet_eta = ak.to_numpy(chunk["jet_eta"]).astype(np.float64)
    jet_phi = ak.to_numpy(chunk["jet_phi"]).astype(np.float64)
    out = np.zeros((n, len(OBSERVABLE_NAMES)))

    n_cells = ak.to_numpy(ak.num(chunk["cell_e"], axis=1))
    n_tracks = ak.to_numpy(ak.num(chunk["track_pt"], axis=1))
    out[:, 0], out[:, 1] = n_tracks, n_cells
    # distinct topoclusters: sort (record, topo index) pairs and count the changes
    cell_record = np.repeat(np.arange(n), n_cells)
    topo = flat_values(chunk["cell_topo_idx"]).astype(np.int64)
    if len(topo):
        key = np.unique(cell_record * (int(topo.max()) + 2) + (topo + 1))
        out[:, 2] = np.bincount(key // (int(topo.max()) + 2), minlength=n)
    out[:, 3] = np.log(np.maximum(ak.to_numpy(chunk["jet_pt"]).astype(np.float64), 1e-3))

    # tracks: girth and pT_D
    track_record = np.repeat(np.arange(n), n_tracks)
    pt = flat_values(chunk["track_pt"]).astype(np.float64)
    d_r = np.hypot(flat_values(chunk["track_eta"]) - jet_eta[track_record],
                   delta_phi(flat_values(chunk["track_phi"]).astype(np.float64), jet_phi[track_record]))
    pt_sum = _per_record_sums(track_record, pt, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 4] = np.where(pt_sum > 0, _per_record_sums(track_record, pt * d_r, n) / pt_sum, 0.0)
        out[:, 6] = np.where(pt_sum > 0, np.sqrt(_per_record_sums(track_record, pt * pt, n)) / pt_sum, 0.0)

    # positive cells: girth, ECAL fraction, mass
    energy = flat_values(chunk["cell_e"]).astype(np.float64)
    eta = flat_values(chunk["cell_eta"]).astype(np.float64)
    phi = flat_values(chunk["cell_phi"]).astype(np.float64)
    layer = flat_values(chunk["cell_layer"]).astype(np.int64)
    positive = energy > 0
    record, energy, eta, phi, layer = (a[positive] for a in (cell_record, energy, eta, phi, layer))
    cell_pt = energy / np.cosh(eta)
    d_r = np.hypot(eta - jet_eta[record], delta_phi(phi, jet_phi[record]))
    pt_sum = _per_record_sums(record, cell_pt, n)
    e_sum = _per_record_sums(record, energy, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 5] = np.where(pt_sum > 0, _per_record_sums(record, cell_pt * d_r, n) / pt_sum, 0.0)
        out[:, 7] = np.where(e_sum > 0, _per_record_sums(record, energy * (layer < ECAL_LAYERS), n) / e_sum, 0.0)
    px = _per_record_sums(record, cell_pt * np.cos(phi), n)
    py = _per_record_sums(record, cell_pt * np.sin(phi), n)
    pz = _per_record_sums(record, cell_pt * np.sinh(eta), n)
    out[:, 8] = np.sqrt(np.maximum(e_sum**2 - px**2 - py**2 - pz**2, 0.0))
    return out


def jet_observables(paths, *, replica: int | None = 0, tree: str | None = None, mapping=None,
                    chunk_entries: int = 10_000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The nine observables of every entry of replica ``replica`` (``None``: all), in file order.

    Returns ``(values (n, 9) float64, ids)``; columns :data:`OBSERVABLE_NAMES`.
    """
    values, ids = [], []
    for chunk, chunk_ids in selected_chunks(paths, OBSERVABLE_BRANCHES, replica, tree, mapping, chunk_entries):
        values.append(observables_of_chunk(chunk))
        ids.append(chunk_ids)
    return np.concatenate(values), concatenate(ids)
