"""Shared fixtures: tiny ROOT files made by the tests themselves.

``write_synthetic_jets`` writes schema-conformant files with hand-controlled content (NaN cells,
broken replica groups, empty jets) through the real writer; files from the real simulation come
from the ``sim_*`` fixtures (``detector-sim generate`` on a few events).
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from detector_sim.writer import JetWriter
from gnnjets.io import schema


def write_synthetic_jets(path: str | Path, *, n_jets: int = 8, n_replicas: int = 2, seed: int = 0,
                         cells_per_jet: tuple[int, int] = (20, 60), tracks_per_jet: tuple[int, int] = (0, 12),
                         empty_jets: tuple[int, ...] = (), nan_entry: int | None = None,
                         drop_entries: tuple[int, ...] = (), swap_entries: tuple[int, int] | None = None) -> Path:
    """A file of ``n_jets`` x ``n_replicas`` entries whose cells and tracks sit around the jet axis.

    ``empty_jets``: jet numbers whose replicas have no cells and no tracks; ``nan_entry``: an entry
    whose first cell energy is NaN; ``drop_entries``: entries left out (incomplete groups);
    ``swap_entries``: two entries exchanged (replicas no longer adjacent).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for jet in range(n_jets):
        pt = rng.uniform(100, 1000)
        eta = rng.uniform(-1.5, 1.5)
        phi = rng.uniform(-np.pi, np.pi)
        label = int(rng.integers(0, 2))
        n_particles = int(rng.integers(5, 30))
        for replica in range(n_replicas):
            empty = jet in empty_jets
            n_cells = 0 if empty else int(rng.integers(*cells_per_jet))
            n_tracks = 0 if empty else int(rng.integers(*tracks_per_jet))
            cell_e = rng.exponential(pt / max(n_cells, 1), n_cells)
            track_eta = eta + rng.normal(0, 0.1, n_tracks)
            track_phi = phi + rng.normal(0, 0.1, n_tracks)
            row = dict(
                event_id=jet, jet_index=0, replica=replica, sim_seed=seed,
                truth_pt=pt, truth_eta=eta, truth_phi=phi, truth_e=pt * np.cosh(eta), truth_m=0.1 * pt,
                label=label, parton_pdgid=1 if label else 21,
                jet_pt=0.8 * pt, jet_eta=eta, jet_phi=phi, jet_e=0.8 * pt * np.cosh(eta), jet_m=0.1 * pt,
                cell_e=cell_e, cell_eta=eta + rng.normal(0, 0.1, n_cells),
                cell_phi=np.mod(phi + rng.normal(0, 0.1, n_cells) + np.pi, 2 * np.pi) - np.pi,
                cell_layer=rng.integers(0, 6, n_cells), cell_sigma=rng.choice([0.013, 0.034, 0.041, 0.075, 0.05, 0.025], n_cells),
                cell_topo_idx=rng.integers(0, 3, n_cells),
                track_pt=rng.exponential(20, n_tracks) + 1, track_eta=track_eta,
                track_phi=np.mod(track_phi + np.pi, 2 * np.pi) - np.pi,
                track_charge=rng.choice([-1, 1], n_tracks), track_d0=rng.normal(0, 0.02, n_tracks),
                track_z0=rng.normal(0, 0.05, n_tracks),
                particle_pt=rng.exponential(pt / n_particles, n_particles), particle_eta=eta + rng.normal(0, 0.1, n_particles),
                particle_phi=phi + rng.normal(0, 0.1, n_particles), particle_e=rng.exponential(pt / n_particles, n_particles),
                particle_pdgid=rng.choice([211, -211, 22, 130], n_particles),
            )
            for layer in range(schema.N_CALO_LAYERS):
                row[f"track_eta_layer{layer}"] = track_eta
                row[f"track_phi_layer{layer}"] = row["track_phi"]
            rows.append(row)
    if nan_entry is not None:
        rows[nan_entry]["cell_e"] = np.array(rows[nan_entry]["cell_e"], dtype=float)
        rows[nan_entry]["cell_e"][0] = np.nan
    if swap_entries is not None:
        a, b = swap_entries
        rows[a], rows[b] = rows[b], rows[a]
    rows = [row for i, row in enumerate(rows) if i not in drop_entries]
    batch = {}
    for field in schema.ALL_FIELDS:
        values = [row[field.name] for row in rows]
        if schema.collection_of(field.name) is None:
            batch[field.name] = np.asarray(values, dtype=field.dtype)
        else:
            batch[field.name] = ak.Array([np.asarray(v, dtype=field.dtype) for v in values])
    with JetWriter(path, {"generator": "tests.conftest.write_synthetic_jets", "seed": seed}) as writer:
        writer.write(batch)
    return Path(path)


@pytest.fixture
def synthetic_jets_file(tmp_path):
    """A small schema-conformant file: 8 jets x 2 replicas."""
    return write_synthetic_jets(tmp_path / "synthetic.root")


def simulate_file(path: Path, config: str, events: int, *, replicas: int = 2, seed: int = 1, overrides=()) -> Path:
    """Run ``detector-sim generate`` in-process; the tests' real-simulation files come from here."""
    from detector_sim import cli

    argv = ["generate", "--config", config, "--events", str(events), "--replicas", str(replicas), "--seed", str(seed),
            "--out", str(path), "--quiet"]
    for item in overrides:
        argv += ["--set", item]
    if cli.main(argv) != 0:
        raise RuntimeError(f"detector-sim generate failed for {path}")
    return Path(path)


@pytest.fixture(scope="session")
def sim_qg_file(tmp_path_factory):
    """~20 q/g jets (pT 200-400 GeV) x 2 replicas from the real simulation."""
    return simulate_file(tmp_path_factory.mktemp("sim") / "qg.root", "configs/sim/qg.yaml", 40,
                         overrides=["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=150",
                                    "jets.pt_max_gev=500", "sharding.events_per_shard=20"])


@pytest.fixture(scope="session")
def sim_top_file(tmp_path_factory):
    """~10 top jets x 2 replicas from the real simulation."""
    return simulate_file(tmp_path_factory.mktemp("sim") / "top.root", "configs/sim/top.yaml", 30, seed=2,
                         overrides=["sharding.events_per_shard=30"])


@pytest.fixture
def jets_file(sim_qg_file):
    """The file the graph, dataset and augmentation tests read: real detector-sim output."""
    return sim_qg_file


@pytest.fixture
def records(jets_file):
    """The branches graphs are built from, of every entry of ``jets_file``."""
    from gnnjets.graphs import GRAPH_BRANCHES
    from gnnjets.io import read_all

    return read_all(jets_file, branches=GRAPH_BRANCHES)
