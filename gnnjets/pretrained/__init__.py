"""Backbones shipped with the package: ``Embedder.from_pretrained("qg")`` embeds jets without pretraining first.

Each ``<name>.pt`` here is a slim checkpoint (:func:`release`): the resolved config (graph building
with its feature scaling, model sizes), the backbone's weights, the model card (package versions,
training files with their content signatures, the step) and nothing of the optimiser. The
commands that produced each one, and how it scores in the study, are in docs/results.md.

=======  ============================================================================================
name     what it was pretrained on
=======  ============================================================================================
``qg``   q/g jets (anti-kT R = 0.4, pT 200-400 GeV, |eta| < 1.7), re-hadronised replicas of 102k jets
``top``  top and QCD jets (anti-kT R = 0.8, pT 550-650 GeV, |eta| < 2), re-hadronised replicas of 105k jets
=======  ============================================================================================

    python -m gnnjets.pretrained release runs/pretrain/qg/last.pt --name qg      # writes gnnjets/pretrained/qg.pt
                                                                    # (--overwrite replaces a shipped one)
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from gnnjets.base.cli import run_command
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import close_matches


def folder() -> Path:
    """Where the shipped backbones are, in a clone and in an installed wheel alike."""
    return Path(str(resources.files(__name__)))


def available() -> tuple[str, ...]:
    """The names of the shipped backbones."""
    return tuple(sorted(path.stem for path in folder().glob("*.pt")))


def path(name: str) -> Path:
    """The checkpoint of the shipped backbone ``name``; a one-line error names the ones there are."""
    candidate = folder() / f"{name}.pt"
    if not candidate.is_file():
        names = available()
        raise GnnjetsError(f"no shipped backbone {name!r}{close_matches(str(name), names, end='')} Shipped: "
                           f"{', '.join(names) or 'none'}; or load your own with Embedder.from_checkpoint(path)")
    return candidate


def release(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a slim copy of ``checkpoint`` to ``out``: config, backbone weights, model card, step.

    The projector, the optimiser, the scheduler and the RNG states are dropped: the file holds what
    an :class:`~gnnjets.Embedder` needs and nothing else (a few hundred kB for the default sizes).
    """
    from gnnjets.checkpoint import load_backbone, load_checkpoint, save_checkpoint

    payload = load_checkpoint(checkpoint)
    load_backbone(checkpoint)  # refuses what an Embedder could not load
    slim = {key: payload[key] for key in ("config", "step", "model_card") if key in payload}
    slim["model"] = {key: value for key, value in payload["model"].items() if key.startswith("backbone.")}
    slim["released_from"] = str(checkpoint)
    return save_checkpoint(out, slim)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnnjets.pretrained", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("release", help="slim a pretraining checkpoint into a shipped backbone")
    make.add_argument("checkpoint")
    make.add_argument("--name", required=True, help="the name it is loaded by (Embedder.from_pretrained(name))")
    make.add_argument("--out-dir", default=None, help="default: this package's folder")
    make.add_argument("--overwrite", action="store_true", help="replace a backbone of that name")
    commands.add_parser("list", help="the shipped backbones")
    return run_command("python -m gnnjets.pretrained", _command, parser.parse_args(argv), errors=(OSError,))


def _command(args: argparse.Namespace) -> int:
    from gnnjets.base.outputs import check_output_path

    if args.command == "list":
        print("\n".join(available()) or "none")
        return 0
    out = check_output_path(Path(args.out_dir or folder()) / f"{args.name}.pt", suffixes=(".pt",),
                            option="--name", overwrite=args.overwrite)
    written = release(args.checkpoint, out)
    print(f"{written} ({written.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
