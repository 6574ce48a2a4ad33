"""Which jets a downstream run trains, validates and tests on, and which labelled subsets it uses.

Nested label subsets: the N jets of a smaller count are a subset of those of every larger one,
and validation uses ``max(N // VAL_PER_LABEL, MIN_VAL)`` jets (nested the same way, capped at the
validation set), so a point of a label-efficiency curve never sees more labels than its N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gnnjets.data import JetSet
from gnnjets.io import load_mapping
from gnnjets.tasks.config import DownstreamConfig
from gnnjets.tasks.tasks import Task
from gnnjets.train.errors import DownstreamError

#: validation jets used with N labelled training jets: max(N // VAL_PER_LABEL, MIN_VAL), capped
VAL_PER_LABEL, MIN_VAL = 4, 200


@dataclass
class Splits:
    train: JetSet
    val: JetSet
    test: JetSet
    notes: list = field(default_factory=list)


def load_splits(config: DownstreamConfig, graph: dict, task: Task) -> Splits:
    """Train / val / test jets (replica ``data.replica``), carving val/test from train when not given."""
    data = config.data
    mapping = load_mapping(data.mapping) if data.mapping else None

    def load(paths, what):
        jets = JetSet.load(paths, graph_config=graph, replica=data.replica, tree=data.tree, mapping=mapping)
        usable = task.usable(jets.attrs)
        if not usable.all():
            notes.append(f"{what}: {int((~usable).sum())} jet(s) without a positive reco/truth energy left out")
            jets = jets.subset(usable)
        if jets.skipped:
            notes.append(f"{what}: {jets.skipped} jet(s) without cells and tracks left out")
        return jets

    notes: list[str] = []
    train = load(data.train, "train")
    rng = np.random.default_rng([config.run.seed, 7])
    order = rng.permutation(len(train))
    carved = 0
    if data.test:
        test = load(data.test, "test")
    else:
        n_test = int(round(data.test_fraction * len(train)))
        test, carved = train.subset(np.sort(order[:n_test])), n_test
    if data.val:
        val = load(data.val, "val")
    else:
        n_val = int(round(data.val_fraction * len(train)))
        val, carved = train.subset(np.sort(order[carved:carved + n_val])), carved + n_val
    if carved:
        train = train.subset(np.sort(order[carved:]))
    for name, jets in (("train", train), ("val", val), ("test", test)):
        if len(jets) < 2:
            raise DownstreamError(f"the {name} split holds {len(jets)} jet(s); give more jets")
        if task.classification and len(np.unique(jets.attrs["label"])) < 2:
            raise DownstreamError(f"the {name} split ({', '.join(jets.files)}) holds only label "
                                  f"{int(jets.attrs['label'][0])}; {task.name} needs both classes (for top: "
                                  f"give the top and the QCD files together)")
    return Splits(train, val, test, notes)


def label_counts(config: DownstreamConfig, n_train: int) -> list[int]:
    """The label counts to run, ascending; 0 (or no counts) stands for every training jet."""
    counts = sorted({n_train if n == 0 else n for n in config.data.labels} or {n_train})
    too_many = [n for n in counts if n > n_train]
    if too_many:
        raise DownstreamError(f"data.labels {too_many} exceed the {n_train} training jets; lower them or add jets")
    return counts


def label_subsets(n: int, counts: list[int], seed: int, labels: np.ndarray | None) -> dict[int, np.ndarray]:
    """Nested subsets: the first N of one permutation (both classes present when labels are given)."""
    order = np.random.default_rng([seed, 11]).permutation(n)
    out = {}
    for count in counts:
        chosen = np.sort(order[:count])
        if labels is not None and len(np.unique(labels[chosen])) < 2:
            raise DownstreamError(f"the {count} labelled jets drawn hold only one class; use more labels")
        out[count] = chosen
    return out


def val_subset(n_val: int, count: int, seed: int) -> np.ndarray:
    """The validation jets used with ``count`` labelled training jets: ``max(count // 4, 200)``, nested."""
    size = min(n_val, max(count // VAL_PER_LABEL, MIN_VAL))
    return np.sort(np.random.default_rng([seed, 13]).permutation(n_val)[:size])
