"""``gnnjets-pretrain``: contrastive pretraining of a jet backbone on detector replicas.

    gnnjets-pretrain --config default --set data.train=[data/big/qg_train.root]
    gnnjets-pretrain --config default --resume                    # continue runs/pretrain/last.pt
    gnnjets-pretrain --config my.yaml --overwrite                 # start afresh in a folder with an earlier run
    torchrun --nproc_per_node=2 -m gnnjets.cli.pretrain --config ...          # DDP (gloo on CPU, NCCL on GPU)

A run folder (train.out_dir) that holds an earlier run is refused unless --resume or --overwrite is
given; nothing is written before the config and the data have been read.
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, plain_text, run_command

PROG = "gnnjets-pretrain"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__.split("\n\n")[0]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=plain_text(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--config", default="default",
                        help="pretraining config: a YAML path or a shipped name (default: default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config field, e.g. --set optim.max_steps=500 (repeatable)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/last.pt")
    again.add_argument("--overwrite", action="store_true",
                       help="start afresh in a train.out_dir that holds an earlier run, replacing its files")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: the CPUs this process may use, less the data workers)")
    add_common_arguments(parser)
    return parser


def _pretrain(args) -> int:
    from gnnjets.config import load_config
    from gnnjets.train.pretrain import pretrain

    overrides = list(args.overrides)
    if args.threads is not None:
        overrides.append(f"train.threads={args.threads}")
    if args.quiet:
        overrides.append("train.progress=false")
    config = load_config(args.config, overrides)
    result = pretrain(config, resume=args.resume, overwrite=args.overwrite)
    diagnostics = result.diagnostics
    print(f"step {result.step}: loss {result.loss:.4f}, positive cosine {diagnostics.get('pos_cosine', float('nan')):.3f}, "
          f"negative cosine {diagnostics.get('neg_cosine', float('nan')):.3f}, effective rank of h "
          f"{diagnostics.get('effective_rank_h', float('nan')):.1f}"
          + (f", linear-probe AUC {result.probe_auc:.3f}" if result.probe_auc is not None else ""))
    print(f"checkpoint: {result.checkpoint}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # ValueError: the library's argument checks (bad values reach it through --set)
    return run_command(PROG, _pretrain, _parser().parse_args(argv), errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
