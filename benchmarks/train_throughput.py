"""Training throughput of the backbones: jet graphs per second for one optimiser step, and peak memory.

A step is forward (backbone + projection head) + backward + AdamW update on a batch of synthetic jet
graphs of realistic size (default: 100-130 nodes, a quarter of them tracks, 10-16 in-edges per node,
the layout of :mod:`gnnjets.graphs.features`); the contrastive loss itself is negligible and replaced
by a mean square of z. Jets/s counts graphs (jet replicas): a batch of 128 pairs is 256 graphs.
Each configuration runs in its own process so that the peak RSS (``resource.ru_maxrss``) is its own;
on a GPU (``--device cuda``: bf16 autocast) the peak is ``torch.cuda.max_memory_allocated``.
Two rates: from the median step and from the fastest; on a machine shared with other jobs the
fastest step is the least disturbed (2-thread scatter operations slow down several-fold when another
process holds a core: compare with ``--threads 1``).

    python benchmarks/train_throughput.py                     # CPU, 2 threads, CPU default sizes
    python benchmarks/train_throughput.py --device cuda --preset gpu --batch-size 1024
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
import torch
from torch_geometric.data import Batch, Data

from gnnjets.graphs.features import NODE_TYPE_ONEHOT, NUM_NODE_FEATURES, TRACK, edge_attributes
from gnnjets.nn import ModelConfig, build_model

#: the configurations measured: name -> backbone overrides of the chosen preset
VARIANTS = {
    "edgeconv": {},
    "edgeconv max-aggr": {"aggregation": "max"},
    "edgeconv IR-safe": {"aggregation": "energy", "pooling": "energy"},
    "gatv2": {"kind": "gatv2"},
    "gatv2 IR-safe": {"kind": "gatv2", "attention_energy_beta": 0.5, "pooling": "energy"},
}


def synthetic_batch(num_graphs: int, nodes: tuple[int, int], edges_per_node: tuple[int, int],
                    generator: torch.Generator) -> Batch:
    """``num_graphs`` random jet graphs: cells then tracks (a quarter), features ~ N(0, 1) with the
    node-type one-hot set, positions ~ N(0, 0.15) rad, energies ~ Exp(5 GeV), in-edges from random
    nodes of the same graph, random edge types."""
    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(nodes[0], nodes[1] + 1, (), generator=generator))
        n_tracks = n // 4
        node_type = torch.cat([torch.randint(0, TRACK, (n - n_tracks,), generator=generator),
                               torch.full((n_tracks,), TRACK)])
        x = torch.randn(n, NUM_NODE_FEATURES, generator=generator)
        x[:, NODE_TYPE_ONEHOT] = torch.nn.functional.one_hot(node_type, TRACK + 1).float()
        pos = 0.15 * torch.randn(n, 2, generator=generator)
        energy = torch.empty(n).exponential_(0.2, generator=generator)
        in_degree = torch.randint(edges_per_node[0], edges_per_node[1] + 1, (n,), generator=generator)
        target = torch.repeat_interleave(torch.arange(n), in_degree)
        source = (target + torch.randint(1, n, target.shape, generator=generator)) % n  # no self loops
        edge_index = torch.stack([source, target])
        edge_type = torch.randint(0, 4, (edge_index.shape[1],), generator=generator)
        graphs.append(Data(x=x, pos=pos, energy=energy, node_type=node_type, edge_index=edge_index,
                           edge_attr=edge_attributes(pos, edge_index, edge_type)))
    return Batch.from_data_list(graphs)


def measure(args: argparse.Namespace, name: str) -> dict:
    """One configuration: median step time over ``args.steps`` after ``args.warmup`` steps, peak memory."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = dict(VARIANTS[name])
    if args.hidden:
        overrides["hidden"] = args.hidden
    if args.layers:
        overrides["layers"] = args.layers
    config = ModelConfig.preset(args.preset, **overrides)
    generator = torch.Generator().manual_seed(args.seed)
    batch = synthetic_batch(args.batch_size, tuple(args.nodes), tuple(args.edges_per_node), generator).to(device)
    model = build_model(config, seed=args.seed).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cuda = device.type == "cuda"
    idle_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            _, z = model(batch)
            loss = z.float().square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times = []
    for i in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if cuda
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return dict(name=name, hidden=config.backbone.hidden, layers=config.backbone.layers,
                median_s=statistics.median(times), min_s=min(times), peak_mib=peak,
                idle_mib=None if cuda else idle_rss, parameters=sum(p.numel() for p in model.parameters()),
                nodes=batch.num_nodes / args.batch_size, edges=batch.num_edges / args.batch_size)


def _worker(args, name, queue) -> None:
    queue.put(measure(args, name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast)")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "gpu"), help="ModelConfig.preset")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                        help=f"configurations to measure (default all: {', '.join(VARIANTS)})")
    parser.add_argument("--hidden", type=int, help="override the preset's hidden width")
    parser.add_argument("--layers", type=int, help="override the preset's number of layers")
    parser.add_argument("--batch-size", type=int, default=256, help="graphs per step")
    parser.add_argument("--nodes", type=int, nargs=2, default=(100, 130), metavar=("MIN", "MAX"))
    parser.add_argument("--edges-per-node", type=int, nargs=2, default=(10, 16), metavar=("MIN", "MAX"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--steps", type=int, default=6, help="timed steps (median and fastest reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("--device cuda: no CUDA device available", file=sys.stderr)
        return 2
    where = torch.cuda.get_device_name(args.device) if cuda else f"CPU, {args.threads} threads"
    print(f"{where}; batch {args.batch_size} graphs of {args.nodes[0]}-{args.nodes[1]} nodes, "
          f"{args.edges_per_node[0]}-{args.edges_per_node[1]} in-edges per node; preset {args.preset!r}; "
          f"{args.steps} timed steps")
    memory = "peak GPU [MiB]" if cuda else "peak RSS (idle) [MiB]"
    print(f"{'backbone':18s} {'H':>4s} {'L':>2s} {'params':>7s} {'nodes/jet':>9s} {'edges/jet':>9s} "
          f"{'step med [s]':>12s} {'jets/s med':>10s} {'jets/s max':>10s}  {memory}")
    context = multiprocessing.get_context("spawn")
    for name in args.variants:
        queue = context.Queue()
        process = context.Process(target=_worker, args=(args, name, queue))
        process.start()
        process.join()  # the result is a small dict: it fits the queue's pipe, no deadlock
        if process.exitcode != 0:
            print(f"{name}: the measuring process failed (exit code {process.exitcode})", file=sys.stderr)
            return 1
        r = queue.get()
        idle = f" ({r['idle_mib']:.0f})" if r["idle_mib"] is not None else ""
        print(f"{name:18s} {r['hidden']:4d} {r['layers']:2d} {r['parameters']:7d} {r['nodes']:9.1f} {r['edges']:9.0f} "
              f"{r['median_s']:12.3f} {args.batch_size / r['median_s']:10.0f} {args.batch_size / r['min_s']:10.0f}  "
              f"{r['peak_mib']:.0f}{idle}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
