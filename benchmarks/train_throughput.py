"""Training throughput: jet graphs per second of a pretraining step, for named pretraining configs.

A step is what ``gnnjets-pretrain`` does: both replica views of a batch of real jets (built and
augmented by the config's graph settings and augmentations from a ROOT file) through backbone and
projector, NT-Xent, backward, AdamW. Graphs/s counts graphs (a batch of 256 pairs is 512). The
batches are built before the clock starts; their building is timed separately (``load``). Each
config runs in its own spawned process, so the peak RSS is its own; on a GPU the step runs under
bf16 autocast and the peak GPU memory is printed.

    python benchmarks/train_throughput.py                              # v0.1 against default, CPU
    python benchmarks/train_throughput.py --configs default --threads 1
    python benchmarks/train_throughput.py --device cuda --batch-size 1024

Configs are names of ``configs/pretrain/*.yaml`` (``v0.1`` is the version-0.1 default: EdgeConv on
the top 96 cells) or paths. The ratio of each config to the first is printed: the speed-up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(args: argparse.Namespace, name: str) -> dict:
    import torch

    from gnnjets.augment import augmentations_from_config
    from gnnjets.config import load_config
    from gnnjets.data import JetReplicaDataset, make_loader
    from gnnjets.losses import NTXentLoss
    from gnnjets.nn import build_model
    from gnnjets.runtime import configure_threads, resolve_device, tune_allocator

    device = resolve_device(args.device)
    configure_threads(args.threads)
    tune_allocator()
    config = load_config(name, [f"data.train=[{args.file}]"])
    dataset = JetReplicaDataset(args.file, replicas=2, graph_config=config.graph, seed=0, shuffle=True,
                                transform=augmentations_from_config(config.augment))
    def epochs():  # as many passes over the file as the steps need (the bundled sample holds 343 jets)
        while True:
            yield from make_loader(dataset, batch_size=args.batch_size, num_workers=0, drop_last=True)

    loader = epochs()
    start = time.perf_counter()
    batches = [next(loader) for _ in range(args.warmup + args.steps)]
    load = (time.perf_counter() - start) / len(batches)
    model = build_model(config.model, seed=0).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = NTXentLoss(temperature=0.1)
    cuda = device.type == "cuda"
    idle_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for i, batch in enumerate(batches):
        views = [view.to(device, non_blocking=True) for view in batch]
        if cuda:
            torch.cuda.synchronize(device)
        tick = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            z = torch.stack([model(view)[1] for view in views], dim=1)  # (B, 2, D_z)
            loss = criterion(z.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - tick)
    view = batches[0].view_a
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    backbone = config.model["backbone"]
    return dict(name=name, kind=backbone["kind"], hidden=backbone["hidden"], layers=backbone["layers"],
                nodes=view.num_nodes / view.num_graphs, edges=view.num_edges / view.num_graphs,
                median_s=statistics.median(times), min_s=min(times), load_s=load, peak_mib=peak,
                idle_mib=None if cuda else idle_rss, threads=torch.get_num_threads(),
                device=str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""),
                dtype="bfloat16 autocast" if cuda else "float32")


def _worker(args, name, queue) -> None:
    queue.put(measure(args, name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["v0.1", "default"], help="pretraining configs (names or paths)")
    parser.add_argument("--file", default=str(ROOT / "data/qg_small.root"), help="jets with >= 2 replicas")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batch-size", type=int, default=128, help="jets per step (two graphs each)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (median and fastest reported)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    rows = []
    for name in args.configs:
        queue = context.Queue()
        process = context.Process(target=_worker, args=(args, name, queue))
        process.start()
        result = queue.get()
        process.join()
        rows.append(result)
    first = rows[0]
    print(f"{first['device']}, {first['dtype']}, {first['threads']} threads; batch {args.batch_size} jets x 2 views "
          f"of {args.file}; {args.steps} timed steps")
    print(f"{'config':10s} {'backbone':9s} {'H':>4s} {'L':>2s} {'nodes/g':>8s} {'edges/g':>8s} {'step [s]':>9s} "
          f"{'graphs/s':>9s} {'best':>7s} {'x first':>8s} {'load [s]':>9s}  peak RSS (idle) [MiB]")
    for r in rows:
        rate, best = 2 * args.batch_size / r["median_s"], 2 * args.batch_size / r["min_s"]
        idle = f" ({r['idle_mib']:.0f})" if r["idle_mib"] is not None else ""
        print(f"{r['name']:10s} {r['kind']:9s} {r['hidden']:4d} {r['layers']:2d} {r['nodes']:8.1f} {r['edges']:8.0f} "
              f"{r['median_s']:9.3f} {rate:9.0f} {best:7.0f} {first['median_s'] / r['median_s']:8.2f} "
              f"{r['load_s']:9.3f}  {r['peak_mib']:.0f}{idle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
