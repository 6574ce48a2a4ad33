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


def balance_classes(labels: np.ndarray, seed: int) -> np.ndarray:
    """Sorted rows of a class-balanced selection: every class down to the size of the smallest
    (drawn at random from ``seed``), so a tagger cannot score by the class prior."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng([seed, 17])
    keep = [rng.choice(np.flatnonzero(labels == c), counts.min(), replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


@dataclass
class LabelSubsets:
    """``subsets[k]``: sorted rows of the k-th set of ``count`` labelled jets; ``disjoint``: no row shared."""

    count: int
    subsets: list
    disjoint: bool


def disjoint_label_subsets(n: int, count: int, n_subsets: int, seed: int,
                           labels: np.ndarray | None = None, overlapping: int | None = None) -> LabelSubsets:
    """``n_subsets`` sets of ``count`` of the ``n`` rows, disjoint while the pool allows.

    With ``labels`` each set holds equal numbers of each class (``count`` must divide by the
    number of classes). Sets are cut from one permutation (per class), so they are disjoint as
    long as ``n_subsets * count`` rows (per class: its share) exist; beyond that every set is
    drawn independently (overlapping) and ``disjoint`` is False. ``count = 0`` or ``count >= n``
    means every row, ``n_subsets`` times (the spread then comes from the training seed alone).
    ``overlapping``: how many sets to draw instead of ``n_subsets`` when they cannot be disjoint
    (at most ``n_subsets``).
    """
    if overlapping is not None:
        overlapping = min(overlapping, n_subsets)
    rng = np.random.default_rng([seed, 23, count])
    if count == 0 or count >= n:
        return LabelSubsets(n, [np.arange(n) for _ in range(overlapping or n_subsets)], False)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    if count % len(groups):
        raise DownstreamError(f"{count} labels cannot be split evenly between {len(groups)} classes; use a "
                              f"multiple of {len(groups)}")
    share = count // len(groups)
    if any(len(group) < share for group in groups):
        raise DownstreamError(f"{count} balanced labels need {share} jets of each class; the pool holds "
                              f"{[len(group) for group in groups]}")
    disjoint = all(len(group) >= share * n_subsets for group in groups)
    if not disjoint and overlapping is not None:
        n_subsets = overlapping
    orders = [rng.permutation(group) for group in groups]
    subsets = []
    for k in range(n_subsets):
        if disjoint:
            parts = [order[k * share:(k + 1) * share] for order in orders]
        else:
            parts = [rng.choice(group, share, replace=False) for group in groups]
        subsets.append(np.sort(np.concatenate(parts)))
    return LabelSubsets(count, subsets, disjoint)
