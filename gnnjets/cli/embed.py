"""``gnnjets-embed``: embed the jets of ROOT files with a trained backbone; the output is a friend tree.

    gnnjets-embed runs/qg20k/last.pt data/qg_small.root --out emb.root           # TTree 'embedding'
    gnnjets-embed runs/qg20k/last.pt data/qg_small.root --out emb.npz            # or .parquet
    gnnjets-embed CKPT foreign.root --mapping cocoa --out emb.root --device cpu --batch-size 256
    gnnjets-embed --info runs/qg20k/last.pt                                        # the checkpoint's model card

The ROOT output holds a TTree ``embedding`` with one entry per input entry, in order: ``h``
(``float[D]``), ``entry``, ``event_id``, ``jet_index``, ``replica`` (and ``file_index`` for several
inputs), so it reads as a friend of the input tree. In uproot, read both and zip them::

    jets = uproot.open("data/qg_small.root")["jets"].arrays(["jet_pt", "label"])
    emb = uproot.open("emb.root")["embedding"].arrays()
    both = ak.zip({"jet": jets, "emb": emb}, depth_limit=1)        # both.emb.h[i]: jet i's embedding

In ROOT::

    TFile f("data/qg_small.root"); TTree *jets = (TTree*)f.Get("jets");
    jets->AddFriend("embedding", "emb.root");
    jets->Draw("embedding.h[0]:jet_pt");

With ``--replica K`` (one row per jet) or a ``layout: events`` mapping (one row per jet of each
event) the rows no longer line up with the input entries: match them by ``entry`` (and
``jet_index``) instead of as a friend.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gnnjets.base.cli import add_common_arguments, plain_text, run_command
from gnnjets.base.errors import GnnjetsError

PROG = "gnnjets-embed"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=plain_text(__doc__.split("\n\n")[0]),
                                     epilog="See the module docstring (python -m pydoc gnnjets.cli.embed) for "
                                            "reading the output as a friend tree.")
    parser.add_argument("checkpoint", nargs="?", help="a gnnjets checkpoint (e.g. runs/qg20k/last.pt)")
    parser.add_argument("inputs", nargs="*", metavar="IN.root",
                        help="ROOT file(s), globs, root:// or https:// URLs, file.root:tree; embedded in order")
    parser.add_argument("--out", help="output file: .root (friend tree), .npz or .parquet")
    parser.add_argument("--info", action="store_true",
                        help="print the checkpoint's model card (versions, code, training files, config) and exit")
    parser.add_argument("--format", choices=("root", "npz", "parquet"), default=None,
                        help="output format (default: from the suffix of --out, else root)")
    parser.add_argument("--tree", default=None, help="input TTree name (default: jets, or the mapping's)")
    parser.add_argument("--mapping", default=None, help="branch mapping YAML (or shipped name) for foreign files")
    parser.add_argument("--batch-size", type=int, default=512, help="graphs per forward pass (default 512)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: cuda when available (default)")
    parser.add_argument("--replica", type=int, default=None, metavar="K",
                        help="embed only replica K of each jet (the output is then no friend tree)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes building graphs (default 0)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: the CPUs this process may use, less the workers)")
    add_common_arguments(parser)
    return parser


class UsageError(GnnjetsError, ValueError):
    """The command line does not say what to embed."""


def _check_arguments(args) -> None:
    """Arguments in the wrong place say so, before any file is opened."""
    usage = "gnnjets-embed CKPT IN.root [IN.root ...] --out OUT.root"
    if args.checkpoint is None:
        raise UsageError(f"give a checkpoint and the files to embed: {usage}")
    if args.info:
        if args.inputs:
            raise UsageError("--info takes one checkpoint and nothing to embed: gnnjets-embed --info CKPT")
        return
    if args.checkpoint.endswith(".root") and any(str(name).endswith((".pt", ".pth")) for name in args.inputs):
        raise UsageError(f"the checkpoint comes first: {usage} (got {args.checkpoint} first)")
    if not args.inputs:
        raise UsageError(f"no input file after the checkpoint {args.checkpoint}: {usage}")
    if args.out is None:
        raise UsageError(f"--out is required: where to write the embeddings ({usage})")


def _info(path: str) -> int:
    from gnnjets.checkpoint import file_hash, load_checkpoint
    from gnnjets.modelcard import describe

    print(describe(load_checkpoint(path), path, file_hash(path)))
    return 0


def _embed(args) -> int:
    _check_arguments(args)
    if args.info:
        return _info(args.checkpoint)
    from gnnjets import __version__
    from gnnjets.base.outputs import check_output_path
    from gnnjets.embed import Embedder, output_format, write_embeddings
    from gnnjets.io.mapping import load_mapping
    from gnnjets.runtime import configure_threads

    out = Path(args.out)
    format = output_format(out, args.format)  # a suffix that names no format is refused
    check_output_path(out, suffixes=None)
    per_event = args.mapping is not None and load_mapping(args.mapping).layout == "events"
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, not {args.threads}")
    configure_threads(args.threads, workers=args.workers)
    embedder = Embedder.from_checkpoint(args.checkpoint, device=args.device)
    start = time.perf_counter()
    h, ids = embedder.embed_file(args.inputs, mapping=args.mapping, tree=args.tree, batch_size=args.batch_size,
                                 replica=args.replica, num_workers=args.workers, progress=not args.quiet)
    seconds = time.perf_counter() - start
    provenance = {"format": "gnnjets-embedding", "gnnjets_version": __version__, "checkpoint": args.checkpoint,
                  "checkpoint_signature": embedder.signature, "schema_version": embedder.schema_version, "inputs": args.inputs, "tree": args.tree,
                  "mapping": args.mapping, "replica": args.replica, "dim": embedder.dim,
                  "graph": embedder.graph_config.to_dict()}
    write_embeddings(out, h, ids, format=format, provenance=provenance)
    if format == "root" and (args.replica is not None or per_event):
        print("gnnjets-embed: note: rows are jets, not input entries: match them by 'entry' rather than as a friend",
              file=sys.stderr)
    print(f"embedded {len(h)} jets (D = {embedder.dim}) in {seconds:.1f} s ({len(h) / max(seconds, 1e-9):.0f} jets/s, "
          f"{embedder.device}) -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # ValueError: the library's argument checks; OSError: an output that cannot be written
    return run_command(PROG, _embed, _parser().parse_args(argv), errors=(ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
