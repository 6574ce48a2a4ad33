"""``gnnjets-study``: the ablation and label-efficiency study of a pretext task, with error bars.

    gnnjets-study --config configs/study/quick.yaml                  # minutes, on the bundled samples
    gnnjets-study --config configs/study/full.yaml                   # the full q/g study (docs/results.md gives its cost)
    gnnjets-study --config configs/study/full.yaml --resume          # continue: finished arms and fits are kept
    gnnjets-study --config configs/study/full.yaml --report          # the report of the fits finished so far
    gnnjets-study --config configs/study/quick.yaml --set out_dir=runs/study/mine --set subsets=3

The run folder holds each arm's pretraining, the cached features, ``fits.jsonl`` (every fit as it
finishes), ``results.json``, ``results.md`` (tables with mean ± std and the targets) and the plots.
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, run_command

PROG = "gnnjets-study"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", required=True, help="study config YAML (configs/study/quick.yaml, full.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set subsets=3 (repeatable)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--resume", action="store_true", help="continue the study in out_dir, keeping finished work")
    what.add_argument("--overwrite", action="store_true", help="start afresh in an out_dir that holds a study")
    what.add_argument("--report", action="store_true",
                      help="run nothing: write the report of the fits finished so far (a running or stopped study)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    add_common_arguments(parser)
    return parser


def _study(args) -> int:
    from pathlib import Path

    from gnnjets.study.config import load_study_config

    overrides = list(args.overrides) + ([f"threads={args.threads}"] if args.threads is not None else [])
    config = load_study_config(args.config, overrides)  # a bad config fails before torch is imported
    from gnnjets.study.runner import run_study, write_study_report

    if args.report:
        summary = write_study_report(config)
    else:
        summary = run_study(config, resume=args.resume, overwrite=args.overwrite)
    print((Path(config.out_dir) / "results.md").read_text())
    for target in summary["targets"]:
        print(f"{target['status']:>10s}  {target['target']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, _study, _parser().parse_args(argv), errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
