"""``hadronization`` replicas: one hard process and parton shower, hadronised anew for every replica.

The replica-SSL follow-up (arXiv:2503.11632) makes positive pairs share the parton shower, where
quark and gluon jets differ, but not the exact hadrons. Pythia stops each event before
hadronisation (``HadronLevel:all = off``); the parton-level record is saved and, for replica
``r``, copied back and hadronised (with decays) by ``forceHadronLevel()`` after re-seeding
Pythia's generator with ``replicas.hadronization_seed(seed, event, r)`` (Pythia's "repeated
hadronization", examples main15/main361). The generator's state is saved before and restored
after, so the hard events of a shard do not depend on the number of replicas. A hadronisation
that fails is retried with the seeds of attempts 1, 2, ...; an event whose replica fails
``MAX_ATTEMPTS`` times yields no jets.

Jets: the anchor of a jet is a *parton-level* anti-kT jet (the final partons, leptons and photons
before hadronisation, neutrinos excluded), selected by the pT and |eta| window of ``config.jets``
and labelled by the hard partons as at hadron level (labels stay those of the hard parton). Each
replica clusters its own hadron-level truth jets (down to half the window's lower edge) and
matches them one to one, closest first, to the anchors within dR < R/2; an anchor without a
match in every replica is dropped (``jets_dropped_hadronization``). The replicas' truth
(``truth_*``, ``particle_*``) is each replica's own jet; ``jet_index`` is the anchor's pT rank among
the parton-level jets.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pythia8mc

from detector_sim.config import SimConfig
from detector_sim.generate import CHUNK_EVENTS, check_shard_request, make_pythia, next_event, shard_settings
from detector_sim.replicas import hadronization_seed
from detector_sim.truth import (
    TruthEvent, build_truth_event, charge_table, cluster_antikt_many, final_state, hard_partons, jet_definition,
    kinematic_candidates, label_jets, match_closest, momenta_of, pt_eta_phi, visible,
)
from gnnjets.base.kinematics import delta_r

#: hadronisation attempts per replica before the event is given up
MAX_ATTEMPTS = 5
#: hadron-level jets down to this fraction of ``jets.pt_min_gev`` may match an anchor
MATCH_PT_FRACTION = 0.5


def hadronize(pythia: pythia8mc.Pythia, parton_level: pythia8mc.Event, base_seed: int, event_id: int,
              replica: int) -> bool:
    """Hadronise a copy of ``parton_level`` into ``pythia.event`` with the replica's seed; False if every attempt fails."""
    for attempt in range(MAX_ATTEMPTS):
        pythia.rndm.init(hadronization_seed(base_seed, event_id, replica, attempt))
        pythia.event = parton_level  # assignment copies the record
        if pythia.forceHadronLevel():
            return True
    return False


def generate_hadronization_replicas(config: SimConfig, base_seed: int, shard: int, n_events: int,
                                    n_replicas: int) -> Iterator[list[TruthEvent]]:
    """Per event of the shard, the ``n_replicas`` TruthEvents of its hadronisations (module docstring)."""
    seed = check_shard_request(config, base_seed, shard, n_events)
    pthat_min, pthat_max, subprocesses = shard_settings(config, shard)
    pythia = make_pythia(config, pthat_min, pthat_max, seed, subprocesses, hadron_level=False)
    definition = jet_definition(config.jets.radius)
    charges: dict[int, float] = {}
    chunk = []
    for i in range(n_events):
        event_id = shard * config.sharding.events_per_shard + i
        next_event(pythia, config, shard)
        partons = hard_partons(config.process, pythia.event)
        parton_final = visible(final_state(pythia.event))
        parton_level = pythia8mc.Event(pythia.event)
        state = pythia.rndm.getState()
        hadron_finals = []
        for replica in range(n_replicas):
            if not hadronize(pythia, parton_level, base_seed, event_id, replica):
                hadron_finals = None
                break
            final = visible(final_state(pythia.event))
            charge_table(pythia.particleData, final, charges)
            hadron_finals.append(final)
        pythia.rndm.setState(state)
        chunk.append((event_id, partons, parton_final, hadron_finals))
        if len(chunk) == CHUNK_EVENTS or i == n_events - 1:
            yield from _replica_truth(chunk, config, definition, charges, n_replicas)
            chunk = []


def _replica_truth(chunk, config: SimConfig, definition, charges, n_replicas: int) -> Iterator[list[TruthEvent]]:
    jets_config = config.jets
    partonic = cluster_antikt_many([momenta_of(final) for _, _, final, _ in chunk], definition, jets_config.pt_min_gev)
    hadronic = cluster_antikt_many([momenta_of(final) for *_, finals in chunk for final in (finals or [])],
                                   definition, MATCH_PT_FRACTION * jets_config.pt_min_gev)
    next_hadronic = 0
    for (event_id, partons, _, finals), (anchors, _) in zip(chunk, partonic):
        if finals is None:  # hadronisation failed: an event without jets
            empty = build_truth_event(event_id, np.zeros((0, 9)), charges, np.zeros((0, 4)), [], np.zeros(0, np.int64),
                                      np.zeros(0), np.zeros(0))
            yield [empty] * n_replicas
            continue
        candidates = kinematic_candidates(anchors, jets_config)
        _, anchor_eta, anchor_phi = pt_eta_phi(*anchors[candidates, :3].T)
        keep, label, parton_pdgid = label_jets(config.process, partons, anchor_eta, anchor_phi, jets_config.match_dr)
        selected = candidates[keep]
        anchor_eta, anchor_phi = anchor_eta[keep], anchor_phi[keep]
        replica_jets = hadronic[next_hadronic:next_hadronic + n_replicas]
        next_hadronic += n_replicas
        # per replica, the hadron-level jet of each anchor (-1: none)
        matched = np.stack([_match_anchors(anchor_eta, anchor_phi, jets, jets_config.radius / 2)
                            for jets, _ in replica_jets]) if len(selected) else np.zeros((n_replicas, 0), np.int64)
        complete = np.all(matched >= 0, axis=0)
        views = [build_truth_event(event_id, final, charges, jets, constituents, matched[r, complete], label[complete],
                                   parton_pdgid[complete], jet_index=selected[complete])
                 for r, (final, (jets, constituents)) in enumerate(zip(finals, replica_jets))]
        for view in views:
            view.jets_dropped = int(np.sum(~complete))
        yield views


def _match_anchors(anchor_eta, anchor_phi, jets: np.ndarray, max_dr: float) -> np.ndarray:
    """Per anchor, the index of its hadron-level jet (closest pairs first, one to one), -1 if none within ``max_dr``."""
    if len(jets) == 0:
        return np.full(len(anchor_eta), -1, dtype=np.int64)
    _, eta, phi = pt_eta_phi(*jets[:, :3].T)
    distance = delta_r(eta[:, None], phi[:, None], anchor_eta[None, :], anchor_phi[None, :])  # (jets, anchors)
    return match_closest(distance, distance < max_dr)
