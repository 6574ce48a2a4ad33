"""A short analysis on top of a pretrained backbone: read a file, embed its jets, score them with a
head, and keep the jets above a cut.

    python examples/analysis.py --checkpoint runs/demo/pretrain/last.pt --file data/qg_small.root
    python examples/analysis.py --checkpoint runs/demo/pretrain/last.pt --file data/qg_small.root \\
        --head runs/demo/downstream_qg/models/pretrained-linear-N0.pt

Without ``--head`` a logistic regression is fitted on half of the file's labelled jets and applied
to the other half; with it, the head trained by ``gnnjets-downstream`` is loaded from its
checkpoint. The cut keeps 50% of the quark jets (label 1) of the scored half.
"""

from __future__ import annotations

import argparse
import sys

import awkward as ak
import numpy as np
import torch

from gnnjets import Embedder, read_all


def load_head(path: str, dim: int):
    """The head of a gnnjets-downstream model checkpoint: h (n, D) -> score (n,)."""
    from gnnjets.checkpoint import load_checkpoint
    from gnnjets.nn.heads import Head, HeadConfig

    payload = load_checkpoint(path)
    head = Head(dim, HeadConfig(**payload["config"]["head"]))
    head.load_state_dict({k[len("head."):]: v for k, v in payload["model"].items() if k.startswith("head.")})
    head.eval()
    return lambda h: torch.sigmoid(head(torch.from_numpy(h))).detach().numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a gnnjets checkpoint (pretraining or downstream)")
    parser.add_argument("--file", required=True, help="a ROOT file of jets (any path uproot opens)")
    parser.add_argument("--head", help="a gnnjets-downstream model checkpoint whose head scores the jets")
    args = parser.parse_args(argv)

    jets = read_all(args.file, branches=["label", "jet_pt", "replica"])  # the analysis's own view of the file
    embedder = Embedder.from_checkpoint(args.checkpoint, device="cpu")
    h = np.concatenate([part for part, _ in embedder.iter_embed(args.file, step_size=5000)])  # flat memory
    keep = np.isfinite(h).all(axis=1) & (ak.to_numpy(jets.replica) == 0)  # one replica, jets with nodes
    h, label, pt = h[keep], ak.to_numpy(jets.label)[keep], ak.to_numpy(jets.jet_pt)[keep]

    half = len(h) // 2
    if args.head:
        score_of = load_head(args.head, embedder.dim)
    else:
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(max_iter=1000).fit(h[:half], label[:half])
        score_of = lambda x: fit.predict_proba(x)[:, 1]  # noqa: E731
    score = score_of(h[half:])
    quark = label[half:] == 1
    cut = float(np.quantile(score[quark], 0.5))  # keeps half of the quark jets
    selected = score > cut
    print(f"{len(h)} jets embedded (D = {embedder.dim}); scored {len(score)}, cut at {cut:.3f}: kept "
          f"{selected.sum()} jets, quark efficiency {selected[quark].mean():.2f}, gluon efficiency "
          f"{selected[~quark].mean():.2f}, mean pT of the kept jets {pt[half:][selected].mean():.0f} GeV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
