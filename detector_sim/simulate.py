"""From the truth of an event's replicas to jet-replica rows, and from shards of events to file batches.

One replica of one event (:mod:`detector_sim.reconstruct`): showers of every particle landing in
the region of interest, cell noise there, topoclusters split at local maxima, tracks; then
anti-kT on the positive-energy clusters (FastJet's public interface, all replicas of a chunk of
events in one call). A truth jet is kept only when every replica has a reco jet within dR < R/2
of that replica's truth jet (files always hold complete replica groups).

All detector draws of replica ``r`` of event ``e`` come from ``replica_generator(seed, e, r)``
in a fixed order (showers, noise, tracks); pile-up and augmentations have their own streams
(:mod:`detector_sim.replicas`): identical triples give bit-identical replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from detector_sim import geometry as geo
from detector_sim.config import SimConfig
from detector_sim.generate import generate_replicas
from detector_sim.pileup import PileupPool, make_pool, overlay
from detector_sim.reconstruct import Response, respond, view_geometry
from detector_sim.replicas import pileup_generator, replica_generator
from detector_sim.truth import TruthEvent, cluster_antikt_many, jet_definition, jet_kinematics
from gnnjets.base.kinematics import delta_r
from gnnjets.io import schema

#: events whose replicas are clustered into reco jets in one FastJet call
CHUNK_EVENTS = 64


def _antikt_many(inputs, definition, pt_min: float) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Anti-kT jets of many sets of massless (pt, eta, phi, e) inputs in one call: per set, a
    pT-ordered list of ([pt, eta, phi, e, m], constituent indices)."""
    momenta = [np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=1).reshape(-1, 4)
               for pt, eta, phi, e in inputs]  # (N, 4) each
    out = []
    for jets, constituents in cluster_antikt_many(momenta, definition, pt_min):
        kin = jet_kinematics(jets)
        kinematics = np.stack([kin[k] for k in ("pt", "eta", "phi", "e", "m")], axis=1).reshape(-1, 5)  # (J, 5)
        out.append(list(zip(kinematics, constituents)))
    return out


@dataclass
class ShardStats:
    """Bookkeeping of one shard (added up over the file and stored in its provenance)."""

    events: int = 0
    truth_jets: int = 0  # selected truth jets
    jets_written: int = 0  # truth jets whose every replica was reconstructed
    jets_dropped_unmatched: int = 0  # some replica had no reco jet within dR < R/2
    jets_dropped_hadronization: int = 0  # hadronization mode: some replica had no truth jet at the parton-level jet

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


def _jet_row(view: TruthEvent, j: int, replica: int, base_seed: int, reco, response: Response, radius: float) -> dict:
    kinematics, members = reco
    jets, clusters, window = view.jets, response.clusters, response.window
    # topoclusters of the jet renumbered 0..n-1 by decreasing energy
    members = members[np.argsort(-clusters.e[members], kind="stable")]
    topo_of_cluster = np.full(clusters.n_clusters, -1, dtype=np.int64)
    topo_of_cluster[members] = np.arange(members.size)
    # a cell belongs to the jet when one of its clusters does; it is listed under its primary cluster
    # if that one is in the jet, else under its secondary, with the energy its jet clusters hold
    # (all of it, unless it is shared with a cluster outside the jet): the cells add up to jet_e
    first = topo_of_cluster[clusters.primary]
    second = np.where(clusters.secondary >= 0, topo_of_cluster[np.maximum(clusters.secondary, 0)], -1)
    in_jet = np.flatnonzero((first >= 0) | (second >= 0))
    share = np.where(first[in_jet] >= 0, clusters.weight[in_jet], 0.0) \
        + np.where(second[in_jet] >= 0, 1.0 - clusters.weight[in_jet], 0.0)
    cells = response.cells[in_jet]
    tracks = response.tracks
    t = np.flatnonzero(delta_r(tracks["eta"], tracks["phi"], kinematics[1], kinematics[2]) < radius)
    c = view.constituents[j]
    p = view.particles
    row = dict(
        event_id=view.event_id, jet_index=jets["jet_index"][j], replica=replica, sim_seed=base_seed,
        truth_pt=jets["pt"][j], truth_eta=jets["eta"][j], truth_phi=jets["phi"][j], truth_e=jets["e"][j],
        truth_m=jets["m"][j], label=jets["label"][j], parton_pdgid=jets["parton_pdgid"][j],
        jet_pt=kinematics[0], jet_eta=kinematics[1], jet_phi=kinematics[2], jet_e=kinematics[3], jet_m=kinematics[4],
        cell_e=response.energy[in_jet] * share, cell_eta=window.eta[cells], cell_phi=window.phi[cells],
        cell_layer=window.layer[cells], cell_sigma=window.sigma[cells],
        cell_topo_idx=np.where(first[in_jet] >= 0, first[in_jet], second[in_jet]),
        track_pt=tracks["pt"][t], track_eta=tracks["eta"][t], track_phi=tracks["phi"][t],
        track_charge=tracks["charge"][t], track_d0=tracks["d0"][t], track_z0=tracks["z0"][t],
        particle_pt=p["pt"][c], particle_eta=p["eta"][c], particle_phi=p["phi"][c], particle_e=p["e"][c],
        particle_pdgid=p["pdgid"][c],
    )
    for layer in range(geo.N_LAYERS):
        row[f"track_eta_layer{layer}"] = tracks["eta_layer"][t, layer]
        row[f"track_phi_layer{layer}"] = tracks["phi_layer"][t, layer]
    return row


def _as_views(item, n_replicas: int) -> list[TruthEvent]:
    if isinstance(item, TruthEvent):
        return [item] * n_replicas
    if len(item) != n_replicas:
        raise ValueError(f"an event comes with {len(item)} replica views, not n_replicas={n_replicas}")
    return list(item)


def _simulate_chunk(chunk: list[list[TruthEvent]], config: SimConfig, base_seed: int, pool: PileupPool | None,
                    definition, columns: _Columns, stats: ShardStats) -> None:
    """Detector replicas of a chunk of events, their reco jets in one clustering call, rows into ``columns``."""
    radius = config.jets.radius
    responses = []  # per event with jets: its views and their responses
    for views in chunk:
        stats.add(ShardStats(events=1, truth_jets=len(views[0].constituents) + views[0].jets_dropped,
                             jets_dropped_hadronization=views[0].jets_dropped))
        if not views[0].constituents:
            continue
        geometries = {}  # views shared by several replicas (detector mode) share their geometry
        event_responses = []
        for replica, view in enumerate(views):
            if id(view) not in geometries:
                geometries[id(view)] = view_geometry(view, config)
            pileup = None
            if pool is not None:
                pileup = overlay(pool, config.pileup.mu, config.pileup.vertex_sigma_z_mm,
                                 pileup_generator(base_seed, view.event_id, replica))
            rng = replica_generator(base_seed, view.event_id, replica)
            event_responses.append(respond(view, geometries[id(view)], rng, config, pileup))
        responses.append((views, event_responses))

    inputs = []
    for _, event_responses in responses:
        for response in event_responses:
            clusters = response.clusters
            positive = np.flatnonzero(clusters.e > 0)
            inputs.append((clusters.pt[positive], clusters.eta[positive], clusters.phi[positive], clusters.e[positive]))
    reco = iter(_antikt_many(inputs, definition, config.detector.reco_jet_pt_min_gev))

    for views, event_responses in responses:
        n_jets = len(views[0].constituents)
        rows_per_jet = [[] for _ in range(n_jets)]
        for replica, (view, response) in enumerate(zip(views, event_responses)):
            clusters = response.clusters
            positive = np.flatnonzero(clusters.e > 0)
            reco_jets = [(kinematics, positive[members]) for kinematics, members in next(reco)]  # members -> cluster ids
            if not reco_jets:
                continue
            reco_eta = np.array([k[1] for k, _ in reco_jets])
            reco_phi = np.array([k[2] for k, _ in reco_jets])
            for j in range(n_jets):
                dr = delta_r(reco_eta, reco_phi, view.jets["eta"][j], view.jets["phi"][j])
                best = int(np.argmin(dr))
                if dr[best] < radius / 2:
                    rows_per_jet[j].append(_jet_row(view, j, replica, base_seed, reco_jets[best], response, radius))
        complete = [rows for rows in rows_per_jet if len(rows) == len(views)]
        stats.jets_written += len(complete)
        stats.jets_dropped_unmatched += n_jets - len(complete)
        for rows in complete:
            for row in rows:
                columns.append(row)


def simulate_events(events: Iterable, config: SimConfig, base_seed: int, n_replicas: int,
                    pool: PileupPool | None = None) -> tuple[dict, ShardStats]:
    """Replicas of the jets of ``events`` as one schema batch (replicas of one jet adjacent).

    ``events``: TruthEvents (``detector`` mode: every replica sees the same truth) or, per event,
    the list of the ``n_replicas`` views of :func:`detector_sim.generate.generate_replicas`.
    ``pool``: the shard's pile-up pool (:func:`detector_sim.pileup.make_pool`), or None.
    """
    columns, stats = _Columns(), ShardStats()
    definition = jet_definition(config.jets.radius)
    chunk = []
    for item in events:
        chunk.append(_as_views(item, n_replicas))
        if len(chunk) == CHUNK_EVENTS:
            _simulate_chunk(chunk, config, base_seed, pool, definition, columns, stats)
            chunk = []
    if chunk:
        _simulate_chunk(chunk, config, base_seed, pool, definition, columns, stats)
    return columns.to_batch(), stats


def simulate_shard(config: SimConfig, base_seed: int, shard: int, n_events: int, n_replicas: int) -> tuple[dict, ShardStats]:
    """Generate ``n_events`` events of shard ``shard`` with Pythia and simulate their replicas."""
    pool = make_pool(config, base_seed, shard)
    views = generate_replicas(config, base_seed, shard, n_events, n_replicas)
    return simulate_events(views, config, base_seed, n_replicas, pool)


def shard_plan(n_events: int, events_per_shard: int) -> list[tuple[int, int]]:
    """(shard index, events in it) covering ``n_events``; fixed by the config, not by the worker count."""
    full, rest = divmod(n_events, events_per_shard)
    return [(shard, events_per_shard) for shard in range(full)] + ([(full, rest)] if rest else [])
