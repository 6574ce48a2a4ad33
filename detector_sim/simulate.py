"""From a truth event to detector replicas of its jets, and from shards of events to file batches.

One replica of one event: showers of every particle landing in the region of interest (the
eta-phi squares of half-width R + ``roi_margin`` around the truth jets), cell noise there,
topoclustering, anti-kT on positive-energy topoclusters, tracks. A truth jet is kept only when
every replica has a reco jet within dR < R/2 (files always hold complete replica groups).

All draws of replica ``r`` of event ``e`` come from ``replica_generator(seed, e, r)``, in a fixed
order (showers, noise, tracks): identical triples give bit-identical replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from detector_sim import calorimeter, geometry as geo
from detector_sim.clustering import cluster_kinematics, topoclusters
from detector_sim.config import SimConfig
from detector_sim.generate import TruthEvent, cluster_antikt, generate_shard, jet_definition
from detector_sim.replicas import replica_generator
from detector_sim.tracker import reconstruct_tracks
from gnnjets.io import schema
from gnnjets.base.kinematics import delta_phi, delta_r

#: extra eta-phi distance beyond the region of interest within which a particle's showers are simulated
SHOWER_REACH = 0.3

_CELL_COLUMNS = ("cell_e", "cell_eta", "cell_phi", "cell_layer", "cell_sigma", "cell_topo_idx")


def antikt(pt, eta, phi, e, definition, pt_min: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Anti-kT jets of (massless) inputs: list of ([pt, eta, phi, e, m], constituent indices), pT ordered."""
    momenta = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=1).reshape(-1, 4)  # (N, 4)
    if not len(momenta):
        return []
    jets, constituents = cluster_antikt(momenta, definition, pt_min)
    px, py, pz, energy = jets.T
    jet_pt = np.hypot(px, py)
    jet_eta = np.arcsinh(pz / jet_pt)
    jet_phi = np.arctan2(py, px)
    jet_m = np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))
    kinematics = np.stack([jet_pt, jet_eta, jet_phi, energy, jet_m], axis=1)  # (J, 5)
    return list(zip(kinematics, constituents))


@dataclass
class ShardStats:
    """Bookkeeping of one shard (added up over the file and stored in its provenance)."""

    events: int = 0
    truth_jets: int = 0  # selected truth jets
    jets_written: int = 0  # truth jets whose every replica was reconstructed
    jets_dropped_unmatched: int = 0  # some replica had no reco jet within dR < R/2

    def add(self, other: ShardStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Columns:
    """Growing per-jet-replica columns; jagged ones as flat pieces plus counts."""

    scalars: dict = field(default_factory=lambda: {f.name: [] for f in schema.SCALAR_FIELDS})
    pieces: dict = field(default_factory=lambda: {f.name: [] for f in schema.ALL_FIELDS if schema.collection_of(f.name)})
    counts: dict = field(default_factory=lambda: {prefix: [] for prefix in schema.COLLECTIONS})

    def append(self, row: dict) -> None:
        for name in self.scalars:
            self.scalars[name].append(row[name])
        for prefix, (_, fields) in schema.COLLECTIONS.items():
            self.counts[prefix].append(len(row[fields[0].name]))
            for f in fields:
                self.pieces[f.name].append(row[f.name])

    def to_batch(self) -> dict:
        batch = {name: np.asarray(values, dtype=schema.dtype_of(name)) for name, values in self.scalars.items()}
        for prefix, (_, fields) in schema.COLLECTIONS.items():
            counts = np.asarray(self.counts[prefix], dtype=np.int64)
            for f in fields:
                pieces = self.pieces[f.name]
                flat = np.concatenate(pieces).astype(f.dtype) if pieces else np.zeros(0, f.dtype)
                batch[f.name] = ak.unflatten(flat, counts)
        return batch


def _reco_replica(event: TruthEvent, config: SimConfig, rng: np.random.Generator, window, impacts, select, definition):
    """One replica of the event: topoclusters, their anti-kT jets and the tracks."""
    spots, _ = calorimeter.shower_spots(event.particles, rng, select=select, impacts=impacts)
    energy, _ = calorimeter.digitise(spots, window, rng)
    cluster = topoclusters(window.layer, window.ieta, window.iphi, energy, window.sigma)
    kin = cluster_kinematics(cluster, energy, window.eta, window.phi)
    positive = np.flatnonzero(kin["e"] > 0)
    jets = antikt(kin["pt"][positive], kin["eta"][positive], kin["phi"][positive], kin["e"][positive],
                  definition, config.detector.reco_jet_pt_min_gev)
    # constituent indices refer to `positive`; map back to cluster ids
    jets = [(kinematics, positive[members]) for kinematics, members in jets]
    tracks = reconstruct_tracks(event.particles, rng, efficiency_plateau=config.detector.tracker_efficiency)
    return energy, cluster, kin, jets, tracks


def _jet_row(event, j, replica, base_seed, reco, window, energy, cluster, kin, tracks, radius) -> dict:
    kinematics, members = reco
    jets = event.jets
    # topoclusters of the jet renumbered 0..n-1 by decreasing energy
    members = members[np.argsort(-kin["e"][members], kind="stable")]
    topo_of_cluster = np.full(kin["e"].size, -1, dtype=np.int64)
    topo_of_cluster[members] = np.arange(members.size)
    in_jet = np.flatnonzero((cluster >= 0) & (topo_of_cluster[np.maximum(cluster, 0)] >= 0))
    track_dr = delta_r(tracks["eta"], tracks["phi"], kinematics[1], kinematics[2])
    t = np.flatnonzero(track_dr < radius)
    c = event.constituents[j]
    p = event.particles
    row = dict(
        event_id=event.event_id, jet_index=jets["jet_index"][j], replica=replica, sim_seed=base_seed,
        truth_pt=jets["pt"][j], truth_eta=jets["eta"][j], truth_phi=jets["phi"][j], truth_e=jets["e"][j],
        truth_m=jets["m"][j], label=jets["label"][j], parton_pdgid=jets["parton_pdgid"][j],
        jet_pt=kinematics[0], jet_eta=kinematics[1], jet_phi=kinematics[2], jet_e=kinematics[3], jet_m=kinematics[4],
        cell_e=energy[in_jet], cell_eta=window.eta[in_jet], cell_phi=window.phi[in_jet], cell_layer=window.layer[in_jet],
        cell_sigma=window.sigma[in_jet], cell_topo_idx=topo_of_cluster[cluster[in_jet]],
        track_pt=tracks["pt"][t], track_eta=tracks["eta"][t], track_phi=tracks["phi"][t],
        track_charge=tracks["charge"][t], track_d0=tracks["d0"][t], track_z0=tracks["z0"][t],
        particle_pt=p["pt"][c], particle_eta=p["eta"][c], particle_phi=p["phi"][c], particle_e=p["e"][c],
        particle_pdgid=p["pdgid"][c],
    )
    for layer in range(geo.N_LAYERS):
        row[f"track_eta_layer{layer}"] = tracks["eta_layer"][t, layer]
        row[f"track_phi_layer{layer}"] = tracks["phi_layer"][t, layer]
    return row


def simulate_event(event: TruthEvent, config: SimConfig, base_seed: int, n_replicas: int) -> tuple[list[list[dict]], ShardStats]:
    """Replicas of the selected jets of one event: a list (per kept jet) of R rows in schema names."""
    stats = ShardStats(events=1, truth_jets=len(event.constituents))
    if stats.truth_jets == 0:
        return [], stats
    radius = config.jets.radius
    half_width = radius + config.detector.roi_margin
    jets = event.jets
    window = calorimeter.window_cells(jets["eta"], jets["phi"], half_width, config.detector.noise_scale)
    impacts = calorimeter.impact_points(event.particles)
    eta_l, phi_l, _ = impacts
    # a particle is showered when its impact in some layer lies within reach of some jet's window
    d_eta = np.abs(eta_l[:, :, None] - jets["eta"][None, None, :])
    d_phi = np.abs(delta_phi(phi_l[:, :, None], jets["phi"][None, None, :]))
    reach = half_width + SHOWER_REACH
    select = ((d_eta < reach) & (d_phi < reach)).any(axis=(1, 2))

    definition = jet_definition(radius)
    rows_per_jet = [[] for _ in range(stats.truth_jets)]
    for replica in range(n_replicas):
        rng = replica_generator(base_seed, event.event_id, replica)
        energy, cluster, kin, reco_jets, tracks = _reco_replica(event, config, rng, window, impacts, select, definition)
        if not reco_jets:
            continue
        reco_eta = np.array([k[1] for k, _ in reco_jets])
        reco_phi = np.array([k[2] for k, _ in reco_jets])
        for j in range(stats.truth_jets):
            dr = delta_r(reco_eta, reco_phi, jets["eta"][j], jets["phi"][j])
            best = int(np.argmin(dr))
            if dr[best] < radius / 2:
                rows_per_jet[j].append(_jet_row(event, j, replica, base_seed, reco_jets[best], window,
                                                energy, cluster, kin, tracks, radius))
    complete = [rows for rows in rows_per_jet if len(rows) == n_replicas]
    stats.jets_written = len(complete)
    stats.jets_dropped_unmatched = stats.truth_jets - len(complete)
    return complete, stats


def simulate_events(events, config: SimConfig, base_seed: int, n_replicas: int) -> tuple[dict, ShardStats]:
    """Replicas of the jets of ``events`` as one schema batch (replicas of one jet adjacent)."""
    columns, stats = _Columns(), ShardStats()
    for event in events:
        groups, event_stats = simulate_event(event, config, base_seed, n_replicas)
        stats.add(event_stats)
        for rows in groups:
            for row in rows:
                columns.append(row)
    return columns.to_batch(), stats


def simulate_shard(config: SimConfig, base_seed: int, shard: int, n_events: int, n_replicas: int) -> tuple[dict, ShardStats]:
    """Generate ``n_events`` events of shard ``shard`` with Pythia and simulate their replicas."""
    return simulate_events(generate_shard(config, base_seed, shard, n_events), config, base_seed, n_replicas)


def shard_plan(n_events: int, events_per_shard: int) -> list[tuple[int, int]]:
    """(shard index, events in it) covering ``n_events``; fixed by the config, not by the worker count."""
    full, rest = divmod(n_events, events_per_shard)
    return [(shard, events_per_shard) for shard in range(full)] + ([(full, rest)] if rest else [])
