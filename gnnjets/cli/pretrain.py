"""``gnnjets-pretrain``: contrastive pretraining of a jet backbone on detector replicas.

    gnnjets-pretrain --config configs/pretrain/default.yaml --set data.train=[data/big/qg_train.root]
    gnnjets-pretrain --config configs/pretrain/default.yaml --resume          # continue runs/pretrain/last.pt
    torchrun --nproc_per_node=2 -m gnnjets.cli.pretrain --config ...          # DDP (gloo on CPU, NCCL on GPU)
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, run_command

PROG = "gnnjets-pretrain"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", default="configs/pretrain/default.yaml", help="pretraining config YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config field, e.g. --set optim.max_steps=500 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/last.pt")
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
    result = pretrain(config, resume=args.resume)
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
