"""``detector-sim``: generate Pythia8 jets and write their detector replicas to ROOT.

    detector-sim generate --config configs/sim/qg.yaml --events 2000 --replicas 2 --seed 1 \\
        --out data/qg.root [--workers 2] [--replica-mode hadronization] [--set jets.pt_min_gev=300]
    detector-sim generate ... --shard 3/10 --out parts/qg-3.root       # one of 10 batch jobs
    detector-sim merge --out data/qg.root parts/qg-*.root               # = the single run's file
    detector-sim generate ... --scheduler tcp://host:8786               # shards on a Dask cluster
    detector-sim generate ... --scheduler local --workers 4             # or on a local one
    detector-sim info data/qg.root

Bad input (unknown config key, process or replica mode, replicas < 1, events < 1, a bad
``--shard``, an output path that cannot be written, a config that does not parse, parts of
different runs) gives a one-line error and exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from detector_sim.config import REPLICA_MODES, ConfigError, load_config, validate
from gnnjets import __version__
from gnnjets.base.errors import UnreadableFileError
from gnnjets.base.logs import add_logging_arguments, configure_logging
from gnnjets.base.outputs import OutputPathError, check_output_path

EXIT_USAGE = 2
log = logging.getLogger("detector_sim.cli")


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


def _shard(text: str) -> tuple[int, int]:
    """argparse type for ``--shard i/N``: 0 <= i < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/N (e.g. 3/10), not {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text}: need N >= 1 and 0 <= i < N (parts are numbered from 0)")
    return index, count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-sim", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"%(prog)s (gnnjets {__version__})")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate events and write jet replicas to a ROOT file")
    gen.add_argument("--config", required=True, help="simulation config YAML (configs/sim/*.yaml)")
    gen.add_argument("--events", required=True, type=_integer("--events", 1), help="number of Pythia events to generate")
    gen.add_argument("--replicas", default=2, type=_integer("--replicas", 1), help="replicas per jet (default 2)")
    gen.add_argument("--replica-mode", choices=REPLICA_MODES, default=None,
                     help="what differs between replicas (default: the config's replicas.mode, 'detector')")
    gen.add_argument("--seed", default=0, type=_integer("--seed", 0), help="base seed (default 0)")
    gen.add_argument("--out", required=True, help="output .root file (written atomically)")
    gen.add_argument("--workers", default=1, type=_integer("--workers", 1),
                     help="processes (with --scheduler local: Dask workers); the output does not depend on it")
    gen.add_argument("--shard", type=_shard, default=None, metavar="i/N",
                     help="simulate only part i of N (for batch-job arrays); combine the parts with 'merge'")
    gen.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the shards on Dask: a scheduler address (tcp://host:8786) or 'local'")
    gen.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a config field, e.g. --set jets.pt_min_gev=300 (repeatable)")
    add_logging_arguments(gen)
    merge = commands.add_parser("merge", help="merge the --shard i/N part files of one run into the single run's file")
    merge.add_argument("--out", required=True, help="output .root file (written atomically)")
    merge.add_argument("inputs", nargs="+", help="the N part files, in any order")
    add_logging_arguments(merge)
    info = commands.add_parser("info", help="print the provenance and jet counts of a file")
    info.add_argument("path")
    add_logging_arguments(info)  # the same -v/-q on every subcommand
    return parser


def generate(args) -> int:
    from detector_sim.run import Request, generate_file  # the simulation: imported after parsing (fast --help)

    overrides = list(args.overrides)
    config = load_config(args.config, overrides)
    if args.replica_mode is not None:
        config.replicas.mode = args.replica_mode
        validate(config)
    out = check_output_path(args.out)
    request = Request(config=config, config_file=str(args.config), seed=args.seed, replicas=args.replicas,
                      events=args.events, out=out, overrides=overrides, workers=args.workers, part=args.shard,
                      scheduler=args.scheduler, progress=not args.quiet, command=" ".join(sys.argv))
    counts = generate_file(request)
    log.info("wrote %s: %d jets x %d replicas (%s mode) from %d events (%d of %d selected truth jets dropped: "
             "a replica had no matching reco jet%s)", out, counts["jets_written"], args.replicas, config.replicas.mode,
             counts["events"], counts["jets_dropped_unmatched"], counts["truth_jets"],
             f"; {counts['jets_dropped_balance']} dropped to balance the labels" if config.jets.balance and not args.shard else "")
    return 0


def merge(args) -> int:
    from detector_sim.run import merge_files

    out = check_output_path(args.out)
    counts = merge_files(args.inputs, out, command=" ".join(sys.argv))
    log.info("wrote %s: %d jets from %d parts", out, counts["jets_written"], len(args.inputs))
    return 0


def info(args) -> int:
    from detector_sim.run import read_counts

    path = Path(args.path)
    if not path.is_file():
        raise OutputPathError(f"{path} does not exist")
    result = read_counts(path)
    provenance = result["provenance"]
    if provenance is None:
        print(f"{path}: no provenance (not written by detector-sim, or by a version without it)")
    else:
        keys = ("config_file", "seed", "replicas", "replica_mode", "counts", "part", "versions")
        print(json.dumps({k: provenance[k] for k in keys if k in provenance}, indent=1))
    summary = result["summary"]
    if summary["entries"]:
        print(f"entries {summary['entries']}, label=1 fraction {summary['label_1_fraction']:.3f}, "
              f"median cells {summary['median_cells']:.0f}, median tracks {summary['median_tracks']:.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from detector_sim.backends import BackendError
    if args.command != "info":
        configure_logging("detector-sim", verbose=args.verbose, quiet=args.quiet)
    try:
        return {"generate": generate, "merge": merge, "info": info}[args.command](args)
    except (ConfigError, OutputPathError, BackendError, UnreadableFileError) as err:
        print(f"detector-sim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("detector-sim: interrupted; no output file was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
