"""A simulation run into one file: its shards, ``--shard i/N`` parts of it, merging the parts, the provenance.

A run of ``events`` events is cut into shards of ``sharding.events_per_shard`` events
(:func:`~detector_sim.simulate.shard_plan`); the shards' seeds depend on their index only. A part
``i/N`` (:func:`generate_file` with ``part``) simulates the ``i``-th of ``N`` contiguous blocks of
shards and writes them to its own file, unbalanced, with a ``part`` record in its provenance;
:func:`merge_files` reads the ``N`` part files in order and writes what the single run would
have written: the same entries in the same order (balanced if the config asks for it) and the
same provenance except the ``run`` record (command, wall time, backend), which says how this
particular file was made.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from tqdm import tqdm

from detector_sim import backends
from detector_sim.balance import Balancer
from detector_sim.config import SimConfig
from detector_sim.simulate import ShardStats, shard_plan
from detector_sim.writer import JetWriter, read_provenance
from gnnjets.base.config import ConfigError
from gnnjets.base.outputs import OutputPathError
from gnnjets.base.errors import UnreadableFileError
from gnnjets.io import schema

log = logging.getLogger(__name__)

SEEDING = ("numpy SeedSequence(seed, spawn_key=(stream, ...)): detector draws (0, event_id, replica), "
           "Pythia per shard (1, shard), re-hadronisation (2, event_id, replica), augmentations "
           "(3, event_id, replica), pile-up choice (4, event_id, replica), minimum-bias pool (5, shard)")
#: provenance keys that may differ between a single run and the merge of its parts
RUN_KEYS = ("run", "part", "entries")
#: entries read per step when merging (whole jets: a multiple of the replicas)
_MERGE_JETS_PER_STEP = 2000


@dataclass
class Request:
    """What ``detector-sim generate`` was asked for."""

    config: SimConfig
    config_file: str
    seed: int
    replicas: int
    events: int
    out: Path
    overrides: list[str] = field(default_factory=list)
    workers: int = 1
    part: tuple[int, int] | None = None  # (i, N): the i-th of N blocks of shards
    scheduler: str | None = None  # Dask scheduler address or "local"; None: no Dask
    progress: bool = True
    command: str = ""


def versions() -> dict:
    out = {}
    for package in ("gnnjets", "pythia8mc", "fastjet", "numpy", "uproot", "awkward", "numba"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def part_of_plan(plan: list[tuple[int, int]], index: int, count: int) -> list[tuple[int, int]]:
    """The ``index``-th of ``count`` contiguous blocks of ``plan`` (sizes differ by at most one; may be empty)."""
    if not 0 <= index < count:
        raise ConfigError(f"--shard {index}/{count}: the index must be in 0..{count - 1}")
    bounds = [len(plan) * k // count for k in range(count + 1)]
    return plan[bounds[index]:bounds[index + 1]]


def provenance_of(request: Request) -> dict:
    """The provenance a file of this request gets before its counts are known."""
    return {
        "config": request.config.to_dict(), "config_file": str(request.config_file), "overrides": list(request.overrides),
        "seed": request.seed, "replicas": request.replicas, "events_requested": request.events,
        "replica_mode": request.config.replicas.mode, "seeding": SEEDING, "versions": versions(),
    }


def _results(request: Request, tasks: list[tuple]):
    if request.scheduler is not None:
        return backends.run_on_dask(tasks, request.scheduler, request.workers)
    if request.workers > 1:
        return backends.run_in_pool(tasks, request.workers)
    return backends.run_in_process(tasks)


def _counts(stats: ShardStats, balancer: Balancer | None) -> dict:
    counts = dict(vars(stats), jets_dropped_balance=0)
    if balancer is not None:
        counts["jets_dropped_balance"] = balancer.finish()
        counts["jets_written"] = balancer.jets_written
    return counts


def generate_file(request: Request) -> dict:
    """Simulate the request (or its part) into ``request.out``; return the counts written to the provenance."""
    config = request.config
    plan = shard_plan(request.events, config.sharding.events_per_shard)
    provenance = provenance_of(request)
    backend = f"dask ({request.scheduler})" if request.scheduler else f"{request.workers} processes"
    provenance["run"] = {"command": request.command, "backend": backend}
    balancer = Balancer((0, 1), request.replicas) if config.jets.balance else None
    if request.part is not None:
        index, count = request.part
        first = len(plan) * index // count
        plan = part_of_plan(plan, index, count)
        provenance["part"] = {"index": index, "count": count, "shards": [first, first + len(plan)]}
        balancer = None  # parts are balanced when merged
    tasks = [(config, request.seed, shard, n, request.replicas) for shard, n in plan]
    stats = ShardStats()
    start = time.perf_counter()
    progress = tqdm(total=sum(n for _, n in plan), unit="event", disable=not request.progress, file=sys.stderr,
                    desc=f"{config.process} -> {request.out.name}")
    with JetWriter(request.out, provenance) as writer:
        for batch, shard_stats in _results(request, tasks):
            stats.add(shard_stats)
            progress.update(shard_stats.events)
            progress.set_postfix(jets=stats.jets_written)
            if balancer is not None:
                batch = balancer.push(batch)
            if batch is not None:
                writer.write(batch)
        counts = _counts(stats, balancer)
        writer.provenance["counts"] = counts
        writer.provenance["run"]["wall_seconds"] = round(time.perf_counter() - start, 2)
    progress.close()
    return counts


def merge_files(inputs: list[str | Path], out: str | Path, command: str = "") -> dict:
    """Merge the part files of one run into ``out``, as the single run would have written it; return its counts."""
    if not inputs:
        raise OutputPathError("merge needs the part files of one run (detector-sim generate --shard i/N)")
    parts = []
    for path in map(Path, inputs):
        if not path.is_file():
            raise OutputPathError(f"{path} does not exist")
        provenance = read_provenance(path)
        if "part" not in provenance:
            raise ConfigError(f"{path} is not a part file (made without --shard i/N); merge only combines parts of one run")
        parts.append((provenance["part"]["index"], path, provenance))
    parts.sort(key=lambda item: item[0])
    count = parts[0][2]["part"]["count"]
    indices = [index for index, _, _ in parts]
    if indices != list(range(count)):
        missing = sorted(set(range(count)) - set(indices))
        raise ConfigError(f"the parts must be 0..{count - 1} of one run, each once; got {indices}"
                          + (f" (missing {missing})" if missing else ""))
    reference = {key: value for key, value in parts[0][2].items() if key not in RUN_KEYS + ("counts",)}
    for _, path, provenance in parts[1:]:
        mine = {key: value for key, value in provenance.items() if key not in RUN_KEYS + ("counts",)}
        different = sorted(key for key in set(reference) | set(mine) if reference.get(key) != mine.get(key))
        if different:
            raise ConfigError(f"{path} is not a part of the same run as {parts[0][1]}: {', '.join(different)} differ")
    replicas = int(reference["replicas"])
    balancer = Balancer((0, 1), replicas) if reference["config"]["jets"]["balance"] else None
    stats = ShardStats()
    for _, _, provenance in parts:
        stats.add(ShardStats(**{k: v for k, v in provenance["counts"].items() if k in ShardStats.__dataclass_fields__}))
    start = time.perf_counter()
    provenance = dict(reference)
    provenance["run"] = {"command": command, "backend": "merge", "merged_from": [str(path) for _, path, _ in parts]}
    with JetWriter(out, provenance) as writer:
        for _, path, _ in parts:
            for batch in _read_batches(path, replicas):
                if balancer is not None:
                    batch = balancer.push(batch)
                if batch is not None:
                    writer.write(batch)
        counts = _counts(stats, balancer)
        writer.provenance["counts"] = counts
        writer.provenance["run"]["wall_seconds"] = round(time.perf_counter() - start, 2)
    return counts


def _read_batches(path: Path, replicas: int):
    """The schema columns of a file, whole jets at a time."""
    with uproot.open(path) as file:
        tree = file[schema.TREE_NAME]
        step = _MERGE_JETS_PER_STEP * replicas
        for start in range(0, tree.num_entries, step):
            arrays = tree.arrays(list(schema.BRANCH_NAMES), entry_start=start, entry_stop=start + step)
            yield {name: (ak.to_numpy(arrays[name]) if schema.collection_of(name) is None else arrays[name])
                   for name in schema.BRANCH_NAMES}


def read_counts(path: str | Path) -> dict:
    """Entries and jet counts of a file (``detector-sim info``); ``provenance`` is None for a file without.

    A file that is not ROOT, is empty, truncated or damaged, or holds no ``jets`` tree raises
    :class:`~gnnjets.base.errors.UnreadableFileError` with one line that says which.
    """
    try:  # a damaged or foreign file is one line, not uproot's traceback
        with uproot.open(path) as file:
            trees = sorted(k.split(";")[0] for k, c in file.classnames().items() if c == "TTree")
            if schema.TREE_NAME not in trees:
                raise UnreadableFileError(f"{path} holds no TTree {schema.TREE_NAME!r} (TTrees: "
                                          f"{', '.join(trees) or 'none'}); it is not a detector-sim output")
            arrays = file[schema.TREE_NAME].arrays(["label", "ncell", "ntrack"], library="np")
            has_provenance = schema.PROVENANCE_KEY in file
        provenance = read_provenance(path) if has_provenance else None
    except UnreadableFileError:
        raise
    except Exception as error:  # uproot and the decompressors raise many types
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
        raise UnreadableFileError(f"{path} is not a readable detector-sim file ({reason}); it may be truncated or "
                                  f"damaged: regenerate it") from None
    summary = {"entries": int(len(arrays["label"]))}
    if summary["entries"]:
        summary.update(label_1_fraction=float(np.mean(arrays["label"] == 1)), median_cells=float(np.median(arrays["ncell"])),
                       median_tracks=float(np.median(arrays["ntrack"])))
    return {"provenance": provenance, "summary": summary}
