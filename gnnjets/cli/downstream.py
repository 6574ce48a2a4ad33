"""``gnnjets-downstream``: heads on a frozen pretrained backbone, fine-tuning and baselines for one task.

    gnnjets-downstream --task qg --backbone runs/pretrain/last.pt --train data/big/qg_train.root \\
        --test data/big/qg_test.root --baseline scratch efp --labels 500 2000 10000
    gnnjets-downstream --task energy --backbone runs/pretrain/last.pt --train ... --baseline em calib scratch
    gnnjets-downstream --task top --backbone runs/pretrain/last.pt --train top.root qcd.root \\
        --set data.test_fraction=0.2 --baseline efp

Options given here override the config file (default: the shipped one of the task,
configs/downstream/<task>.yaml), and --set section.key=value overrides both. Results:
<run.out_dir>/results.json, plots, a table. A run folder that holds an earlier run is refused
unless --resume or --overwrite is given.
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, plain_text, run_command

PROG = "gnnjets-downstream"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__.split("\n\n")[0]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=plain_text(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--task", required=True, choices=("qg", "energy", "top"))
    parser.add_argument("--config", help="downstream config: a YAML path or a shipped name (default: the task's, "
                                         "configs/downstream/<task>.yaml)")
    parser.add_argument("--backbone", metavar="CKPT", help="pretraining checkpoint; frozen unless --finetune")
    parser.add_argument("--finetune", action="store_true", help="train the backbone too, at a smaller learning rate")
    parser.add_argument("--head", choices=("linear", "mlp"), help="head on the embedding (default linear)")
    parser.add_argument("--train", nargs="+", metavar="ROOT", help="labelled training files")
    parser.add_argument("--val", nargs="+", metavar="ROOT", help="validation files (default: a fraction of --train)")
    parser.add_argument("--test", nargs="+", metavar="ROOT", help="test files (default: data.test_fraction of --train)")
    parser.add_argument("--labels", nargs="+", type=int, metavar="N",
                        help="labelled training jets (0: all); several values give the label-efficiency curve")
    parser.add_argument("--baseline", nargs="+", metavar="NAME",
                        help="baselines on the same jets: scratch, efp (qg, top); scratch, em, calib (energy)")
    parser.add_argument("--out", metavar="DIR", help="run folder (default runs/downstream/<task>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config field, e.g. --set supervised.epochs=5 (repeatable)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the end-to-end trainings of an interrupted run in the run folder")
    again.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run in the run folder")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: the CPUs this process may use)")
    add_common_arguments(parser)
    return parser


def _downstream(args) -> int:
    from gnnjets.base.resources import shipped_config
    from gnnjets.tasks.config import RunSection, load_config
    from gnnjets.train.downstream import results_table, run_downstream

    config_path = args.config
    if config_path is None and shipped_config("downstream", args.task) is not None:
        config_path = shipped_config("downstream", args.task)
    base = {"task": args.task}
    if args.out is not None:
        base["run.out_dir"] = args.out
    for key, value in (("backbone.checkpoint", args.backbone), ("head.kind", args.head), ("data.train", args.train),
                       ("data.val", args.val), ("data.test", args.test), ("data.labels", args.labels),
                       ("baselines", args.baseline)):
        if value is not None:
            base[key] = value
    if args.finetune:
        base["backbone.finetune"] = True
    if args.threads is not None:
        base["run.threads"] = args.threads
    if args.quiet:
        base["run.progress"] = False
    config = load_config(config_path, args.overrides, base=base)
    if config.run.out_dir == RunSection.out_dir:  # not set anywhere: one folder per task
        config.run.out_dir = f"{RunSection.out_dir}/{args.task}"
    summary = run_downstream(config, resume=args.resume, overwrite=args.overwrite)
    print(results_table(summary))
    for name, path in summary["files"].items():
        print(f"{name}: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # ValueError: the library's argument checks (bad values reach it through --set)
    return run_command(PROG, _downstream, _parser().parse_args(argv), errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
