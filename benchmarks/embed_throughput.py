"""Embedding throughput: jets/s from a ROOT file to embeddings h, on CPU and GPU, and where the time goes.

    python benchmarks/embed_throughput.py                                   # runs/qg20k/last.pt, data/qg_small.root
    python benchmarks/embed_throughput.py --device cpu --repeat 1           # quick, CPU only
    python benchmarks/embed_throughput.py --file data/big/qg_train.root --device cuda --batch-size 2048 --workers 4

Three measurements per device, each the fastest of ``--repeat`` passes over the whole file (the
first pass also loads the numba kernels, ~0.7 s; on a machine shared with other jobs the fastest
pass is the least disturbed one):

``full``
    ``Embedder.embed_file``: reading, graph building, batching, forward pass, copy to numpy;
``read+graphs``
    the same loader (``make_loader(JetDataset(...))``) without the model: reading and graph building;
``forward``
    ``Embedder.embed_graphs`` on those batches held in memory: transfer to the device, forward, copy back.

With ``--workers 0`` full ~ read+graphs + forward; with workers the two overlap. Jets/s counts
records (jet replicas). Each device runs in its own process (spawned), so the peak RSS
(``ru_maxrss``) is that device's own; on a GPU the peak of ``torch.cuda.max_memory_allocated`` is
printed too. Without ``--checkpoint`` and without ``runs/qg20k/last.pt`` a checkpoint of random
weights in the default configuration is written to a temporary folder: the speed does not depend
on the weights.
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

import torch  # noqa: E402

from gnnjets.checkpoint import save_checkpoint  # noqa: E402
from gnnjets.config import config_from_dict  # noqa: E402
from gnnjets.embed import Embedder  # noqa: E402
from gnnjets.data import JetDataset, make_loader  # noqa: E402
from gnnjets.nn import build_model  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "runs/qg20k/last.pt"


def random_checkpoint(folder: Path) -> Path:
    """A checkpoint of the default config with seeded random weights."""
    config = config_from_dict({}).to_dict()
    return save_checkpoint(folder / "random.pt", {"config": config,
                                                  "model": build_model(config["model"], seed=0).state_dict()})


def measure(checkpoint: str, path: str, device: str, batch_size: int, workers: int, repeat: int) -> dict:
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
    result = {"jets": jets, "dim": embedder.dim, "threads": torch.get_num_threads(),
              "full": jets / min(full), "read": jets / min(read), "forward": jets / min(forward),
              "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "gpu_mb": float("nan")}
    if embedder.device.type == "cuda":
        result["gpu_mb"] = torch.cuda.max_memory_allocated(embedder.device) / 2**20
        result["gpu"] = torch.cuda.get_device_name(embedder.device)
    return result


def _worker(args, checkpoint: str, device: str, queue) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    queue.put(measure(checkpoint, args.file, device, args.batch_size, args.workers, args.repeat))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help=f"default {DEFAULT_CHECKPOINT.relative_to(ROOT)} if present, else random weights")
    parser.add_argument("--file", default=str(ROOT / "data/qg_small.root"), help="ROOT file to embed")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
                        help="devices to measure (default: cpu, and cuda when available)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes building graphs")
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the fastest counts")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    tmp = tempfile.TemporaryDirectory(prefix="embed_throughput_")
    if args.checkpoint is None:
        args.checkpoint = str(DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else random_checkpoint(Path(tmp.name)))
    print(f"checkpoint {args.checkpoint}, file {args.file}, batch size {args.batch_size}, workers {args.workers}, "
          f"fastest of {args.repeat} pass(es)")
    print(f"{'device':>6} {'jets':>6} {'D':>4} {'threads':>7} {'full/s':>8} {'read+graphs/s':>13} {'forward/s':>9} "
          f"{'peak RSS MB':>11} {'GPU MB':>7}")
    context = multiprocessing.get_context("spawn")
    status = 0
    for device in args.device:
        queue = context.Queue()
        process = context.Process(target=_worker, args=(args, args.checkpoint, device, queue))
        process.start()
        process.join()  # the result is a small dict: it fits the queue's pipe, no deadlock
        if process.exitcode != 0:
            print(f"{device:>6} failed (exit code {process.exitcode})", flush=True)
            status = 1
            continue
        r = queue.get()
        print(f"{device:>6} {r['jets']:>6} {r['dim']:>4} {r['threads']:>7} {r['full']:>8.0f} {r['read']:>13.0f} "
              f"{r['forward']:>9.0f} {r['rss_mb']:>11.0f} {r['gpu_mb']:>7.0f}"
              + (f"  ({r['gpu']})" if "gpu" in r else ""), flush=True)
    tmp.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
