"""Linear probe: logistic regression on frozen embeddings, scored by AUC (the linear classifier test of JetCLR, arXiv:2108.04253).

The probe embeds labelled jets with the backbone in eval mode, fits a standardised logistic
regression on one half and reports the ROC AUC on the other half. It measures how linearly
separable the classes are in ``h`` without training anything but the probe.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gnnjets.data import JetDataset, make_loader
from gnnjets.train.inference import NoBatchError, run_batches


def embed_dataset(backbone: torch.nn.Module, dataset: JetDataset, *, batch_size: int = 512, max_jets: int | None = None,
                  device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(h, label) of the first ``max_jets`` jets of ``dataset`` in file order: h (n, D) float32, label (n,)."""
    labels = []

    def batches():
        seen = 0
        for batch in make_loader(dataset, batch_size=batch_size, num_workers=0):
            labels.append(batch.label.view(-1).numpy())
            yield None, batch
            seen += batch.num_graphs
            if max_jets is not None and seen >= max_jets:
                return

    try:
        h = run_batches(backbone, batches(), device=device)
    except NoBatchError:  # no jets (an unreadable file is not that: its error passes)
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0)
    label = np.concatenate(labels)
    return (h[:max_jets], label[:max_jets]) if max_jets is not None else (h, label)


def linear_probe_auc(h: np.ndarray, label: np.ndarray, *, seed: int = 0) -> float:
    """AUC of a logistic regression fitted on a random half of (h, label) and scored on the other."""
    label = np.asarray(label)
    if len(np.unique(label)) < 2 or len(label) < 20:
        raise ValueError(f"the linear probe needs both classes and >= 20 jets, got {len(label)} jets with "
                         f"labels {sorted(set(label.tolist()))}")
    order = np.random.default_rng(seed).permutation(len(label))
    fit, test = order[: len(order) // 2], order[len(order) // 2:]
    if len(np.unique(label[fit])) < 2 or len(np.unique(label[test])) < 2:
        raise ValueError("the linear probe's halves must each hold both classes; give it more jets")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    probe.fit(h[fit], label[fit])
    return float(roc_auc_score(label[test], probe.predict_proba(h[test])[:, 1]))
