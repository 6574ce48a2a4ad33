"""Embedding throughput: jets/s from a ROOT file to embeddings h, against reading and graph building alone.

    python benchmarks/embed_throughput.py                                  # default config, data/qg_small.root
    python benchmarks/embed_throughput.py --configs v0.1 default --file data/big/dev_qg_labelled.root
    python benchmarks/embed_throughput.py --checkpoint runs/pretrain/last.pt --device cuda --batch-size 2048
    python benchmarks/embed_throughput.py --rss-files data/qg_small.root data/big/dev_qg_labelled.root

Per config (a pretraining config name or path, embedded with seeded random weights: the speed does
not depend on them) or checkpoint, three measurements, each the fastest of ``--repeat`` passes:

``full``         ``Embedder.embed_file``: reading, graph building, batching, forward, copy to numpy;
``read+graphs``  the same loader without the model;
``forward``      ``Embedder.embed_graphs`` on those batches held in memory;

and ``full / read+graphs``, the share of the reading speed that embedding keeps (the target is at
least 50 %). ``--rss-files``: the peak RSS of streaming (``Embedder.iter_embed``) through each file,
one process per file; with flat memory it does not grow with the file. Each measurement runs in
its own spawned process; the device, dtype and threads are printed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def random_checkpoint(config_name: str, folder: Path) -> Path:
    """A checkpoint of ``config_name``'s graph and model with seeded random weights."""
    from gnnjets.checkpoint import save_checkpoint
    from gnnjets.config import load_config
    from gnnjets.nn import build_model

    config = load_config(config_name).to_dict()
    path = folder / f"{Path(config_name).stem}.pt"
    return save_checkpoint(path, {"config": config, "model": build_model(config["model"], seed=0).state_dict()})


def measure(checkpoint: str, path: str, device: str, batch_size: int, workers: int, repeat: int, threads) -> dict:
    import torch

    from gnnjets.data import JetDataset, make_loader
    from gnnjets.embed import Embedder
    from gnnjets.runtime import configure_threads

    configure_threads(threads, workers=workers)
    embedder = Embedder.from_checkpoint(checkpoint, device=device)
    full, read, forward = [], [], []
    jets = 0
    for _ in range(repeat):
        start = time.perf_counter()
        h, _ = embedder.embed_file(path, batch_size=batch_size, num_workers=workers)
        full.append(time.perf_counter() - start)
        jets = len(h)
        dataset = JetDataset(path, graph_config=embedder.graph_config, shuffle=False, skip_empty=False)
        start = time.perf_counter()
        batches = list(make_loader(dataset, batch_size=batch_size, num_workers=workers))
        read.append(time.perf_counter() - start)
        start = time.perf_counter()
        for batch in batches:
            embedder.embed_graphs(batch)  # returns on the CPU: the device is synchronised
        forward.append(time.perf_counter() - start)
    cuda = embedder.device.type == "cuda"
    return {"jets": jets, "dim": embedder.dim, "threads": torch.get_num_threads(), "full": jets / min(full),
            "read": jets / min(read), "forward": jets / min(forward),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "gpu_mb": torch.cuda.max_memory_allocated(embedder.device) / 2**20 if cuda else float("nan"),
            "device": torch.cuda.get_device_name(embedder.device) if cuda else "cpu", "dtype": "float32"}


def stream_rss(checkpoint: str, path: str, batch_size: int, step_size: int, threads) -> dict:
    from gnnjets.embed import Embedder
    from gnnjets.runtime import configure_threads

    configure_threads(threads)
    embedder = Embedder.from_checkpoint(checkpoint, device="cpu")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    jets = sum(len(h) for h, _ in embedder.iter_embed(path, step_size=step_size, batch_size=batch_size))
    return {"jets": jets, "before_mb": before, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run(function, *args):
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["default"], help="pretraining configs (random weights)")
    parser.add_argument("--checkpoint", default=None, help="measure this checkpoint instead of --configs")
    parser.add_argument("--file", default=str(ROOT / "data/qg_small.root"), help="ROOT file to embed")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes building graphs")
    parser.add_argument("--repeat", type=int, default=2, help="passes per measurement; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: automatic)")
    parser.add_argument("--rss-files", nargs="*", default=[], help="files to stream through, peak RSS each")
    parser.add_argument("--step-size", type=int, default=10_000, help="entries per streamed chunk")
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="embed_throughput_")
    checkpoints = ({args.checkpoint: args.checkpoint} if args.checkpoint else
                   {name: str(random_checkpoint(name, Path(tmp.name))) for name in args.configs})
    print(f"file {args.file}, batch size {args.batch_size}, workers {args.workers}, fastest of {args.repeat} pass(es)")
    print(f"{'config':>10} {'device':>8} {'dtype':>8} {'jets':>6} {'D':>4} {'thr':>3} {'full/s':>8} "
          f"{'read+graphs/s':>13} {'forward/s':>9} {'full/read':>9} {'peak RSS MB':>11}")
    for name, checkpoint in checkpoints.items():
        r = _run(measure, checkpoint, args.file, args.device, args.batch_size, args.workers, args.repeat, args.threads)
        print(f"{Path(name).stem:>10} {r['device']:>8} {r['dtype']:>8} {r['jets']:>6} {r['dim']:>4} {r['threads']:>3} "
              f"{r['full']:>8.0f} {r['read']:>13.0f} {r['forward']:>9.0f} {r['full'] / r['read']:>9.1%} "
              f"{r['rss_mb']:>11.0f}", flush=True)
    for path in args.rss_files:
        checkpoint = next(iter(checkpoints.values()))
        r = _run(stream_rss, checkpoint, path, args.batch_size, args.step_size, args.threads)
        print(f"iter_embed {path}: {r['jets']} jets, peak RSS {r['rss_mb']:.0f} MB (after loading {r['before_mb']:.0f})",
              flush=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
