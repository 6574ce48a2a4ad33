"""``make demo``: the whole chain as far as it exists, on a small sample, with a printed summary.

Step 1 simulates a small q/g sample with two detector replicas per jet and prints what is in it:
how many jets, the quark fraction, cells and tracks per jet, the EM-scale response of the reco
jets, and how much two replicas of one jet differ (they share the truth, not the noise).
Step 2 pretrains the default backbone contrastively on the bundled sample ``data/qg_small.root``
(no labels used) for a few minutes and probes it with a linear classifier (quark vs gluon) on the
jets of step 1, which it never saw: positive/negative cosine similarity and probe AUC, before and
after pretraining.
Step 3 solves two downstream tasks on the jets of step 1 with small heads on the frozen backbone
(``gnnjets-downstream``): quark/gluon tagging against the EFP baseline, and jet-energy regression
against the EM-scale sum and a per-layer calibration.
Step 4 embeds the jets of step 1 with the Python API (:class:`gnnjets.Embedder`) and writes the
embedding as a friend tree with ``gnnjets-embed``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import csv
import math

import numpy as np
import uproot

from detector_sim import cli as sim_cli


def summarise_sample(path: Path) -> str:
    """A small text table describing a simulated file."""
    with uproot.open(path) as file:
        jets = file["jets"].arrays(["event_id", "jet_index", "replica", "label", "truth_e", "jet_e", "ncell", "ntrack", "cell_e"])
    replica0 = jets[jets.replica == 0]
    replica1 = jets[jets.replica == 1]
    response = np.asarray(jets.jet_e / jets.truth_e)
    q16, q50, q84 = np.percentile(response, [16, 50, 84])
    lines = [
        f"file                      {path}",
        f"jets x replicas           {len(replica0)} x {len(jets) // max(len(replica0), 1)}",
        f"quark fraction            {np.mean(np.asarray(replica0.label) == 1):.2f}",
        f"cells per jet (median)    {np.median(np.asarray(jets.ncell)):.0f}",
        f"tracks per jet (median)   {np.median(np.asarray(jets.ntrack)):.0f}",
        f"E_reco/E_truth (EM scale) median {q50:.3f}, 68% half-width {(q84 - q16) / 2:.3f}",
    ]
    if len(replica1):
        diff = np.asarray(replica1.jet_e - replica0.jet_e) / np.asarray(replica0.truth_e)
        lines.append(f"replica 1 vs 0: |dE|/E_truth mean {np.mean(np.abs(diff)):.3f} (same truth jet, other seed)")
    return "\n".join(lines)


def summarise_pretraining(metrics_csv: Path) -> str:
    """The first and last rows of a pretraining run's metrics, as a small table."""
    with metrics_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    probes = [r for r in rows if r["probe_auc"]]
    trained = [r for r in rows if r["loss"]]
    first, last = trained[0], trained[-1]
    lines = [f"{'':26s}{'step ' + first['step']:>12s}{'step ' + last['step']:>12s}",
             f"{'NT-Xent loss':26s}{float(first['loss']):12.3f}{float(last['loss']):12.3f}",
             f"{'positive-pair cosine':26s}{float(first['pos_cosine']):12.3f}{float(last['pos_cosine']):12.3f}",
             f"{'negative-pair cosine':26s}{float(first['neg_cosine']):12.3f}{float(last['neg_cosine']):12.3f}",
             f"{'effective rank of h':26s}{float(first['effective_rank_h']):12.1f}{float(last['effective_rank_h']):12.1f}"]
    if len(probes) >= 2:
        lines.append(f"{'q/g linear-probe AUC':26s}{float(probes[0]['probe_auc']):12.3f}{float(probes[-1]['probe_auc']):12.3f}"
                     f"   (step {probes[0]['step']} = untrained backbone)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gnnjets.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo", help="folder for the demo's outputs (default runs/demo)")
    parser.add_argument("--events", type=int, default=1200, help="q/g events to simulate (default 1200)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="pretraining steps (default 200, a few minutes)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "qg_demo.root"
    print(f"[1/4] simulating {args.events} q/g events (pT 200-400 GeV) with 2 detector replicas per jet")
    start = time.perf_counter()
    code = sim_cli.main(["generate", "--config", "configs/sim/qg.yaml", "--events", str(args.events), "--replicas", "2",
                         "--seed", "1", "--out", str(sample), "--workers", str(args.workers),
                         "--set", "generator.pthat_slices=[[200,400]]", "--set", "jets.pt_min_gev=200",
                         "--set", "jets.pt_max_gev=400", "--set", "sharding.events_per_shard=100"])
    if code:
        return code
    print(f"      done in {time.perf_counter() - start:.1f} s\n")
    print(summarise_sample(sample))

    print(f"\n[2/4] pretraining on data/qg_small.root for {args.steps} steps (NT-Xent, replicas + augmentations); "
          f"linear probe on the jets of step 1")
    from gnnjets.cli import pretrain as pretrain_cli

    start = time.perf_counter()
    run = out / "pretrain"
    code = pretrain_cli.main(["--config", "default", "--overwrite", "--set", "data.train=[data/qg_small.root]",
                              "--set", f"data.val={sample}", "--set", f"optim.max_steps={args.steps}",
                              "--set", f"train.out_dir={run}", "--set", f"train.probe_every={args.steps}",
                              "--set", f"train.log_every={math.gcd(10, args.steps)}",
                              # 341 jets make an epoch of 2 batches: restarting worker processes every
                              # epoch would cost more than building the graphs in this process
                              "--set", "data.num_workers=0"])
    if code:
        return code
    print(f"      done in {time.perf_counter() - start:.0f} s\n")
    print(summarise_pretraining(run / "metrics.csv"))

    print("\n[3/4] downstream tasks on the jets of step 1 (frozen backbone + linear head vs baselines)")
    from gnnjets.cli import downstream as downstream_cli

    for task, baselines in (("qg", "efp"), ("energy", "em calib")):
        start = time.perf_counter()
        code = downstream_cli.main(["--task", task, "--backbone", str(run / "last.pt"), "--train", str(sample),
                                    "--baseline", *baselines.split(), "--out", str(out / f"downstream_{task}"), "--overwrite",
                                    "--set", "data.test_fraction=0.3", "--set", f"run.cache_dir={out / 'cache'}",
                                    "--set", "run.progress=false"])
        if code:
            return code
        print(f"      ({task} done in {time.perf_counter() - start:.0f} s)\n")

    print("[4/4] embedding the jets of step 1 with the Python API and as a friend tree")
    from gnnjets import Embedder
    from gnnjets.cli import embed as embed_cli

    embedder = Embedder.from_checkpoint(run / "last.pt", device="cpu")
    h, ids = embedder.embed_file(sample)
    print(f"      Embedder.from_checkpoint(...).embed_file(...): h {h.shape}, rows in file order "
          f"(entries {ids['entry'][0]}..{ids['entry'][-1]})")
    return embed_cli.main([str(run / "last.pt"), str(sample), "--out", str(out / "qg_demo_embedding.root"),
                           "--device", "cpu"])


if __name__ == "__main__":
    sys.exit(main())
