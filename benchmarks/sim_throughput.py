"""Throughput of the simulation on one core: the detector alone, each replica mode per jet, MPI's cost.

1. Detector simulation alone (showers, noise, topoclusters split at local maxima, anti-kT,
   tracks, matching, rows) over pre-generated Pythia events, two replicas per jet, for top jets
   (550-650 GeV, R = 0.8) and q/g jets (200-400 GeV, R = 0.4), with splitting on (the default)
   and off. Rate = jet replicas per CPU second of this process, best of ``--repeat`` passes (the
   least disturbed by other processes on a shared machine). Target: >= 300 top-jet replicas/s.
2. Each replica mode, everything included (Pythia, re-hadronisation or augmentation, detector):
   CPU milliseconds per jet with two replicas, and the compressed file size per jet replica.
3. MPI's cost: Pythia events/s and CPU ms per selected jet with MPI on (the default) and off.

    python benchmarks/sim_throughput.py [--events 600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from detector_sim.config import REPLICA_MODES, load_config  # noqa: E402
from detector_sim.generate import generate_replicas, generate_shard  # noqa: E402
from detector_sim.simulate import simulate_events  # noqa: E402
from detector_sim.writer import JetWriter  # noqa: E402

SAMPLES = {
    "top 550-650 GeV": ("configs/sim/top.yaml", []),
    "q/g 200-400 GeV": ("configs/sim/qg.yaml", ["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=200",
                                                "jets.pt_max_gev=400"]),
}


def config_of(sample: str, n_events: int, *extra: str):
    path, overrides = SAMPLES[sample]
    config = load_config(path, [*overrides, *extra])
    config.sharding.events_per_shard = n_events
    return config


def detector_alone(sample: str, n_events: int, repeat: int) -> None:
    config = config_of(sample, n_events)
    events = list(generate_shard(config, 11, 0, n_events))
    for splitting in (True, False):
        config.detector.splitting = splitting
        simulate_events(events[:10], config, 11, 2)  # JIT warm-up outside the timing
        cpu, wall = [], []
        for _ in range(repeat):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            _, stats = simulate_events(events, config, 11, 2)
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start_wall)
        replicas = 2 * stats.jets_written
        print(f"{sample:18s} {'on' if splitting else 'off':>9s} {stats.jets_written:5d} {replicas / min(cpu):14.0f} "
              f"{replicas / min(wall):15.0f} {replicas / max(cpu):16.0f}")


def replica_mode_cost(sample: str, n_events: int) -> None:
    for mode in REPLICA_MODES:
        config = config_of(sample, n_events, f"replicas.mode={mode}")
        list(generate_shard(config_of(sample, 5), 11, 1, 5))  # warm-up: imports, JIT, Pythia's first use
        start = time.process_time()
        batch, stats = simulate_events(generate_replicas(config, 11, 0, n_events, 2), config, 11, 2)
        total = time.process_time() - start
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.root"
            with JetWriter(path) as writer:
                writer.write(batch)
            megabytes = path.stat().st_size / 1e6
        jets = max(stats.jets_written, 1)
        print(f"{sample:18s} {mode:20s} {stats.jets_written:5d} {1e3 * total / jets:13.1f} {megabytes / (2 * jets):15.4f}")


def mpi_cost(sample: str, n_events: int) -> None:
    for mpi in (True, False):
        config = config_of(sample, n_events, f"generator.mpi={str(mpi).lower()}")
        start = time.process_time()
        events = list(generate_shard(config, 11, 0, n_events))
        elapsed = time.process_time() - start
        jets = max(sum(len(event.constituents) for event in events), 1)
        print(f"{sample:18s} {'on' if mpi else 'off':>4s} {n_events / elapsed:12.1f} {1e3 * elapsed / jets:16.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600, help="Pythia events per sample")
    parser.add_argument("--repeat", type=int, default=3, help="passes of the detector-only timing")
    args = parser.parse_args(argv)
    print(f"1. detector simulation alone, one process, 2 replicas per jet, {args.events} events per sample")
    print(f"{'sample':18s} {'splitting':>9s} {'jets':>5s} {'replicas/CPU-s':>14s} {'replicas/wall-s':>15s} "
          f"{'(worst pass CPU)':>16s}")
    for sample in SAMPLES:
        detector_alone(sample, args.events, args.repeat)
    print("\n2. whole chain per replica mode (Pythia + replicas + detector), 2 replicas per jet")
    print(f"{'sample':18s} {'mode':20s} {'jets':>5s} {'CPU ms / jet':>13s} {'MB / jet replica':>15s}")
    for sample in SAMPLES:
        replica_mode_cost(sample, args.events)
    print("\n3. Pythia with and without multiparton interactions")
    print(f"{'sample':18s} {'MPI':>4s} {'events/CPU-s':>12s} {'CPU ms / jet':>16s}")
    for sample in SAMPLES:
        mpi_cost(sample, args.events)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
