"""Downstream training: heads on a frozen pretrained backbone, fine-tuning, and the baselines.

For one task (:mod:`gnnjets.tasks.tasks`) and one or more label counts N (``data.labels``; several
give the label-efficiency curve), every method is trained on the same N labelled jets, selected on
the same validation jets and scored on the same test jets:

- ``pretrained``: the backbone of a pretraining checkpoint, frozen; its embeddings h of every jet
  are computed once (and cached on disk, keyed by checkpoint, files and settings); a head
  (linear or MLP) is fitted on them with early stopping on the validation loss.
- ``finetuned`` (``--finetune``): backbone + head trained end to end from the checkpoint, the
  backbone at ``finetune_lr_factor`` times the learning rate.
- ``scratch``: the same backbone architecture from random weights, trained end to end.
- ``efp``: energy flow polynomials of the cells with the same head (``qg``, ``top``).
- ``em`` / ``calib``: the EM-scale jet energy, and per-layer linear weights fitted on the N
  training jets (``energy``).

Nested label subsets: the N jets of a smaller count are a subset of those of every larger one,
and validation uses ``max(N // 4, 200)`` jets (nested the same way, capped at the validation set),
so a point of the curve never sees more labels than its N. End-to-end runs write a checkpoint
every epoch (``<out_dir>/models/<method>-N<n>.pt``) and continue from it with ``resume=True``.

Outputs in ``run.out_dir``: ``results.json`` (config, data sizes, metrics of every method and N),
``predictions.npz`` (test ids, labels, truth and every method's predictions at the largest N),
``roc.png`` or ``response.png`` (largest N), ``label_efficiency.png`` (several N), and in
``models/`` the heads / models as checkpoints that :class:`gnnjets.Embedder` can also read.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from gnnjets.base.outputs import atomic_output
from gnnjets.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gnnjets.embed import check_schema_versions, resolve_device
from gnnjets.graphs import GraphConfig
from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import ModelConfig
from gnnjets.nn.heads import BackboneWithHead, Head, HeadConfig
from gnnjets.tasks import plots
from gnnjets.tasks.config import DownstreamConfig, HeadOptim, SupervisedOptim, config_from_dict
from gnnjets.data import JetSet, align_rows, files_signature
from gnnjets.tasks.tasks import Task, get_task
from gnnjets.train.pretrain import lr_factor

#: validation jets used with N labelled training jets: max(N // VAL_PER_LABEL, MIN_VAL), capped
VAL_PER_LABEL, MIN_VAL = 4, 200


class DownstreamError(RuntimeError):
    """The downstream run cannot go on (bad data, incompatible checkpoint); the message says why."""


def _log(message: str) -> None:
    print(f"gnnjets-downstream: {message}", file=sys.stderr, flush=True)


def _file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------- backbone
@dataclass
class BackboneSource:
    """Where the backbone architecture (and, pretrained, the weights) come from."""

    graph: dict  # resolved GraphConfig dict (with feature scaling)
    model: dict  # resolved ModelConfig dict
    weights: dict | None = None  # backbone state dict (keys without the 'backbone.' prefix)
    checkpoint: str | None = None
    checkpoint_hash: str | None = None
    step: int | None = None
    schema_version: int | None = None


def backbone_source(config: DownstreamConfig) -> BackboneSource:
    """The checkpoint's graph/model config and backbone weights, or the configured ones for scratch only."""
    path = config.backbone.checkpoint
    if path is None:
        return BackboneSource(GraphConfig.from_dict(config.graph).to_dict(), ModelConfig.from_dict(config.model).to_dict())
    try:
        payload = load_checkpoint(path)
    except CheckpointError as err:
        raise DownstreamError(str(err)) from None
    saved = payload.get("config") or {}
    if "graph" not in saved or "model" not in saved:
        raise DownstreamError(f"{path} holds no graph and model config; it is not a pretraining checkpoint")
    weights = {k[len("backbone."):]: v for k, v in payload["model"].items() if k.startswith("backbone.")}
    if not weights:
        raise DownstreamError(f"{path} holds no backbone weights (no 'backbone.*' entries in its model state)")
    if config.model and ModelConfig.from_dict(config.model).to_dict() != ModelConfig.from_dict(saved["model"]).to_dict():
        raise DownstreamError("model: the backbone checkpoint fixes the architecture; remove the model section (the "
                              "scratch baseline uses the checkpoint's architecture so that it compares like with like)")
    return BackboneSource(GraphConfig.from_dict(saved["graph"]).to_dict(), ModelConfig.from_dict(saved["model"]).to_dict(),
                          weights, str(path), _file_hash(path), payload.get("step"), payload.get("schema_version"))


def make_backbone(source: BackboneSource, *, pretrained: bool, seed: int) -> Backbone:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = Backbone(ModelConfig.from_dict(source.model).backbone)
    if pretrained:
        backbone.load_state_dict(source.weights)
    return backbone


@torch.no_grad()
def embed_jets(backbone: nn.Module, jets: JetSet, *, device: torch.device, batch_size: int = 512,
               progress: bool = False, desc: str = "embed") -> np.ndarray:
    """Embeddings h (n, D) float32 of ``jets`` in row order, backbone in eval mode."""
    was_training = backbone.training
    backbone.eval()
    out = None
    try:
        bar = tqdm(total=len(jets), unit="jet", desc=desc, disable=not progress, leave=False)
        for order, batch in jets.batches(batch_size):
            h = backbone(batch.to(device)).float().cpu().numpy()
            if out is None:
                out = np.empty((len(jets), h.shape[1]), dtype=np.float32)
            out[order] = h
            bar.update(len(order))
        bar.close()
    finally:
        backbone.train(was_training)
    return out


@torch.no_grad()
def predict_graphs(model: nn.Module, jets: JetSet, *, device: torch.device, batch_size: int = 512) -> np.ndarray:
    """Model outputs (n,) for ``jets`` in row order, model in eval mode."""
    was_training = model.training
    model.eval()
    out = np.empty(len(jets), dtype=np.float64)
    try:
        for order, batch in jets.batches(batch_size):
            out[order] = model(batch.to(device)).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


# ------------------------------------------------------------------------------------------ losses
def _loss(task: Task, output: torch.Tensor, target: torch.Tensor, out_scale: torch.Tensor) -> torch.Tensor:
    if task.classification:
        return nn.functional.binary_cross_entropy_with_logits(output, target)
    # Huber on the standardised residual: quadratic within one target σ, robust to out-of-cone tails
    return nn.functional.huber_loss(output / out_scale, target / out_scale, delta=1.0)


# ------------------------------------------------------------------------------------------- heads
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
                loss = _loss(task, head(xt[rows]), yt[rows], head.out_scale)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        head.eval()
        with torch.no_grad():
            val = float(_loss(task, head(xv), yv, head.out_scale))
        if val < best - 1e-6:
            best, best_state, best_check = val, copy.deepcopy(head.state_dict()), check
        elif check - best_check >= optim.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return head.cpu(), {"epochs": epoch, "best_epoch": best_check * period, "val_loss": best}


@torch.no_grad()
def head_outputs(head: Head, x: np.ndarray) -> np.ndarray:
    head.eval()
    return head(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


# ------------------------------------------------------------------------------------- end to end
def train_supervised(model: BackboneWithHead, train: JetSet, y_train: np.ndarray, val: JetSet, y_val: np.ndarray, *,
                     task: Task, optim: SupervisedOptim, backbone_lr_factor: float, device: torch.device, seed: int,
                     checkpoint: Path, run_key: dict, resume: bool = False, progress: bool = False,
                     desc: str = "train", stop_after: int | None = None) -> tuple[BackboneWithHead, dict]:
    """Backbone + head trained on graphs; the weights with the lowest val loss are returned.

    A checkpoint (weights, optimiser, scheduler, epoch, best weights, RNG) is written atomically
    after every epoch; with ``resume`` a run continues after the last completed epoch.
    ``run_key`` (method, labels, seed, ...) is stored and must match on resume. ``stop_after``:
    leave after that many epochs (checkpoint written, as a kill after it would), for tests.
    """
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
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        start_epoch, step = payload["epoch"], payload["step"]
        best, best_state, history = payload["best_val_loss"], payload["best_model"], payload["history"]
        torch.set_rng_state(payload["rng"])
        if start_epoch >= epochs:
            model.load_state_dict(best_state)
            return model.eval(), {"epochs": epochs, "steps": step, "val_loss": best, "history": history, "resumed": True}

    def validate() -> float:
        model.eval()
        total_loss = 0.0
        with torch.no_grad():
            for order, batch in val.batches(512):
                output = model(batch.to(device))
                total_loss += float(_loss(task, output, y_val_t[order].to(device), model.head.out_scale)) * len(order)
        model.train()
        return total_loss / len(val)

    bar = tqdm(total=total, initial=step, unit="step", desc=desc, disable=not progress, leave=False)
    model.train()
    clock = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        for order, batch in train.batches(optim.batch_size, shuffle=True, seed=seed * 100_003 + epoch):
            output = model(batch.to(device, non_blocking=True))
            loss = _loss(task, output, y_train_t[order].to(device), model.head.out_scale)
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
        save_checkpoint(checkpoint, {"run_key": run_key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": step,
                                     "best_val_loss": best, "best_model": best_state, "history": history,
                                     "rng": torch.get_rng_state(), "config": run_key.get("config", {})})
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - clock
    return model.eval(), {"epochs": epochs, "steps": step, "val_loss": best, "history": history,
                          "jets_per_s": round((step - (start_epoch * steps_per_epoch)) * optim.batch_size
                                              / max(seconds, 1e-9), 1)}


# ---------------------------------------------------------------------------------------- the run
@dataclass
class Splits:
    train: JetSet
    val: JetSet
    test: JetSet
    notes: list = field(default_factory=list)


def load_splits(config: DownstreamConfig, graph: dict, task: Task) -> Splits:
    """Train / val / test jets (replica ``data.replica``), carving val/test from train when not given."""
    data = config.data
    mapping = None
    if data.mapping:
        from gnnjets.io import load_mapping

        mapping = load_mapping(data.mapping)

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


def _subsets(n: int, counts: list[int], seed: int, labels: np.ndarray | None) -> dict[int, np.ndarray]:
    """Nested subsets: the first N of one permutation (both classes present when labels are given)."""
    order = np.random.default_rng([seed, 11]).permutation(n)
    out = {}
    for count in counts:
        chosen = np.sort(order[:count])
        if labels is not None and len(np.unique(labels[chosen])) < 2:
            raise DownstreamError(f"the {count} labelled jets drawn hold only one class; use more labels")
        out[count] = chosen
    return out


def _val_subset(n_val: int, count: int, seed: int) -> np.ndarray:
    size = min(n_val, max(count // VAL_PER_LABEL, MIN_VAL))
    return np.sort(np.random.default_rng([seed, 13]).permutation(n_val)[:size])


class _Cache:
    """Arrays on disk keyed by a description; ``get(key, make)`` computes and stores what is missing."""

    def __init__(self, folder: str | None):
        self.folder = Path(folder) if folder else None

    def get(self, key: dict, make) -> np.ndarray:
        if self.folder is None:
            return make()
        name = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
        path = self.folder / f"{key.get('kind', 'array')}-{name}.npy"
        if path.exists():
            return np.load(path)
        array = make()
        with atomic_output(path, keep_suffix=True) as tmp:
            np.save(tmp, array)
        return array


def run_downstream(config: DownstreamConfig | dict, *, resume: bool = False) -> dict:
    """Run every configured method for every label count; write results.json and plots; return the results."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    started = time.perf_counter()
    try:
        device = resolve_device(config.run.device)
    except ValueError as err:
        raise DownstreamError(f"run.device: {err}") from None
    if device.type == "cpu":
        torch.set_num_threads(config.run.threads or os.cpu_count() or 1)
    task = get_task(config.task, energy_target=config.energy.target)
    out_dir = Path(config.run.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = _Cache(config.run.cache_dir)
    source = backbone_source(config)
    if source.checkpoint is not None:
        try:
            for paths in filter(None, (config.data.train, config.data.val, config.data.test)):
                check_schema_versions(paths, source.schema_version, f"backbone checkpoint {source.checkpoint}")
        except CheckpointError as err:
            raise DownstreamError(str(err)) from None
    splits = load_splits(config, source.graph, task)
    for note in splits.notes:
        _log(note)
    train, val, test = splits.train, splits.val, splits.test
    _log(f"task {task.name}: {len(train)} training, {len(val)} validation, {len(test)} test jets")
    y_train, y_val = task.target(train.attrs), task.target(val.attrs)
    counts = label_counts(config, len(train))
    subsets = _subsets(len(train), counts, config.run.seed,
                       train.attrs["label"] if task.classification else None)
    seed, progress = config.run.seed, config.run.progress
    head_name = config.head.kind
    results: list[dict] = []
    predictions: dict[str, np.ndarray] = {}  # method -> test predictions at the largest N
    models_dir = out_dir / "models"
    saved_config = {"task": task.name, "graph": source.graph, "model": source.model,
                    "head": dataclasses.asdict(config.head), "energy_target": config.energy.target}

    def record(method: str, head: str, count: int, prediction: np.ndarray, info: dict) -> None:
        metrics = task.evaluate(prediction, test.attrs, energy_bins=config.energy.bins)
        results.append({"method": method, "head": head, "labels": count, "metrics": metrics, "train": info})
        if count == counts[-1]:
            predictions[method] = prediction
        _log(f"{method} ({head}), {count} labels: {_headline(task, metrics)}")

    def graph_set_key(jets: JetSet) -> str:
        return jets.signature(config.data.replica)

    # -- pretrained backbone, frozen: embeddings once, then a head per label count
    if source.checkpoint is not None and not config.backbone.finetune:
        backbone = make_backbone(source, pretrained=True, seed=seed).to(device)
        embeddings = {}
        for name, jets in (("train", train), ("val", val), ("test", test)):
            key = {"kind": "embed", "checkpoint": source.checkpoint_hash, "jets": graph_set_key(jets),
                   "graph": source.graph}
            embeddings[name] = cache.get(key, lambda jets=jets, name=name: embed_jets(
                backbone, jets, device=device, progress=progress, desc=f"embed {name}"))
        for count in counts:
            rows, val_rows = subsets[count], _val_subset(len(val), count, seed)
            head, info = fit_head(embeddings["train"][rows], y_train[rows], embeddings["val"][val_rows], y_val[val_rows],
                                  task=task, head_config=config.head, optim=config.head_optim, seed=seed, device=device)
            record("pretrained", head_name, count, task.predict(head_outputs(head, embeddings["test"]), test.attrs), info)
            full = BackboneWithHead(make_backbone(source, pretrained=True, seed=seed), head)
            save_checkpoint(models_dir / f"pretrained-{head_name}-N{count}.pt",
                            {"config": saved_config, "model": full.state_dict(), "method": "pretrained",
                             "labels": count, "backbone_checkpoint": source.checkpoint})

    # -- end to end: fine-tuned from the checkpoint, and from scratch
    end_to_end = []
    if source.checkpoint is not None and config.backbone.finetune:
        end_to_end.append(("finetuned", True, config.backbone.finetune_lr_factor))
    if "scratch" in config.baselines:
        end_to_end.append(("scratch", False, 1.0))
    for method, pretrained, factor in end_to_end:
        for count in counts:
            rows, val_rows = subsets[count], _val_subset(len(val), count, seed)
            sub_train, sub_val = train.subset(rows), val.subset(val_rows)
            backbone = make_backbone(source, pretrained=pretrained, seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                head = Head(ModelConfig.from_dict(source.model).backbone.embedding_dim, config.head)
            sample = sub_train.subset(np.arange(min(len(sub_train), 2048)))
            head.set_input_scaling(torch.from_numpy(embed_jets(backbone.to(device), sample, device=device)))
            if not task.classification:
                head.set_output_scaling(torch.as_tensor(y_train[rows]))
            model = BackboneWithHead(backbone, head)
            run_key = {"method": method, "labels": count, "seed": seed, "task": task.name, "config": saved_config,
                       "train_jets": graph_set_key(sub_train), "supervised": dataclasses.asdict(config.supervised)}
            model, info = train_supervised(
                model, sub_train, y_train[rows], sub_val, y_val[val_rows], task=task, optim=config.supervised,
                backbone_lr_factor=factor, device=device, seed=seed,
                checkpoint=models_dir / f"{method}-{head_name}-N{count}.train.pt", run_key=run_key, resume=resume,
                progress=progress, desc=f"{method} N={count}")
            outputs = predict_graphs(model, test, device=device)
            record(method, head_name, count, task.predict(outputs, test.attrs), info)
            save_checkpoint(models_dir / f"{method}-{head_name}-N{count}.pt",
                            {"config": saved_config, "model": model.cpu().state_dict(), "method": method,
                             "labels": count, "backbone_checkpoint": source.checkpoint})

    # -- non-GNN baselines
    if "efp" in config.baselines:
        from gnnjets.tasks import baselines

        settings = baselines.efp_settings(task.name, config.efp)
        features = {}
        for name, jets in (("train", train), ("val", val), ("test", test)):
            features[name] = _file_features(cache, "efp", jets, settings, config,
                                            lambda paths: baselines.efp_features(paths, replica=config.data.replica,
                                                                                 tree=config.data.tree, **settings))
        for count in counts:
            rows, val_rows = subsets[count], _val_subset(len(val), count, seed)
            head, info = fit_head(features["train"][rows], y_train[rows], features["val"][val_rows], y_val[val_rows],
                                  task=task, head_config=config.head, optim=config.head_optim, seed=seed, device=device)
            record("efp", head_name, count, task.predict(head_outputs(head, features["test"]), test.attrs),
                   {**info, "n_efps": int(features["train"].shape[1])})
    if "em" in config.baselines:
        for count in counts:
            record("em", "-", count, test.attrs["jet_e"].astype(np.float64), {})
    if "calib" in config.baselines:
        from gnnjets.tasks import baselines

        layers = {name: _file_features(cache, "layers", jets, {}, config,
                                       lambda paths: baselines.layer_energies(paths, replica=config.data.replica,
                                                                              tree=config.data.tree))
                  for name, jets in (("train", train), ("test", test))}
        for count in counts:
            rows = subsets[count]
            calibration = baselines.LayerCalibration().fit(layers["train"][rows],
                                                           train.attrs["truth_e"][rows].astype(np.float64))
            record("calib", "per-layer", count, calibration.predict(layers["test"]),
                   {"weights": calibration.to_dict()})

    files = {"results": str(out_dir / "results.json"), "predictions": str(out_dir / "predictions.npz")}
    _save_predictions(out_dir / "predictions.npz", predictions, test)
    files.update(_plots(task, config, counts, results, predictions, test, out_dir))
    summary = {
        "task": task.name, "config": config.to_dict(),
        "backbone": {"checkpoint": source.checkpoint, "sha256_16": source.checkpoint_hash, "step": source.step},
        "data": {"train": len(train), "val": len(val), "test": len(test), "notes": splits.notes,
                 "test_signal_fraction": float(np.mean(test.attrs["label"])) if task.classification else None},
        "results": results, "files": files, "seconds": round(time.perf_counter() - started, 1),
    }
    with atomic_output(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float, allow_nan=True))
    return summary


def _save_predictions(path: Path, predictions: dict, test: JetSet) -> None:
    """Test-jet ids, labels and truth with every method's predictions at the largest N (scores or GeV)."""
    arrays = {f"test_{name}": values for name, values in test.attrs.items()}
    arrays.update({f"pred_{method}": values for method, values in predictions.items()})
    with atomic_output(path, keep_suffix=True) as tmp:
        np.savez(tmp, **arrays)


def _file_features(cache: _Cache, kind: str, jets: JetSet, settings: dict, config: DownstreamConfig, compute) -> np.ndarray:
    """Per-jet features computed from the files of ``jets`` (cached per file set), in the rows of ``jets``."""
    key = {"kind": kind, "files": files_signature(jets.files), "settings": settings, "replica": config.data.replica}
    packed = cache.get(key, lambda: _pack(*compute(list(jets.files))))
    values, ids = packed[:, 2:], {"file_index": packed[:, 0].astype(np.int64), "entry": packed[:, 1].astype(np.int64)}
    return values[align_rows(jets, ids)]


def _pack(values: np.ndarray, ids: dict) -> np.ndarray:
    """Features and their (file_index, entry) in one float64 array, for the cache."""
    values = np.asarray(values, dtype=np.float64).reshape(len(ids["entry"]), -1)
    return np.column_stack([ids["file_index"], ids["entry"], values])


def _headline(task: Task, metrics: dict) -> str:
    if task.classification:
        return (f"AUC {metrics['auc']:.4f}, 1/eps_b(0.5) {metrics['rejection@0.5']:.1f}, "
                f"1/eps_b(0.3) {metrics['rejection@0.3']:.1f}")
    whole = metrics["all"]
    return (f"median response {whole['median']:.3f}, resolution IQR/1.349/median {whole['resolution_iqr']:.4f}, "
            f"68%/median {whole['resolution68']:.4f}")


def _plots(task: Task, config: DownstreamConfig, counts: list[int], results: list[dict], predictions: dict,
           test: JetSet, out_dir: Path) -> dict:
    files = {}
    largest = counts[-1]
    names = {r["method"]: f"{r['method']} ({r['head']})" if r["head"] not in ("-",) else r["method"] for r in results}
    if task.classification and predictions:
        label = test.attrs["label"]
        curves = {names[m]: (label, p) for m, p in predictions.items()}
        files["roc"] = str(plots.plot_roc(curves, out_dir / "roc.png", signal=task.signal, background=task.background,
                                          title=f"{task.name}: {largest} labelled jets, {len(test)} test jets"))
    elif predictions:
        tables = {names[r["method"]]: r["metrics"] for r in results if r["labels"] == largest}
        files["response"] = str(plots.plot_response(tables, out_dir / "response.png",
                                                    title=f"jet energy: {largest} labelled jets"))
    if len(counts) > 1:
        curves: dict = {}
        for r in results:
            value = r["metrics"]["auc"] if task.classification else r["metrics"]["all"]["resolution_iqr"]
            curves.setdefault(names[r["method"]], []).append((r["labels"], value))
        metric = "AUC" if task.classification else "resolution (IQR/1.349) / median"
        files["label_efficiency"] = str(plots.plot_label_efficiency(
            curves, out_dir / "label_efficiency.png", metric=metric, title=f"{task.name}: label efficiency"))
        if task.classification:
            curves = {}
            for r in results:
                curves.setdefault(names[r["method"]], []).append((r["labels"], r["metrics"]["rejection@0.5"]))
            files["label_efficiency_rejection"] = str(plots.plot_label_efficiency(
                curves, out_dir / "label_efficiency_rejection.png", metric=f"{task.background} rejection at 0.5",
                title=f"{task.name}: label efficiency"))
    return files


def results_table(summary: dict) -> str:
    """The results as a fixed-width text table (one row per method and label count)."""
    task = get_task(summary["task"])
    if task.classification:
        header = f"{'method':<22}{'labels':>8}{'AUC':>9}{'1/eps_b(0.5)':>14}{'1/eps_b(0.3)':>14}"
        lines = [header, "-" * len(header)]
        for r in summary["results"]:
            m = r["metrics"]
            lines.append(f"{r['method'] + ' (' + r['head'] + ')':<22}{r['labels']:>8}{m['auc']:>9.4f}"
                         f"{m['rejection@0.5']:>14.1f}{m['rejection@0.3']:>14.1f}")
    else:
        header = f"{'method':<26}{'labels':>8}{'median':>9}{'IQR/1.349':>11}{'res(IQR)':>10}{'res(68%)':>10}"
        lines = [header, "-" * len(header)]
        for r in summary["results"]:
            m = r["metrics"]["all"]
            lines.append(f"{r['method'] + ' (' + r['head'] + ')':<26}{r['labels']:>8}{m['median']:>9.3f}"
                         f"{m['iqr_sigma']:>11.4f}{m['resolution_iqr']:>10.4f}{m['resolution68']:>10.4f}")
    return "\n".join(lines)
