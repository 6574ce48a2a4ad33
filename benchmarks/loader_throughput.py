"""Loader throughput: jets/s from ROOT files to batched, augmented replica pairs, with 0, 1, 2 workers.

    python benchmarks/loader_throughput.py                            # data/qg*.root, data/top*.root or synthetic
    python benchmarks/loader_throughput.py --qg data/qg.root --top data/top.root --workers 0 1 2
    python benchmarks/loader_throughput.py --synthetic --jets 8000    # synthetic files of realistic size

Small files are read several times per epoch (``--min-jets``) so that worker start-up and the
first shuffle window (~2 s) do not dominate.

For each file and worker count it iterates one epoch of ``make_loader(JetReplicaDataset(...))``
with the default augmentations (CollinearSplit, SoftSmear, RotateJet, TranslateJet) and prints
jet pairs per second over the whole epoch (worker start-up included) and after the first batch
(steady state), plus the peak resident memory of the main process and of the largest worker.
"CPU us/pair" is the CPU time of the main process and its workers per jet pair: on a shared or
busy machine it says what the loader costs even when the wall-clock rate is set by others.
The synthetic files mimic the simulation's sizes when no files are given: q/g jets with ~300-600
cells and 10-30 tracks, top jets with ~600-1200 cells, spread over the six layers on their grids.
"""

from __future__ import annotations

import argparse
import glob
import resource
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detector_sim.writer import JetWriter  # noqa: E402
from gnnjets.augment import default_augmentations  # noqa: E402
from gnnjets.data import JetReplicaDataset, make_loader  # noqa: E402
from gnnjets.io import schema  # noqa: E402

#: cell-count share of the layers in simulated q/g jets (ECAL1 .. HCAL3)
LAYER_SHARE = np.array([0.27, 0.43, 0.16, 0.08, 0.05, 0.01])
CELL_SIZE = np.array([[0.023, 0.025], [0.023, 0.025], [0.047, 0.049], [0.094, 0.098], [0.094, 0.098], [0.19, 0.20]])
NOISE_GEV = np.array([0.013, 0.034, 0.041, 0.075, 0.050, 0.025])


def write_synthetic(path: Path, n_jets: int, cells: tuple[int, int], tracks: tuple[int, int], width: float,
                    replicas: int = 2, seed: int = 0) -> Path:
    """A schema file of ``n_jets`` x ``replicas`` entries with realistic sizes (vectorised)."""
    rng = np.random.default_rng(seed)
    n = n_jets * replicas
    jet = np.repeat(np.arange(n_jets), replicas)
    pt = rng.uniform(100, 1000, n_jets)[jet]
    eta = rng.uniform(-1.5, 1.5, n_jets)[jet]
    phi = rng.uniform(-np.pi, np.pi, n_jets)[jet]
    n_cells = rng.integers(*cells, n)
    n_tracks = rng.integers(*tracks, n)
    owner = np.repeat(np.arange(n), n_cells)
    layer = rng.choice(6, size=len(owner), p=LAYER_SHARE)
    # positions on the layer grids around the axis (a few cells may coincide: harmless here)
    d_eta = np.round(rng.normal(0, width, len(owner)) / CELL_SIZE[layer, 0]) * CELL_SIZE[layer, 0]
    d_phi = np.round(rng.normal(0, width, len(owner)) / CELL_SIZE[layer, 1]) * CELL_SIZE[layer, 1]
    energy = rng.exponential(pt[owner] / n_cells[owner]) * (rng.random(len(owner)) < 0.6) \
        + rng.normal(0, NOISE_GEV[layer])
    t_owner = np.repeat(np.arange(n), n_tracks)
    t_eta = eta[t_owner] + rng.normal(0, width, len(t_owner))
    t_phi = np.mod(phi[t_owner] + rng.normal(0, width, len(t_owner)) + np.pi, 2 * np.pi) - np.pi

    def jagged(values, counts):
        return ak.unflatten(values, counts)

    batch = dict(event_id=jet, jet_index=np.zeros(n), replica=np.tile(np.arange(replicas), n_jets),
                 sim_seed=np.full(n, seed), truth_pt=pt, truth_eta=eta, truth_phi=phi, truth_e=pt * np.cosh(eta),
                 truth_m=0.1 * pt, label=rng.integers(0, 2, n_jets)[jet], parton_pdgid=np.ones(n), jet_pt=0.8 * pt,
                 jet_eta=eta, jet_phi=phi, jet_e=0.8 * pt * np.cosh(eta), jet_m=0.1 * pt,
                 cell_e=jagged(energy, n_cells), cell_eta=jagged(eta[owner] + d_eta, n_cells),
                 cell_phi=jagged(np.mod(phi[owner] + d_phi + np.pi, 2 * np.pi) - np.pi, n_cells),
                 cell_layer=jagged(layer, n_cells), cell_sigma=jagged(NOISE_GEV[layer], n_cells),
                 cell_topo_idx=jagged(np.zeros(len(owner)), n_cells),
                 track_pt=jagged(rng.exponential(20, len(t_owner)) + 1, n_tracks),
                 track_eta=jagged(t_eta, n_tracks), track_phi=jagged(t_phi, n_tracks),
                 track_charge=jagged(rng.choice([-1, 1], len(t_owner)), n_tracks),
                 track_d0=jagged(rng.normal(0, 0.03, len(t_owner)), n_tracks),
                 track_z0=jagged(rng.normal(0, 0.05, len(t_owner)), n_tracks),
                 particle_pt=jagged(np.zeros(0), np.zeros(n, np.int64)),
                 particle_eta=jagged(np.zeros(0), np.zeros(n, np.int64)),
                 particle_phi=jagged(np.zeros(0), np.zeros(n, np.int64)),
                 particle_e=jagged(np.zeros(0), np.zeros(n, np.int64)),
                 particle_pdgid=jagged(np.zeros(0), np.zeros(n, np.int64)))
    for layer_index in range(schema.N_CALO_LAYERS):
        batch[f"track_eta_layer{layer_index}"] = batch["track_eta"]
        batch[f"track_phi_layer{layer_index}"] = batch["track_phi"]
    with JetWriter(path, {"generator": "benchmarks/loader_throughput.py synthetic"}) as writer:
        for start in range(0, n, 4000):  # baskets of 4000 entries, as the simulation writes in shards
            writer.write({key: value[start:start + 4000] for key, value in batch.items()})
    return path


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (the loader's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(paths: list[str], workers: int, batch_size: int, graph_config, seed: int = 0) -> dict:
    dataset = JetReplicaDataset(paths, transform=default_augmentations(), graph_config=graph_config, seed=seed)
    loader = make_loader(dataset, batch_size=batch_size, num_workers=workers)
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    first = None
    jets = jets_after_first = 0
    for batch in loader:
        if first is None:
            first = time.perf_counter()
        else:
            jets_after_first += batch.num_jets
        jets += batch.num_jets
    end = time.perf_counter()
    cpu = _cpu_seconds() - cpu_start
    return {"jets": jets, "seconds": end - start, "pairs_per_s": jets / (end - start), "cpu_us_per_pair": 1e6 * cpu / jets,
            "steady_pairs_per_s": jets_after_first / (end - first) if end > first else float("nan"),
            "first_batch_s": first - start, "skipped": loader.skipped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qg", nargs="*", default=None, help="q/g files (default data/qg*.root, else synthetic)")
    parser.add_argument("--top", nargs="*", default=None, help="top files (default data/top*.root, else synthetic)")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic files even if data/ has some")
    parser.add_argument("--jets", type=int, default=6000, help="jets per synthetic file")
    parser.add_argument("--min-jets", type=int, default=12000,
                        help="repeat the file list until an epoch has at least this many jets (start-up amortised)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--graph-config", default=str(ROOT / "configs/graphs/cpu.yaml"))
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="loader_throughput_")
    samples = {}
    for kind, given, cells, tracks, width in (("qg", args.qg, (300, 600), (10, 30), 0.08),
                                              ("top", args.top, (600, 1200), (15, 45), 0.25)):
        files = given if given else ([] if args.synthetic else sorted(glob.glob(str(ROOT / f"data/{kind}*.root"))))
        if not files:
            print(f"{kind}: writing a synthetic file of {args.jets} jets x 2 replicas ...", flush=True)
            files = [str(write_synthetic(Path(tmp.name) / f"{kind}.root", args.jets, cells, tracks, width))]
        jets = JetReplicaDataset(files).num_jets
        samples[kind] = files * max(1, -(-args.min_jets // jets))

    print(f"graph config {args.graph_config}, batch size {args.batch_size}, augmentations: "
          f"{default_augmentations()!r}".replace("\n", " "))
    print(f"{'sample':>6} {'workers':>7} {'jets':>7} {'pairs/s':>9} {'steady/s':>9} {'1st batch':>9} "
          f"{'CPU us/pair':>11} {'main MB':>8} {'worker MB':>9}")
    for kind, files in samples.items():
        for workers in args.workers:
            result = measure(files, workers, args.batch_size, args.graph_config)
            main_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"{kind:>6} {workers:>7} {result['jets']:>7} {result['pairs_per_s']:>9.0f} "
                  f"{result['steady_pairs_per_s']:>9.0f} {result['first_batch_s']:>8.2f}s "
                  f"{result['cpu_us_per_pair']:>11.0f} {main_mb:>8.0f} "
                  f"{child_mb if workers else float('nan'):>9.0f}", flush=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
