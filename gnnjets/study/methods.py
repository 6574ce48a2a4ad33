"""How each method of a study turns N labelled jets into test predictions.

Every method sees exactly the N labels of one subset and nothing else of the pool:

- features + linear head (frozen arms, ``<arm>+scalars``, ``observables``, ``efp+observables``):
  an L2 linear head with the penalty chosen by cross-validation within the N jets
  (:func:`gnnjets.train.linear.fit_linear`);
- ``em``: the EM-scale jet energy (no labels used); ``calibration``: per-layer weights and a track
  term fitted on the N jets;
- ``scratch`` and ``finetuned``: backbone + linear head trained end to end on ``1 - val_fraction``
  of the N jets, early-stopped on the rest. Scratch is trained with the configured augmentations
  and without, and the one with the lower validation loss is kept (never chosen on test jets).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gnnjets.augment import augmentations_from_config
from gnnjets.augment.base import configure_transform
from gnnjets.data import JetSet
from gnnjets.graphs import GraphConfig
from gnnjets.nn.heads import BackboneWithHead, Head, HeadConfig
from gnnjets.study.config import Supervised
from gnnjets.tasks.config import SupervisedOptim
from gnnjets.tasks.tasks import Task
from gnnjets.train.inference import run_batches
from gnnjets.train.linear import fit_linear
from gnnjets.train.supervised import train_supervised


@dataclass
class Fit:
    """What one method fitted on one label subset gives: test predictions and training facts."""

    prediction: np.ndarray  # scores (taggers) or energies [GeV]
    info: dict


def fit_on_features(task: Task, x_pool: np.ndarray, y_pool: np.ndarray, x_test: np.ndarray, test_attrs: dict,
                    rows: np.ndarray, seed: int) -> Fit:
    head, info = fit_linear(x_pool[rows], y_pool[rows], task=task, seed=seed)
    return Fit(task.predict(head.output(x_test), test_attrs), info)


def fit_calibration(layers_pool: np.ndarray, truth_pool: np.ndarray, layers_test: np.ndarray, rows: np.ndarray) -> Fit:
    from gnnjets.tasks.baselines.calibration import LayerCalibration

    fitted = LayerCalibration().fit(layers_pool[rows], truth_pool[rows])
    return Fit(fitted.predict(layers_test), {"weights": fitted.to_dict()})


def supervised_optim(settings: Supervised, n_train: int) -> SupervisedOptim:
    """The optimiser settings for N training jets: ``epochs``, but within [min_steps, max_steps] steps."""
    steps_per_epoch = max(1, math.ceil(n_train / settings.batch_size))
    epochs = max(1, min(settings.epochs, settings.max_steps // steps_per_epoch))
    return SupervisedOptim(batch_size=settings.batch_size, lr=settings.lr, epochs=epochs,
                           min_steps=min(settings.min_steps, settings.max_steps), warmup_steps=min(50, settings.min_steps // 4))


def split_labels(rows: np.ndarray, labels: np.ndarray | None, val_fraction: float, seed: int):
    """(train rows, validation rows) of one label subset; per class when ``labels`` are given."""
    rng = np.random.default_rng([seed, 31, len(rows)])
    groups = [rows] if labels is None else [rows[labels[rows] == c] for c in np.unique(labels[rows])]
    train, val = [], []
    for group in groups:
        group = rng.permutation(group)
        n_val = max(1, int(round(val_fraction * len(group))))
        val.append(group[:n_val])
        train.append(group[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def fit_end_to_end(task: Task, make_backbone: Callable, pool: JetSet, y_pool: np.ndarray, test: JetSet,
                   rows: np.ndarray, settings: Supervised, *, graph: dict, augment: list[list | None], lr_factor: float,
                   seed: int, device: torch.device, checkpoint_dir: Path, name: str) -> Fit:
    """Backbone (from ``make_backbone()``) + linear head trained on the subset ``rows``; one training
    per entry of ``augment`` (a list of augmentation configs, or None for none), the lowest
    validation loss kept."""
    labels = pool.attrs["label"] if task.classification else None
    train_rows, val_rows = split_labels(rows, labels, settings.val_fraction, seed)
    train, val = pool.subset(train_rows), pool.subset(val_rows)
    optim = supervised_optim(settings, len(train_rows))
    scaling = GraphConfig.from_dict(graph).scaling
    best = None
    for variant, entries in enumerate(augment):
        backbone = make_backbone()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            head = Head(backbone.embedding_dim, HeadConfig(kind="linear"))
        sample = train.subset(np.arange(min(len(train), 2048)))
        head.set_input_scaling(torch.from_numpy(run_batches(backbone.to(device), sample.batches(512), len(sample),
                                                            device=device)))
        if not task.classification:
            head.set_output_scaling(torch.as_tensor(y_pool[train_rows]))
        transform = None
        if entries:
            transform = configure_transform(augmentations_from_config(entries), scaling=scaling)
        model, info = train_supervised(
            BackboneWithHead(backbone, head), train, y_pool[train_rows], val, y_pool[val_rows], task=task,
            optim=optim, backbone_lr_factor=lr_factor, device=device, seed=seed,
            checkpoint=checkpoint_dir / f"{name}-{variant}.train.pt",
            run_key={"method": name, "variant": variant, "rows": int(len(rows)), "seed": seed}, transform=transform)
        info = {**{k: v for k, v in info.items() if k != "history"}, "augment": entries or []}
        if best is None or info["val_loss"] < best[1]["val_loss"]:
            best = (copy.deepcopy(model), info)
        (checkpoint_dir / f"{name}-{variant}.train.pt").unlink(missing_ok=True)  # a finished fit needs no resume
    model, info = best
    outputs = run_batches(model, test.batches(512), len(test), device=device)
    return Fit(task.predict(outputs, test.attrs), {**info, "train_jets": int(len(train_rows)),
                                                   "val_jets": int(len(val_rows))})
