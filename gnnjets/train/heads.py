"""Heads fitted on fixed features (frozen embeddings, EFPs, observables), and the task losses.

:func:`fit_head` trains a :class:`~gnnjets.nn.heads.Head` (linear or MLP) with Adam on
minibatches and keeps the epoch with the lowest validation loss. The losses: binary cross-entropy
on logits for classification; for regression a Huber loss on the standardised residual
(quadratic within one target sigma, robust to out-of-cone tails).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from gnnjets.nn.heads import Head, HeadConfig
from gnnjets.tasks.config import HeadOptim
from gnnjets.tasks.tasks import Task
from gnnjets.train.errors import DownstreamError


def task_loss(task: Task, output: torch.Tensor, target: torch.Tensor, out_scale: torch.Tensor) -> torch.Tensor:
    """The training loss of ``task`` for head outputs (B,) and targets (B,)."""
    if task.classification:
        return nn.functional.binary_cross_entropy_with_logits(output, target)
    return nn.functional.huber_loss(output / out_scale, target / out_scale, delta=1.0)


def fit_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, task: Task,
             head_config: HeadConfig, optim: HeadOptim, seed: int, device: torch.device) -> tuple[Head, dict]:
    """A head fitted on fixed features: Adam on minibatches, the epoch with the lowest val loss kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = Head(x_train.shape[1], head_config)
    xt, yt = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.float32)
    xv, yv = torch.as_tensor(x_val, dtype=torch.float32), torch.as_tensor(y_val, dtype=torch.float32)
    for name, values in (("training", xt), ("validation", xv)):
        if not torch.isfinite(values).all():
            raise DownstreamError(f"the {name} features hold non-finite values; check the input files")
    head.set_input_scaling(xt)
    if not task.classification:
        head.set_output_scaling(yt)
    head = head.to(device)
    xt, yt, xv, yv = xt.to(device), yt.to(device), xv.to(device), yv.to(device)
    optimizer = torch.optim.Adam(head.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    # one validation per `period` epochs, so that max_epochs validations span at least min_steps steps
    steps_per_epoch = math.ceil(len(xt) / optim.batch_size)
    period = max(1, math.ceil(optim.min_steps / optim.max_epochs / steps_per_epoch))
    best, best_state, best_check, check, epoch = math.inf, copy.deepcopy(head.state_dict()), 0, 0, 0
    for check in range(1, optim.max_epochs + 1):
        head.train()
        for _ in range(period):
            epoch += 1
            for rows in torch.randperm(len(xt), generator=generator).split(optim.batch_size):
                rows = rows.to(device)
                loss = task_loss(task, head(xt[rows]), yt[rows], head.out_scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        head.eval()
        with torch.no_grad():
            val = float(task_loss(task, head(xv), yv, head.out_scale))
        if val < best - 1e-6:
            best, best_state, best_check = val, copy.deepcopy(head.state_dict()), check
        elif check - best_check >= optim.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return head.cpu(), {"epochs": epoch, "best_epoch": best_check * period, "val_loss": best}


@torch.no_grad()
def head_outputs(head: Head, x: np.ndarray) -> np.ndarray:
    """The head's raw outputs (n,) float64 on features ``x`` (n, D)."""
    head.eval()
    return head(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
