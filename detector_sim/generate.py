"""Event generation: pythia8mc events, truth jets (fastjet anti-kT), labels.

One Pythia instance generates one *shard* of events (``generate_shard``); its seed comes from
``replicas.pythia_seed(base_seed, shard)`` and its pT-hat slice is
``config.generator.pthat_slices[shard % len(slices)]``, so a shard's events depend on
(config, base seed, shard) only, whatever the worker that makes them. Event ids are
``shard * config.sharding.events_per_shard + i``.

Processes, 14 TeV by default:

- ``qg``: Z(->nu nu) + jet (``qqbar -> Z g``, ``q g -> Z q``, pure Z). Label = flavour of the
  hard outgoing parton (status -23, not the Z) matched within ``jets.match_dr`` of the jet axis:
  quark (|pdgid| 1-6) = 1, gluon = 0. Jets without a matched parton are dropped.
- ``top``: t tbar with hadronic W decays. A jet is a top jet when the top (last copy before
  its decay), its b and the two W-daughter quarks all lie within ``jets.match_dr`` (0.8) of the
  jet axis (the top-tagging-landscape selection, arXiv:1902.09914). Label 1, parton_pdgid = +-6;
  other jets are dropped.
- ``qcd``: ``HardQCD:all``. Label 0, parton_pdgid = pdgid of the closest hard outgoing parton
  within ``jets.match_dr``, else 0.

A parton (or top) labels at most one jet: candidate (parton, jet) pairs are taken closest first.

Truth jets: anti-kT with R = ``jets.radius`` (E-scheme) on all stable visible final-state
particles (everything final except neutrinos 12, 14, 16; muons included), at any rapidity. The
``jets.max_jets_per_event`` leading jets are candidates; those with ``pt_min_gev <= pt <=
pt_max_gev`` and |eta| < ``abs_eta_max`` that pass the labelling are kept. ``jet_index`` is the
jet's pT rank among all truth jets of the event.

Conventions: energies, momenta and masses in GeV; production vertices in mm (Pythia's unit; no
beam spot, the hard interaction is at the origin); eta is the pseudorapidity, phi in (-pi, pi].
Pythia's default decay table is used (K0S and Lambda decay, so their products carry displaced
vertices). Everything here is silent: Pythia and FastJet banners and listings are switched off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import fastjet
import fastjet._ext
import fastjet._swig
import numpy as np
import pythia8mc

from detector_sim.config import PROCESSES, ConfigError, SimConfig, validate
from gnnjets.base.kinematics import delta_r, wrap_phi
from detector_sim.replicas import pythia_seed

#: particles kept in ``TruthEvent.particles``: the calorimeter ends at |eta| = 3, with margin
PARTICLE_ABS_ETA_MAX = 4.0
#: invisible stable particles, excluded from jets and from ``TruthEvent.particles``
NEUTRINO_PDGIDS = (12, 14, 16)
#: ``pythia.next()`` failures in a row after which generation is given up (Pythia fails rarely,
#: ~1e-4 per event; a long run of failures means broken settings, not bad luck)
MAX_CONSECUTIVE_FAILURES = 100
#: Pythia's Random:seed range
_PYTHIA_SEED_RANGE = (1, 900_000_000)
#: in Pythia's event record, entries 5 and 6 are the two outgoing partons of the 2 -> 2 hard process
_HARD_OUTGOING = (5, 6)
_GLUON = 21
_Z_BOSON = 23
_W_BOSON = 24
_TOP = 6

#: Pythia settings that define each process
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "qg": (
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",  # pure Z, no photon: the boson must be invisible
        "23:onMode = off",
        "23:onIfAny = 12 14 16",  # Z -> nu nu only, so the jet recoils against nothing visible
    ),
    "top": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",  # hadronic W decays: fully hadronic top jets
    ),
    "qcd": ("HardQCD:all = on",),
}

# Unbound methods: one attribute lookup per particle saved in the hot loop of _final_state
_PARTICLE = pythia8mc.Particle
_IS_FINAL = _PARTICLE.isFinal
_PX, _PY, _PZ, _E, _M = _PARTICLE.px, _PARTICLE.py, _PARTICLE.pz, _PARTICLE.e, _PARTICLE.m
_X_PROD, _Y_PROD, _Z_PROD = _PARTICLE.xProd, _PARTICLE.yProd, _PARTICLE.zProd
_ID = _PARTICLE.id
# columns of the array returned by _final_state
_COLUMNS = ("px", "py", "pz", "e", "m", "vx", "vy", "vz", "pdgid")
_COL = {name: i for i, name in enumerate(_COLUMNS)}


@dataclass
class TruthEvent:
    """One generated event after the jet selection.

    particles: dict of 1-d numpy arrays, one entry per stable visible particle (neutrinos
        excluded) with |eta| < 4: ``pt, eta, phi, e, m`` [GeV, rad] (float64), ``pdgid`` (int32),
        ``charge`` (float64, in units of e), ``vx, vy, vz`` production vertex [mm] (float64).
    jets: dict of 1-d numpy arrays, one entry per selected truth jet (pT ordered):
        ``pt, eta, phi, e, m`` (float64), ``label`` (int32), ``parton_pdgid`` (int32),
        ``jet_index`` (int32, index among the event's truth jets before selection).
    constituents: list (one per selected jet) of int64 index arrays into ``particles``.
    """

    event_id: int
    particles: dict[str, np.ndarray]
    jets: dict[str, np.ndarray]
    constituents: list[np.ndarray]


def make_pythia(config: SimConfig, pthat_min: float, pthat_max: float, seed: int) -> pythia8mc.Pythia:
    """A silent, initialised Pythia for ``config.process`` in one pT-hat slice.

    Settings are applied in this order: tune, beams, process, pT-hat slice, MPI, seed, then
    ``config.generator.extra`` (last, so that it can override anything).

    Args:
        config: the simulation config (``process`` and ``generator`` are used).
        pthat_min, pthat_max: the hard process's pT-hat range [GeV], ``0 <= min < max``.
        seed: Pythia's ``Random:seed``, 1 ... 900,000,000 (see ``replicas.pythia_seed``).

    Raises:
        ConfigError: unknown process, bad pT-hat range, or a setting Pythia does not accept.
        ValueError: seed out of range.
        RuntimeError: Pythia's initialisation fails.
    """
    if config.process not in PROCESS_SETTINGS:
        raise ConfigError(f"config.process: unknown process {config.process!r}; choose one of {', '.join(PROCESSES)}")
    if not 0 <= pthat_min < pthat_max:
        raise ConfigError(f"pT-hat slice must satisfy 0 <= min < max, not [{pthat_min}, {pthat_max}]")
    low, high = _PYTHIA_SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not low <= seed <= high:
        raise ValueError(f"seed must be an integer in [{low}, {high}], not {seed!r}")
    generator = config.generator
    settings = [
        # silence first: banner (constructor argument), init listings, event counter, error echo
        "Print:quiet = on",
        "Next:numberCount = 0",
        f"Tune:pp = {generator.tune_pp}",  # before anything a tune could reset
        f"Beams:eCM = {generator.ecm_gev:.6f}",
        *PROCESS_SETTINGS[config.process],
        f"PhaseSpace:pTHatMin = {pthat_min:.6f}",
        f"PhaseSpace:pTHatMax = {pthat_max:.6f}",
        f"PartonLevel:MPI = {'on' if generator.mpi else 'off'}",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
    ]
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line, False):
            raise RuntimeError(f"Pythia rejected its own setting {line!r}; is pythia8mc too old/new?")
    for i, line in enumerate(generator.extra):
        if not pythia.readString(line, False):
            raise ConfigError(f"config.generator.extra[{i}]: Pythia does not accept {line!r}; "
                              "check the setting name (e.g. 'PartonLevel:ISR = off')")
    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for process {config.process!r} with "
                           f"pT-hat [{pthat_min}, {pthat_max}] and extra settings {generator.extra}")
    return pythia


def generate_shard(config: SimConfig, base_seed: int, shard: int, n_events: int) -> Iterator[TruthEvent]:
    """Generate the first ``n_events`` events of shard ``shard``, one ``TruthEvent`` each.

    Every generated event is yielded, also those without a selected jet (empty ``jets`` arrays
    and ``constituents``), so that the caller can count the selection efficiency. Failed
    ``pythia.next()`` calls are retried and consume no event id.

    Raises:
        ConfigError: ``config`` fails ``config.validate``.
        ValueError: negative ``shard`` / ``base_seed``, or ``n_events`` outside
            [0, config.sharding.events_per_shard] (more would reuse the next shard's event ids).
        RuntimeError: Pythia fails ``MAX_CONSECUTIVE_FAILURES`` times in a row.
    """
    validate(config)
    per_shard = config.sharding.events_per_shard
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or not 0 <= n_events <= per_shard:
        raise ValueError(f"n_events must be an integer in [0, events_per_shard={per_shard}], not {n_events!r}")
    seed = pythia_seed(base_seed, shard)  # checks base_seed and shard
    slices = config.generator.pthat_slices
    pthat_min, pthat_max = slices[shard % len(slices)]
    pythia = make_pythia(config, pthat_min, pthat_max, seed)
    definition = jet_definition(config.jets.radius)
    for i in range(n_events):
        failures = 0
        while not pythia.next():
            failures += 1
            if failures >= MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(f"pythia.next() failed {failures} times in a row in shard {shard} "
                                   f"(process {config.process!r}, pT-hat [{pthat_min}, {pthat_max}])")
        yield _truth_event(pythia, config, definition, shard * per_shard + i)


def jet_definition(radius: float) -> fastjet.JetDefinition:
    # The FastJet banner goes to stdout at the first clustering unless its stream is unset.
    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    return fastjet.JetDefinition(fastjet.antikt_algorithm, float(radius))


def _final_state(event: pythia8mc.Event) -> np.ndarray:
    """All final-state particles of ``event`` as an (N, 9) float64 array, columns ``_COLUMNS``.

    This is the only per-particle Python loop: one pass over the record (``particles()`` hands
    it over in one call, faster than indexing the event), nine accessor calls per final particle
    (charge is looked up per distinct pdgid afterwards).
    """
    final = [particle for particle in event.particles() if _IS_FINAL(particle)]
    rows = [(_PX(p), _PY(p), _PZ(p), _E(p), _M(p), _X_PROD(p), _Y_PROD(p), _Z_PROD(p), _ID(p)) for p in final]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(_COLUMNS))  # (N, 9)


def _pt_eta_phi(px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity (+-inf along the beam) and phi in (-pi, pi]."""
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / pt), np.copysign(np.inf, pz))
    return pt, eta, wrap_phi(np.arctan2(py, px))


def cluster_antikt(momenta: np.ndarray, jet_definition, pt_min: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Inclusive jets with pt >= ``pt_min``, pT ordered, and their constituents.

    Args:
        momenta: (N, 4) float64 array of px, py, pz, e [GeV].
    Returns:
        jets: (J, 4) px, py, pz, e, highest pT first; constituents: J int64 arrays of row
        indices into ``momenta``, sorted.
    """
    # fastjet's array interface (the engine behind its awkward API) clusters straight from numpy
    # arrays: ~3x faster than building one PseudoJet per particle from Python. ``_ext`` is not
    # public API, so a test checks it against the PseudoJet interface.
    columns = [np.ascontiguousarray(momenta[:, k]) for k in range(4)]
    result = fastjet._ext.interfacemulti(*columns, np.array([0], dtype=np.int32),
                                         np.array([len(momenta)], dtype=np.int32), jet_definition)
    jet_px, jet_py, jet_pz, jet_e, _ = result.to_numpy(pt_min)
    offsets, flat_index, _ = result.to_numpy_with_constituents(pt_min)
    jets = np.stack([jet_px, jet_py, jet_pz, jet_e], axis=1).reshape(-1, 4)  # (J, 4), fastjet's order
    order = np.argsort(-np.hypot(jets[:, 0], jets[:, 1]), kind="stable")
    constituents = [np.sort(flat_index[offsets[j]:offsets[j + 1]]).astype(np.int64) for j in order]
    return jets[order], constituents


def _truth_event(pythia: pythia8mc.Pythia, config: SimConfig, jet_definition, event_id: int) -> TruthEvent:
    """Turn Pythia's current event into a ``TruthEvent`` (particles, selected jets, labels)."""
    jets_config = config.jets
    final = _final_state(pythia.event)
    pdgid = final[:, _COL["pdgid"]].astype(np.int64)
    visible = ~np.isin(np.abs(pdgid), NEUTRINO_PDGIDS)
    final, pdgid = final[visible], pdgid[visible]
    momenta = final[:, [_COL["px"], _COL["py"], _COL["pz"], _COL["e"]]]  # (N, 4)

    jets, jet_constituents = cluster_antikt(momenta, jet_definition, jets_config.pt_min_gev)
    n_candidates = min(len(jets), jets_config.max_jets_per_event)
    jet_pt, jet_eta, jet_phi = _pt_eta_phi(jets[:n_candidates, 0], jets[:n_candidates, 1], jets[:n_candidates, 2])
    in_window = ((jet_pt >= jets_config.pt_min_gev) & (jet_pt <= jets_config.pt_max_gev)
                 & (np.abs(jet_eta) < jets_config.abs_eta_max))
    candidates = np.flatnonzero(in_window)  # pT ranks of the jets that pass the kinematic selection
    keep, label, parton_pdgid = _label_jets(config.process, pythia.event, jet_eta[candidates],
                                            jet_phi[candidates], jets_config.match_dr)
    selected = candidates[keep]

    pt, eta, phi = _pt_eta_phi(momenta[:, 0], momenta[:, 1], momenta[:, 2])
    stored = np.abs(eta) < PARTICLE_ABS_ETA_MAX
    for j in selected:  # cannot trigger for |eta_jet| < 3 - R, but the index map must hold regardless
        stored[jet_constituents[j]] = True
    new_index = np.cumsum(stored) - 1  # row in ``final`` -> row in ``particles``

    particle_data = pythia.particleData
    unique_ids, inverse = np.unique(pdgid[stored], return_inverse=True)
    charge = np.array([particle_data.charge(int(i)) for i in unique_ids], dtype=np.float64)[inverse]
    particles = {
        "pt": pt[stored], "eta": eta[stored], "phi": phi[stored],
        "e": final[stored, _COL["e"]], "m": final[stored, _COL["m"]],
        "pdgid": pdgid[stored].astype(np.int32), "charge": charge,
        "vx": final[stored, _COL["vx"]], "vy": final[stored, _COL["vy"]], "vz": final[stored, _COL["vz"]],
    }
    jet_e = jets[selected, 3]
    jet_p2 = np.sum(jets[selected, :3] ** 2, axis=1)
    jet_record = {
        "pt": jet_pt[selected], "eta": jet_eta[selected], "phi": jet_phi[selected], "e": jet_e,
        "m": np.sqrt(np.maximum(jet_e**2 - jet_p2, 0.0)),
        "label": label.astype(np.int32), "parton_pdgid": parton_pdgid.astype(np.int32),
        "jet_index": selected.astype(np.int32),
    }
    constituents = [new_index[jet_constituents[j]].astype(np.int64) for j in selected]
    return TruthEvent(event_id=int(event_id), particles=particles, jets=jet_record, constituents=constituents)


def _label_jets(process: str, event: pythia8mc.Event, jet_eta: np.ndarray, jet_phi: np.ndarray,
                match_dr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels of candidate jets: (keep mask, label, parton_pdgid) with label/pdgid for kept jets only."""
    if len(jet_eta) == 0:  # most events of a narrow pT window: skip the event-record look-ups
        return np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0)
    if process == "qg":
        parton = _hard_parton(event)
        directions = np.array([[parton.eta(), parton.phi()]])
        dr = delta_r(directions[:, :1], directions[:, 1:], jet_eta[None, :], jet_phi[None, :])  # (1, J)
        jet_to_parton = _match_closest(dr, dr < match_dr)
        keep = jet_to_parton >= 0
        parton_id = parton.id()
        is_quark = 1 <= abs(parton_id) <= 6
        n_kept = int(keep.sum())
        return keep, np.full(n_kept, int(is_quark)), np.full(n_kept, parton_id)
    if process == "top":
        tops = [_top_decay_directions(event, i) for i in _HARD_OUTGOING]
        ids = np.array([top_id for top_id, _ in tops])
        directions = np.stack([dirs for _, dirs in tops])  # (2 tops, 4 partons: t b q q, 2: eta phi)
        dr = delta_r(directions[:, :, None, 0], directions[:, :, None, 1],
                     jet_eta[None, None, :], jet_phi[None, None, :])  # (2, 4, J)
        contained = np.all(dr < match_dr, axis=1)  # (2, J)
        jet_to_top = _match_closest(dr[:, 0, :], contained)
        keep = jet_to_top >= 0
        return keep, np.ones(int(keep.sum())), ids[jet_to_top[keep]]
    if process == "qcd":
        partons = [event[i] for i in _HARD_OUTGOING]
        ids = np.array([p.id() for p in partons])
        directions = np.array([[p.eta(), p.phi()] for p in partons])
        dr = delta_r(directions[:, :1], directions[:, 1:], jet_eta[None, :], jet_phi[None, :])  # (2, J)
        jet_to_parton = _match_closest(dr, dr < match_dr)
        parton_pdgid = np.where(jet_to_parton >= 0, ids[np.maximum(jet_to_parton, 0)], 0)
        return np.ones(len(jet_eta), dtype=bool), np.zeros(len(jet_eta)), parton_pdgid
    raise ConfigError(f"config.process: unknown process {process!r}; choose one of {', '.join(PROCESSES)}")


def _match_closest(distance: np.ndarray, allowed: np.ndarray) -> np.ndarray:
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
