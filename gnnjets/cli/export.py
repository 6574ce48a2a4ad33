"""``gnnjets-export``: a trained backbone (optionally with its downstream head) as an ONNX model.

    gnnjets-export runs/pretrain/last.pt --out backbone.onnx                      # jets -> h (B, D)
    gnnjets-export runs/downstream/qg/models/pretrained-linear-N0.pt --head --out qg.onnx   # -> score (B,)

The model's inputs (x, node_type, edge_index, edge_attr, [energy], batch, graph_nodes) are listed
with their shapes in the README and in `python -m pydoc gnnjets.export`.
"""

from __future__ import annotations

import argparse
import sys

from gnnjets.base.cli import add_common_arguments, plain_text, run_command

PROG = "gnnjets-export"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__.split("\n\n")[0]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=plain_text(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("checkpoint", help="a gnnjets checkpoint (pretraining, or a downstream model with --head)")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--head", action="store_true", help="include the downstream head: the output is its score")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    add_common_arguments(parser)
    return parser


def _export(args) -> int:
    from gnnjets.base.outputs import check_output_path
    from gnnjets.export import export_onnx

    out = check_output_path(args.out, suffixes=(".onnx",))
    export_onnx(args.checkpoint, out, head=args.head, opset=args.opset)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(PROG, _export, _parser().parse_args(argv), errors=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
