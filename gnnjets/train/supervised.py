"""End-to-end supervised training of a backbone + head on graphs: ``scratch`` and ``--finetune``.

AdamW with linear warm-up and cosine decay (the pretraining schedule), gradient clipping, the
weights with the lowest validation loss kept. A checkpoint is written atomically after every epoch
and a run continues from it with ``resume=True``.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gnnjets.augment.base import configure_transform
from gnnjets.checkpoint import CheckpointError, load_checkpoint, restore_training_state, save_checkpoint, training_state
from gnnjets.data import JetSet
from gnnjets.nn.heads import BackboneWithHead
from gnnjets.tasks.config import SupervisedOptim
from gnnjets.tasks.tasks import Task
from gnnjets.train.errors import DownstreamError
from gnnjets.train.heads import task_loss
from gnnjets.train.schedule import lr_factor


def train_supervised(model: BackboneWithHead, train: JetSet, y_train: np.ndarray, val: JetSet, y_val: np.ndarray, *,
                     task: Task, optim: SupervisedOptim, backbone_lr_factor: float, device: torch.device, seed: int,
                     checkpoint: Path, run_key: dict, resume: bool = False, progress: bool = False,
                     desc: str = "train", stop_after: int | None = None,
                     transform=None) -> tuple[BackboneWithHead, dict]:
    """Backbone + head trained on graphs; the weights with the lowest val loss are returned.

    ``transform``: an augmentation applied to every training batch (its generator is seeded from
    ``seed`` and the epoch, so a resumed run draws the same); validation batches are never augmented.

    A checkpoint (weights, optimiser, scheduler, epoch, best weights, RNG) is written atomically
    after every epoch; with ``resume`` a run continues after the last completed epoch.
    ``run_key`` (method, labels, seed, ...) is stored and must match on resume. ``stop_after``:
    leave after that many epochs (checkpoint written, as a kill after it would), for tests.
    """
    generator = torch.Generator()
    transform = configure_transform(transform, generator=generator)
    steps_per_epoch = math.ceil(len(train) / optim.batch_size)
    epochs = max(optim.epochs, math.ceil(optim.min_steps / steps_per_epoch))
    total = epochs * steps_per_epoch
    model = model.to(device)
    groups = [{"params": model.backbone.parameters(), "lr": optim.lr * backbone_lr_factor},
              {"params": model.head.parameters(), "lr": optim.lr}]
    optimizer = torch.optim.AdamW(groups, weight_decay=optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, optim.warmup_steps, total, 0.05))
    y_train_t = torch.as_tensor(y_train, dtype=torch.float32)
    y_val_t = torch.as_tensor(y_val, dtype=torch.float32)
    start_epoch, step, best, best_state, history = 0, 0, math.inf, None, []
    if resume and checkpoint.exists():
        try:
            payload = load_checkpoint(checkpoint)
        except CheckpointError as err:
            raise DownstreamError(f"--resume: {err}") from None
        if payload.get("run_key") != run_key:
            raise DownstreamError(f"--resume: {checkpoint} belongs to another run ({payload.get('run_key')}, now "
                                  f"{run_key}); use a new run.out_dir or drop --resume")
        restore_training_state(payload, model, optimizer, scheduler)
        start_epoch, step = payload["epoch"], payload["step"]
        best, best_state, history = payload["best_val_loss"], payload["best_model"], payload["history"]
        if start_epoch >= epochs:
            model.load_state_dict(best_state)
            return model.eval(), {"epochs": epochs, "steps": step, "val_loss": best, "history": history, "resumed": True}

    def validate() -> float:
        model.eval()
        total_loss = 0.0
        with torch.no_grad():
            for order, batch in val.batches(512):
                output = model(batch.to(device))
                total_loss += float(task_loss(task, output, y_val_t[order].to(device), model.head.out_scale)) * len(order)
        model.train()
        return total_loss / len(val)

    bar = tqdm(total=total, initial=step, unit="step", desc=desc, disable=not progress, leave=False)
    model.train()
    clock = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        generator.manual_seed(seed * 100_003 + epoch)
        for order, batch in train.batches(optim.batch_size, shuffle=True, seed=seed * 100_003 + epoch):
            if transform is not None:
                batch = transform(batch)
            output = model(batch.to(device, non_blocking=True))
            loss = task_loss(task, output, y_train_t[order].to(device), model.head.out_scale)
            if not torch.isfinite(loss):
                raise DownstreamError(f"non-finite loss at step {step + 1} of {desc}; lower supervised.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if optim.eval_every and step % optim.eval_every == 0:
                val_loss = validate()
                history.append({"step": step, "val_loss": val_loss})
                if val_loss < best:
                    best, best_state = val_loss, copy.deepcopy(model.state_dict())
        if not optim.eval_every:
            val_loss = validate()
            history.append({"step": step, "epoch": epoch + 1, "val_loss": val_loss})
            if val_loss < best:
                best, best_state = val_loss, copy.deepcopy(model.state_dict())
        save_checkpoint(checkpoint, training_state(
            model, optimizer, scheduler, run_key=run_key, epoch=epoch + 1, step=step, best_val_loss=best,
            best_model=best_state, history=history, config=run_key.get("config", {})))
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - clock
    return model.eval(), {"epochs": epochs, "steps": step, "val_loss": best, "history": history,
                          "jets_per_s": round((step - (start_epoch * steps_per_epoch)) * optim.batch_size
                                              / max(seconds, 1e-9), 1)}
