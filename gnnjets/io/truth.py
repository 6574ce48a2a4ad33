"""A per-event file's own particle-level jets, matched to its reco jets: truth kinematics and labels.

Used by ``layout: events`` mappings with a ``truth_jets`` key (:mod:`gnnjets.io.mapping`; COCOA
writes ``true_jet_pt/eta/phi/m`` and ``true_jet_truth_id``). Each reco jet takes the nearest truth
jet of its event within ``Delta R < match_radius``; its label follows the matched parton:
quark (|PDG id| 1-5) = 1, gluon (21) = 0, anything else or no match = -1, as in our own files.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from gnnjets.base.kinematics import delta_phi
from gnnjets.io.arrays import flat
from gnnjets.io.assign import assign_within_delta_r
from gnnjets.io.errors import NonFiniteValueError

#: schema branches a truth-jet collection provides
TRUTH_NAMES = ("truth_pt", "truth_eta", "truth_phi", "truth_e", "truth_m", "label", "parton_pdgid")
QUARK_PDGIDS = (1, 2, 3, 4, 5)
GLUON_PDGID = 21


def nearest_within(jet_eta, jet_phi, jets_per_event, obj_eta, obj_phi, objs_per_event, radius: float) -> np.ndarray:
    """For each jet, the flat index of the nearest object of its event within ``Delta R < radius``; -1 if none."""
    jet_eta, jet_phi = np.asarray(jet_eta, np.float64), np.asarray(jet_phi, np.float64)
    selected, counts = assign_within_delta_r(jet_eta, jet_phi, jets_per_event, obj_eta, obj_phi, objs_per_event,
                                             radius)
    jet_of_pair = np.repeat(np.arange(len(counts)), counts)
    d_eta = jet_eta[jet_of_pair] - np.asarray(obj_eta, np.float64)[selected]
    d_phi = delta_phi(jet_phi[jet_of_pair], np.asarray(obj_phi, np.float64)[selected])
    order = np.lexsort((d_eta * d_eta + d_phi * d_phi, jet_of_pair))  # by jet, nearest first
    nearest = np.full(len(counts), -1, dtype=np.int64)
    has = counts > 0
    nearest[has] = selected[order][(np.cumsum(counts) - counts)[has]]
    return nearest


def label_of_pdgid(pdgid: np.ndarray) -> np.ndarray:
    """1 for a quark, 0 for a gluon, -1 for anything else (int32)."""
    pdgid = np.abs(np.asarray(pdgid, dtype=np.int64))
    return np.where(np.isin(pdgid, QUARK_PDGIDS), 1, np.where(pdgid == GLUON_PDGID, 0, -1)).astype(np.int32)


def match_truth_jets(arrays: dict, truth_jets, units: dict, entry_in: np.ndarray, entry_out: np.ndarray,
                     jet_eta: np.ndarray, jet_phi: np.ndarray, where: str) -> tuple[np.ndarray, dict]:
    """The truth values of each reco jet: ``(matched, {schema name: values})``.

    Args:
        arrays: the chunk's foreign arrays (per event), holding the ``truth_jets`` branches.
        truth_jets: the mapping's :class:`~gnnjets.io.mapping.TruthJets`.
        units: the mapping's unit factors (``truth_pt``/``truth_m``, else those of ``jet_pt``/``jet_m``).
        entry_in: the entries of the chunk's events; ``entry_out``: the event entry of each reco jet.
        jet_eta, jet_phi: the reco jet axes.

    ``matched`` (bool per reco jet) says which jets found a truth jet; values of the others are
    meaningless (the reader fills them from the reco jet).
    """
    eta_lists, phi_lists = arrays[truth_jets.eta], arrays[truth_jets.phi]
    eta, phi = flat(eta_lists).astype(np.float64), flat(phi_lists).astype(np.float64)
    for name, values in ((truth_jets.eta, eta), (truth_jets.phi, phi)):
        if not np.isfinite(values).all():
            raise NonFiniteValueError(f"{values[~np.isfinite(values)][0]} in truth-jet branch {name!r} of {where}: "
                                      f"truth jets cannot be matched; fix the file or remove 'truth_jets' from the "
                                      f"mapping")
    event_of_jet = np.searchsorted(entry_in, entry_out)
    jets_per_event = np.bincount(event_of_jet, minlength=len(entry_in))
    truth_per_event = ak.to_numpy(ak.num(eta_lists, axis=1)).astype(np.int64)
    nearest = nearest_within(jet_eta, jet_phi, jets_per_event, eta, phi, truth_per_event,
                             truth_jets.match_radius)
    matched = nearest >= 0
    pick = np.where(matched, nearest, 0)

    def take(branch, factor=None, default=0.0):
        if branch is None or not len(eta):
            return np.full(len(pick), default, dtype=np.float64)
        values = flat(arrays[branch]).astype(np.float64) * (1.0 if factor is None else factor)
        return values[pick]

    pt = take(truth_jets.pt, units.get("truth_pt", units.get("jet_pt")))
    m = take(truth_jets.m, units.get("truth_m", units.get("jet_m")))
    eta_jet = eta[pick] if len(eta) else np.zeros(len(pick))
    pdgid = take(truth_jets.pdgid).astype(np.int64)
    values = {"truth_pt": pt, "truth_eta": eta_jet, "truth_phi": phi[pick] if len(phi) else np.zeros(len(pick)),
              "truth_m": m, "truth_e": np.hypot(pt * np.cosh(eta_jet), m), "parton_pdgid": pdgid,
              "label": label_of_pdgid(pdgid)}
    return matched, values
