"""``detector-sim``: generate Pythia8 jets and write their detector replicas to ROOT.

    detector-sim generate --config configs/sim/qg.yaml --events 2000 --replicas 2 --seed 1 \\
        --out data/qg.root [--workers 2] [--set jets.pt_min_gev=300]
    detector-sim info data/qg.root

Bad input (unknown config key, unknown process, replicas < 1, events < 1, an output path that
cannot be written, a config that does not parse) gives a one-line error and exit code 2, and
nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector_sim.config import ConfigError, load_config
from detector_sim.simulate import ShardStats, shard_plan, simulate_shard
from detector_sim.writer import JetWriter, read_provenance
from gnnjets import __version__
from gnnjets.base.errors import UnreadableFileError
from gnnjets.base.outputs import OutputPathError, check_output_path

EXIT_USAGE = 2


def _versions() -> dict:
    out = {}
    for package in ("gnnjets", "pythia8mc", "fastjet", "numpy", "uproot", "awkward", "numba"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _integer(name: str, minimum: int):
    """argparse type: an integer >= ``minimum``, with an error that names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}, not {value}")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-sim", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"%(prog)s (gnnjets {__version__})")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate events and write jet replicas to a ROOT file")
    gen.add_argument("--config", required=True, help="simulation config YAML (configs/sim/qg.yaml, top.yaml, qcd.yaml)")
    gen.add_argument("--events", required=True, type=_integer("--events", 1), help="number of Pythia events to generate")
    gen.add_argument("--replicas", default=2, type=_integer("--replicas", 1), help="detector replicas per jet (default 2)")
    gen.add_argument("--seed", default=0, type=_integer("--seed", 0), help="base seed (default 0)")
    gen.add_argument("--out", required=True, help="output .root file (written atomically)")
    gen.add_argument("--workers", default=1, type=_integer("--workers", 1), help="processes; the output does not depend on it")
    gen.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a config field, e.g. --set jets.pt_min_gev=300 (repeatable)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    info = commands.add_parser("info", help="print the provenance and jet counts of a file")
    info.add_argument("path")
    return parser


def _run_shard(args):
    return simulate_shard(*args)


def generate(args) -> int:
    config = load_config(args.config, args.overrides)
    out = check_output_path(args.out)
    plan = shard_plan(args.events, config.sharding.events_per_shard)
    tasks = [(config, args.seed, shard, n, args.replicas) for shard, n in plan]
    provenance = {
        "config": config.to_dict(), "config_file": str(args.config), "overrides": args.overrides,
        "seed": args.seed, "replicas": args.replicas, "events_requested": args.events,
        "seeding": "numpy SeedSequence(seed, spawn_key=(0, event_id, replica)); Pythia seed per shard from spawn_key=(1, shard)",
        "versions": _versions(), "command": " ".join(sys.argv),
    }
    stats = ShardStats()
    start = time.perf_counter()
    progress = tqdm(total=args.events, unit="event", disable=args.quiet, file=sys.stderr, desc=f"{config.process} -> {out.name}")
    with JetWriter(out, provenance) as writer:
        if args.workers == 1:
            results = map(_run_shard, tasks)
        else:
            pool = ProcessPoolExecutor(max_workers=args.workers)
            results = pool.map(_run_shard, tasks)
        try:
            for batch, shard_stats in results:
                writer.write(batch)
                stats.add(shard_stats)
                progress.update(shard_stats.events)
                progress.set_postfix(jets=stats.jets_written)
        finally:
            if args.workers > 1:
                pool.shutdown(cancel_futures=True)
        writer.provenance["counts"] = vars(stats)
        writer.provenance["wall_seconds"] = round(time.perf_counter() - start, 2)
    progress.close()
    print(f"wrote {out}: {stats.jets_written} jets x {args.replicas} replicas from {stats.events} events "
          f"({stats.jets_dropped_unmatched} of {stats.truth_jets} selected truth jets dropped: a replica had no matching reco jet)")
    return 0


def info(args) -> int:
    import uproot

    path = Path(args.path)
    if not path.is_file():
        raise OutputPathError(f"{path} does not exist")
    try:  # a damaged or foreign file is one line, not uproot's traceback
        with uproot.open(path) as file:
            trees = sorted(k.split(";")[0] for k, c in file.classnames().items() if c == "TTree")
            if "jets" not in trees:
                raise UnreadableFileError(f"{path} holds no TTree 'jets' (TTrees: {', '.join(trees) or 'none'}); "
                                          f"it is not a detector-sim output")
            arrays = file["jets"].arrays(["label", "jet_pt", "truth_pt", "ncell", "ntrack"], library="np")
            has_provenance = "provenance" in file
        provenance = read_provenance(path) if has_provenance else None
    except UnreadableFileError:
        raise
    except Exception as error:  # uproot and the decompressors raise many types
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
        raise UnreadableFileError(f"{path} is not a readable detector-sim file ({reason}); it may be truncated or "
                                  f"damaged: regenerate it") from None
    if provenance is None:
        print(f"{path}: no provenance (not written by detector-sim, or by a version without it)")
    else:
        print(json.dumps({k: provenance[k] for k in ("config_file", "seed", "replicas", "counts", "versions")
                          if k in provenance}, indent=1))
    if len(arrays["label"]):
        print(f"entries {len(arrays['label'])}, label=1 fraction {np.mean(arrays['label'] == 1):.3f}, "
              f"median cells {np.median(arrays['ncell']):.0f}, median tracks {np.median(arrays['ntrack']):.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return generate(args) if args.command == "generate" else info(args)
    except (ConfigError, OutputPathError, UnreadableFileError) as err:
        print(f"detector-sim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("detector-sim: interrupted; no output file was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
