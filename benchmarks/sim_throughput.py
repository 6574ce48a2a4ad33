"""Throughput of the detector simulation: jet replicas per second on one core, and MB per jet.

For q/g jets (200-400 GeV) and top jets (550-650 GeV): Pythia events are generated first (timed
on their own), then the detector simulation alone runs over them (showers, noise, topoclusters,
anti-kT, tracks, matching) with two replicas per jet. Also: the whole chain per jet replica, and
the compressed size of the written ROOT file per jet replica. Target: >= 300 top-jet replicas/s/core
for the simulation alone.

    python benchmarks/sim_throughput.py [--events 600]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from detector_sim.config import load_config  # noqa: E402
from detector_sim.generate import generate_shard  # noqa: E402
from detector_sim.simulate import simulate_events  # noqa: E402
from detector_sim.writer import JetWriter  # noqa: E402

SAMPLES = {
    "q/g 200-400 GeV": ("configs/sim/qg.yaml", ["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=200", "jets.pt_max_gev=400"]),
    "top 550-650 GeV": ("configs/sim/top.yaml", []),
}


def measure(config_path: str, overrides: list[str], n_events: int, replicas: int) -> dict:
    config = load_config(config_path, overrides)
    config.sharding.events_per_shard = n_events
    start = time.perf_counter()
    events = list(generate_shard(config, 11, 0, n_events))
    generation = time.perf_counter() - start
    simulate_events(events[:5], config, 11, replicas)  # JIT warm-up outside the timing
    start = time.perf_counter()
    batch, stats = simulate_events(events, config, 11, replicas)
    simulation = time.perf_counter() - start
    n_replicas = stats.jets_written * replicas
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.root"
        with JetWriter(path) as writer:
            writer.write(batch)
        megabytes = path.stat().st_size / 1e6
    return dict(events=len(events), jets=stats.jets_written, replicas=n_replicas, generation_s=generation,
                simulation_s=simulation, mb=megabytes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=600, help="Pythia events per sample")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"one process, {args.replicas} replicas per jet, {args.events} Pythia events per sample")
    print(f"{'sample':18s} {'jets':>5s} {'sim only [replicas/s]':>22s} {'with Pythia [replicas/s]':>25s} "
          f"{'Pythia [events/s]':>18s} {'MB per jet replica':>19s}")
    for name, (config, overrides) in SAMPLES.items():
        r = measure(config, overrides, args.events, args.replicas)
        sim_rate = r["replicas"] / r["simulation_s"]
        total_rate = r["replicas"] / (r["simulation_s"] + r["generation_s"])
        print(f"{name:18s} {r['jets']:5d} {sim_rate:22.0f} {total_rate:25.1f} {r['events'] / r['generation_s']:18.1f} "
              f"{r['mb'] / max(r['replicas'], 1):19.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
