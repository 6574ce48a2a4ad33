"""``gnnjets-plot``: draw the plots of a finished downstream run again from its results.json.

    gnnjets-plot runs/downstream/qg/results.json                 # roc.png/.pdf, label_efficiency*.png/.pdf
    gnnjets-plot runs/downstream/energy/results.json --out talk/  # response.png/.pdf into another folder

The ROC curves need the run's predictions.npz beside results.json; the label-efficiency curves
come from results.json alone. The plots use mplhep's style when mplhep is installed.
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, plain_text, run_command

PROG = "gnnjets-plot"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__.split("\n\n")[0]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=plain_text(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("results", metavar="results.json", help="the results.json of a gnnjets-downstream run")
    parser.add_argument("--out", metavar="DIR", default=None, help="folder for the plots (default: beside results.json)")
    add_common_arguments(parser)
    return parser


def _plot(args) -> int:
    from gnnjets.tasks.report import redraw

    files = redraw(args.results, args.out)
    if not files:
        print(f"{PROG}: nothing to draw (no predictions.npz and a single label count)", file=sys.stderr)
    for name, path in files.items():
        print(f"{name}: {path} (and .pdf)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, _plot, _parser().parse_args(argv), errors=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
