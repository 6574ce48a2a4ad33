"""``gnnjets-pretrain``: contrastive pretraining of a jet backbone on detector replicas.

    gnnjets-pretrain --config configs/pretrain/default.yaml --set data.train=[data/big/qg_train.root]
    gnnjets-pretrain --config configs/pretrain/default.yaml --resume          # continue runs/pretrain/last.pt
    torchrun --nproc_per_node=2 -m gnnjets.cli.pretrain --config ...          # DDP (gloo on CPU, NCCL on GPU)
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.config import ConfigError
from gnnjets.data import ReplicaGroupError
from gnnjets.io.errors import JetFileNotFoundError
from gnnjets.train.pretrain import TrainingError, pretrain

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gnnjets-pretrain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/pretrain/default.yaml", help="pretraining config YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config field, e.g. --set optim.max_steps=500 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from <train.out_dir>/last.pt")
    args = parser.parse_args(argv)
    from gnnjets.config import load_config

    try:
        config = load_config(args.config, args.overrides)
        result = pretrain(config, resume=args.resume)
    except (ConfigError, TrainingError, ReplicaGroupError, FileNotFoundError, JetFileNotFoundError, ValueError) as err:
        print(f"gnnjets-pretrain: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    diagnostics = result.diagnostics
    print(f"step {result.step}: loss {result.loss:.4f}, positive cosine {diagnostics.get('pos_cosine', float('nan')):.3f}, "
          f"negative cosine {diagnostics.get('neg_cosine', float('nan')):.3f}, effective rank of h "
          f"{diagnostics.get('effective_rank_h', float('nan')):.1f}"
          + (f", linear-probe AUC {result.probe_auc:.3f}" if result.probe_auc is not None else ""))
    print(f"checkpoint: {result.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
