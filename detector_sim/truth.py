"""Truth level: final-state particles of a Pythia record, anti-kT truth jets, jet selection and labels.

Truth jets: anti-kT with R = ``jets.radius`` (E-scheme, FastJet's public awkward interface, many
events per call) on all stable visible final-state particles (everything final except neutrinos
12, 14, 16; muons included), at any rapidity. The ``jets.max_jets_per_event`` leading jets are
candidates; those with ``pt_min_gev <= pt <= pt_max_gev`` and |eta| < ``abs_eta_max`` that pass
the labelling are kept. ``jet_index`` is the jet's pT rank among all truth jets of the event.

Labels, from the hard partons read off the record by :func:`hard_partons`:

- ``qg``: flavour of the hard outgoing parton (not the Z) matched within ``jets.match_dr`` of the
  jet axis: quark (|pdgid| 1-6) = 1, gluon = 0. Jets without a matched parton are dropped.
- ``top``: a jet is a top jet when the top (last copy before its decay), its b and the two
  W-daughter quarks all lie within ``jets.match_dr`` (0.8) of the jet axis (the
  top-tagging-landscape selection, arXiv:1902.09914). Label 1, parton_pdgid = +-6; other jets
  are dropped.
- ``qcd``: label 0, parton_pdgid = pdgid of the closest hard outgoing parton within
  ``jets.match_dr``, else 0.

A parton (or top) labels at most one jet: candidate (parton, jet) pairs are taken closest first.

Conventions: energies, momenta and masses in GeV; production vertices in mm (Pythia's unit; no
beam spot, the hard interaction is at the origin); eta is the pseudorapidity, phi in (-pi, pi].
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import fastjet
import numpy as np
import pythia8mc

from gnnjets.base.config import ConfigError
from gnnjets.base.kinematics import delta_r, wrap_phi

#: particles kept in ``TruthEvent.particles``: the calorimeter ends at |eta| = 3, with margin
PARTICLE_ABS_ETA_MAX = 4.0
#: invisible stable particles, excluded from jets and from ``TruthEvent.particles``
NEUTRINO_PDGIDS = (12, 14, 16)
#: in Pythia's event record, entries 5 and 6 are the two outgoing partons of the 2 -> 2 hard process
_HARD_OUTGOING = (5, 6)
_GLUON = 21
_Z_BOSON = 23
_W_BOSON = 24
_TOP = 6

# Unbound methods: one attribute lookup per particle saved in the hot loop of final_state
_PARTICLE = pythia8mc.Particle
_IS_FINAL = _PARTICLE.isFinal
_PX, _PY, _PZ, _E, _M = _PARTICLE.px, _PARTICLE.py, _PARTICLE.pz, _PARTICLE.e, _PARTICLE.m
_X_PROD, _Y_PROD, _Z_PROD = _PARTICLE.xProd, _PARTICLE.yProd, _PARTICLE.zProd
_ID = _PARTICLE.id
#: columns of the array returned by final_state
COLUMNS = ("px", "py", "pz", "e", "m", "vx", "vy", "vz", "pdgid")
COL = {name: i for i, name in enumerate(COLUMNS)}
PARTICLE_KEYS = ("pt", "eta", "phi", "e", "m", "pdgid", "charge", "vx", "vy", "vz")
JET_KEYS = ("pt", "eta", "phi", "e", "m", "label", "parton_pdgid", "jet_index")


@dataclass
class TruthEvent:
    """One generated event after the jet selection (for one replica, in the replica modes that change it).

    particles: dict of 1-d numpy arrays, one entry per stable visible particle (neutrinos
        excluded) with |eta| < 4: ``pt, eta, phi, e, m`` [GeV, rad] (float64), ``pdgid`` (int32),
        ``charge`` (float64, in units of e), ``vx, vy, vz`` production vertex [mm] (float64).
    jets: dict of 1-d numpy arrays, one entry per selected truth jet (pT ordered):
        ``pt, eta, phi, e, m`` (float64), ``label`` (int32), ``parton_pdgid`` (int32),
        ``jet_index`` (int32, index among the event's truth jets before selection).
    constituents: list (one per selected jet) of int64 index arrays into ``particles``.
    jets_dropped: selected jets left out before the detector (``hadronization`` mode: a replica
        without a matching truth jet).
    """

    event_id: int
    particles: dict[str, np.ndarray]
    jets: dict[str, np.ndarray]
    constituents: list[np.ndarray]
    jets_dropped: int = 0


def jet_definition(radius: float) -> fastjet.JetDefinition:
    """Anti-kT with ``radius``; FastJet's banner (printed at the first clustering) switched off."""
    # a static method of the classic ClusterSequence, reached through a public subclass
    fastjet.ClusterSequenceArea.set_fastjet_banner_stream(None)
    return fastjet.JetDefinition(fastjet.antikt_algorithm, float(radius))


def cluster_antikt_many(momenta: list[np.ndarray], jet_definition, pt_min: float) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Inclusive anti-kT jets of many events in one FastJet call (its per-call cost is ~1.5 ms).

    Args:
        momenta: per event an (N, 4) float64 array of px, py, pz, e [GeV].
    Returns:
        per event ``(jets, constituents)``: jets (J, 4) px, py, pz, e with pt >= ``pt_min``,
        highest pT first; constituents: J sorted int64 arrays of row indices into that event's
        ``momenta``.
    """
    counts = np.array([len(m) for m in momenta], dtype=np.int64)
    if counts.sum() == 0:
        return [(np.zeros((0, 4)), []) for _ in momenta]
    flat = np.concatenate([np.asarray(m, dtype=np.float64).reshape(-1, 4) for m in momenta])  # (sum N, 4)
    records = ak.zip({"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}, with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(ak.unflatten(records, counts), jet_definition)
    jets = sequence.inclusive_jets(pt_min)
    jets_per_event = ak.to_numpy(ak.num(jets))
    jet_p4 = np.stack([ak.to_numpy(ak.flatten(jets[k])) for k in ("px", "py", "pz", "E")], axis=1)  # (sum J, 4)
    constituents = ak.flatten(sequence.constituent_index(pt_min), axis=1)  # one list per jet
    members_per_jet = ak.to_numpy(ak.num(constituents))
    members = np.split(ak.to_numpy(ak.flatten(constituents)).astype(np.int64), np.cumsum(members_per_jet)[:-1])
    out = []
    first = 0
    for n_jets in jets_per_event:
        event_jets = jet_p4[first:first + n_jets]
        order = np.argsort(-np.hypot(event_jets[:, 0], event_jets[:, 1]), kind="stable")
        out.append((event_jets[order], [np.sort(members[first + j]) for j in order]))
        first += n_jets
    return out


def cluster_antikt(momenta: np.ndarray, jet_definition, pt_min: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`cluster_antikt_many` for one event."""
    return cluster_antikt_many([momenta], jet_definition, pt_min)[0]


def final_state(event: pythia8mc.Event) -> np.ndarray:
    """All final-state entries of ``event`` as an (N, 9) float64 array, columns :data:`COLUMNS`.

    This is the only per-particle Python loop: one pass over the record (``particles()`` hands
    it over in one call, faster than indexing the event), nine accessor calls per final particle
    (charge is looked up per distinct pdgid afterwards).
    """
    final = [particle for particle in event.particles() if _IS_FINAL(particle)]
    rows = [(_PX(p), _PY(p), _PZ(p), _E(p), _M(p), _X_PROD(p), _Y_PROD(p), _Z_PROD(p), _ID(p)) for p in final]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(COLUMNS))  # (N, 9)


def visible(final: np.ndarray) -> np.ndarray:
    """The rows of a :func:`final_state` array that are not neutrinos."""
    return final[~np.isin(np.abs(final[:, COL["pdgid"]]), NEUTRINO_PDGIDS)]


def momenta_of(final: np.ndarray) -> np.ndarray:
    """(N, 4) px, py, pz, e of a :func:`final_state` array."""
    return final[:, [COL["px"], COL["py"], COL["pz"], COL["e"]]]


def pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity (+-inf along the beam) and phi in (-pi, pi].

    The inputs are made contiguous first: for strided views (a column of an (N, k) array) numpy
    1.26 picks its SIMD or its scalar arctan2 depending on whether the output happens to be
    allocated right after the input's buffer, and the two differ in the last bit for ~10% of the
    values: the same event would not give bit-identical particles from run to run.
    """
    px, py, pz = (np.ascontiguousarray(a, dtype=np.float64) for a in (px, py, pz))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / pt), np.copysign(np.inf, pz))
    return pt, eta, wrap_phi(np.arctan2(py, px))


def jet_kinematics(p4: np.ndarray) -> dict[str, np.ndarray]:
    """``pt, eta, phi, e, m`` of (J, 4) four-momenta."""
    pt, eta, phi = pt_eta_phi(p4[:, 0], p4[:, 1], p4[:, 2])
    m = np.sqrt(np.maximum(p4[:, 3] ** 2 - np.sum(p4[:, :3] ** 2, axis=1), 0.0))
    return {"pt": pt, "eta": eta, "phi": phi, "e": p4[:, 3].copy(), "m": m}


def kinematic_candidates(jets: np.ndarray, jets_config) -> np.ndarray:
    """pT ranks of the leading jets (at most ``max_jets_per_event``) inside the pT and |eta| window."""
    n_candidates = min(len(jets), jets_config.max_jets_per_event)
    pt, eta, _ = pt_eta_phi(jets[:n_candidates, 0], jets[:n_candidates, 1], jets[:n_candidates, 2])
    in_window = (pt >= jets_config.pt_min_gev) & (pt <= jets_config.pt_max_gev) & (np.abs(eta) < jets_config.abs_eta_max)
    return np.flatnonzero(in_window)


def build_truth_event(event_id: int, final: np.ndarray, charges: dict[int, float], jets: np.ndarray,
                      jet_constituents: list[np.ndarray], selected: np.ndarray, label: np.ndarray,
                      parton_pdgid: np.ndarray, jet_index: np.ndarray | None = None) -> TruthEvent:
    """A :class:`TruthEvent` from visible final-state rows, their jets and the selected jets' labels.

    ``selected``: indices into ``jets``; ``jet_index`` defaults to ``selected`` (the pT ranks).
    """
    pdgid = final[:, COL["pdgid"]].astype(np.int64)
    pt, eta, phi = pt_eta_phi(final[:, COL["px"]], final[:, COL["py"]], final[:, COL["pz"]])
    stored = np.abs(eta) < PARTICLE_ABS_ETA_MAX
    for j in selected:  # cannot trigger for |eta_jet| < 3 - R, but the index map must hold regardless
        stored[jet_constituents[j]] = True
    new_index = np.cumsum(stored) - 1  # row in ``final`` -> row in ``particles``
    unique_ids, inverse = np.unique(pdgid[stored], return_inverse=True)
    charge = np.array([charges[int(i)] for i in unique_ids], dtype=np.float64)[inverse]
    particles = {
        "pt": pt[stored], "eta": eta[stored], "phi": phi[stored],
        "e": final[stored, COL["e"]], "m": final[stored, COL["m"]],
        "pdgid": pdgid[stored].astype(np.int32), "charge": charge,
        "vx": final[stored, COL["vx"]], "vy": final[stored, COL["vy"]], "vz": final[stored, COL["vz"]],
    }
    jet_record = jet_kinematics(jets[selected].reshape(-1, 4))
    jet_record.update(label=np.asarray(label, dtype=np.int32), parton_pdgid=np.asarray(parton_pdgid, dtype=np.int32),
                      jet_index=np.asarray(selected if jet_index is None else jet_index, dtype=np.int32))
    constituents = [new_index[jet_constituents[j]].astype(np.int64) for j in selected]
    return TruthEvent(event_id=int(event_id), particles=particles, jets=jet_record, constituents=constituents)


def charge_table(particle_data, final: np.ndarray, table: dict[int, float]) -> dict[int, float]:
    """Add the charges of the pdgids in ``final`` that ``table`` lacks (Pythia's particle data); return it."""
    for pdgid in np.unique(final[:, COL["pdgid"]].astype(np.int64)):
        if int(pdgid) not in table:
            table[int(pdgid)] = float(particle_data.charge(int(pdgid)))
    return table


# ----------------------------------------------------------------------------- labels

def hard_partons(process: str, event: pythia8mc.Event) -> dict[str, np.ndarray]:
    """What labels the jets, read off the record: ``ids`` (n,) and ``directions`` (n, k, 2) of (eta, phi).

    qg: the hard quark or gluon (k = 1); top: each top with its b and W-daughter quarks (k = 4);
    qcd: the two hard outgoing partons (k = 1). Valid at parton level as at hadron level.
    """
    if process == "qg":
        parton = _hard_parton(event)
        return {"ids": np.array([parton.id()]), "directions": np.array([[[parton.eta(), parton.phi()]]])}
    if process == "top":
        tops = [_top_decay_directions(event, i) for i in _HARD_OUTGOING]
        return {"ids": np.array([top_id for top_id, _ in tops]), "directions": np.stack([dirs for _, dirs in tops])}
    if process == "qcd":
        partons = [event[i] for i in _HARD_OUTGOING]
        return {"ids": np.array([p.id() for p in partons]), "directions": np.array([[[p.eta(), p.phi()]] for p in partons])}
    raise ConfigError(f"config.process: unknown process {process!r}; choose one of qg, top, qcd")


def label_jets(process: str, partons: dict[str, np.ndarray], jet_eta: np.ndarray, jet_phi: np.ndarray,
               match_dr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of candidate jets: (keep mask, label, parton_pdgid) with label/pdgid for kept jets only."""
    if len(jet_eta) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0)
    ids, directions = partons["ids"], partons["directions"]
    parton_eta, parton_phi = (np.ascontiguousarray(directions[:, :, k]) for k in (0, 1))  # (n, k) each, see pt_eta_phi
    dr = delta_r(parton_eta[:, :, None], parton_phi[:, :, None], jet_eta[None, None, :], jet_phi[None, None, :])  # (n, k, J)
    if process == "top":
        contained = np.all(dr < match_dr, axis=1)  # (2, J)
        jet_to_top = match_closest(dr[:, 0, :], contained)
        keep = jet_to_top >= 0
        return keep, np.ones(int(keep.sum())), ids[jet_to_top[keep]]
    jet_to_parton = match_closest(dr[:, 0, :], dr[:, 0, :] < match_dr)
    if process == "qg":
        keep = jet_to_parton >= 0
        is_quark = 1 <= abs(int(ids[0])) <= 6
        n_kept = int(keep.sum())
        return keep, np.full(n_kept, int(is_quark)), np.full(n_kept, ids[0])
    parton_pdgid = np.where(jet_to_parton >= 0, ids[np.maximum(jet_to_parton, 0)], 0)
    return np.ones(len(jet_eta), dtype=bool), np.zeros(len(jet_eta)), parton_pdgid


def match_closest(distance: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """One-to-one matching of objects (rows) to jets (columns), closest allowed pairs first.

    Returns, per jet, the matched object's row or -1.
    """
    jet_to_object = np.full(distance.shape[1], -1, dtype=np.int64)
    used = np.zeros(distance.shape[0], dtype=bool)
    rows, cols = np.nonzero(allowed)
    for k in np.argsort(distance[rows, cols], kind="stable"):
        row, col = rows[k], cols[k]
        if not used[row] and jet_to_object[col] < 0:
            used[row] = True
            jet_to_object[col] = row
    return jet_to_object


def _hard_parton(event: pythia8mc.Event) -> pythia8mc.Particle:
    """The hard outgoing quark or gluon of a Z + parton event (the other outgoing entry is the Z)."""
    partons = [event[i] for i in _HARD_OUTGOING if event[i].idAbs() != _Z_BOSON]
    if len(partons) != 1 or not (partons[0].idAbs() <= 6 or partons[0].idAbs() == _GLUON):
        found = [event[i].id() for i in _HARD_OUTGOING]
        raise RuntimeError(f"expected a Z and one quark or gluon as the hard outgoing particles, found pdgids {found}; "
                           "do generator.extra settings change the qg process?")
    return partons[0]


def _top_decay_directions(event: pythia8mc.Event, hard_index: int) -> tuple[int, np.ndarray]:
    """pdgid of the top at ``hard_index`` and the (eta, phi) of the top, its b and the W's two quarks.

    The top is taken as its last copy before the decay (after recoils from radiation); the b and
    the quarks as produced in the decays (before their own showers).
    """
    top = event[event[hard_index].iBotCopyId()]
    if top.idAbs() != _TOP:
        raise RuntimeError(f"expected a top quark at event[{hard_index}], found pdgid {top.id()}")
    daughters = [event[i] for i in top.daughterList()]
    w_bosons = [d for d in daughters if d.idAbs() == _W_BOSON]
    others = [d for d in daughters if d.idAbs() != _W_BOSON]
    if len(w_bosons) != 1 or len(others) != 1:
        raise RuntimeError(f"expected t -> W b, found decay products {[d.id() for d in daughters]}; "
                           "do generator.extra settings change top decays?")
    w_boson = event[w_bosons[0].iBotCopyId()]
    quarks = [event[i] for i in w_boson.daughterList()]
    if len(quarks) != 2 or not all(1 <= q.idAbs() <= 5 for q in quarks):
        raise RuntimeError(f"expected a hadronic W decay, found {[q.id() for q in quarks]}; "
                           "do generator.extra settings change W decays?")
    partons = (top, others[0], *quarks)
    return top.id(), np.array([[p.eta(), p.phi()] for p in partons])  # (4, 2)
