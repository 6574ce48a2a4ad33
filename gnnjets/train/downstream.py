"""Downstream training: heads on a frozen pretrained backbone, fine-tuning, and the baselines.

For one task (:mod:`gnnjets.tasks.tasks`) and one or more label counts N (``data.labels``; several
give the label-efficiency curve), every method is trained on the same N labelled jets, selected on
the same validation jets and scored on the same test jets (:mod:`gnnjets.train.splits`):

- ``pretrained``: the backbone of a pretraining checkpoint, frozen; its embeddings h of every jet
  are computed once (and cached on disk, :mod:`gnnjets.train.cache`); a head (linear or MLP) is
  fitted on them with early stopping on the validation loss (:mod:`gnnjets.train.heads`).
- ``finetuned`` (``--finetune``): backbone + head trained end to end from the checkpoint, the
  backbone at ``finetune_lr_factor`` times the learning rate (:mod:`gnnjets.train.supervised`).
- ``scratch``: the same backbone architecture from random weights, trained end to end.
- ``efp``: energy flow polynomials of the cells with the same head (``qg``, ``top``).
- ``em`` / ``calib``: the EM-scale jet energy, and per-layer linear weights fitted on the N
  training jets (``energy``).

Each method is a :class:`Method` record; :func:`run_downstream` is the loop over methods and label
counts. End-to-end runs write a checkpoint every epoch (``<out_dir>/models/<method>-N<n>.train.pt``)
and continue from it with ``resume=True``.

Outputs in ``run.out_dir`` (:mod:`gnnjets.tasks.report`): ``results.json`` (config, data sizes,
metrics of every method and N; written first), ``predictions.npz`` (test ids, labels, truth and
every method's predictions at the largest N), plots, and in ``models/`` the heads / models as
checkpoints that :class:`gnnjets.Embedder` can also read.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gnnjets.base.outputs import OutputPathError, atomic_output, check_run_folder
from gnnjets.checkpoint import CheckpointError, LoadedBackbone, load_backbone, save_checkpoint
from gnnjets.graphs import GraphConfig
from gnnjets.io.errors import SchemaVersionError
from gnnjets.io.provenance import check_schema_versions
from gnnjets.modelcard import model_card
from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import ModelConfig
from gnnjets.nn.heads import BackboneWithHead, Head
from gnnjets.runtime import configure_threads, resolve_device, tune_allocator
from gnnjets.tasks import report
from gnnjets.tasks.config import DownstreamConfig, config_from_dict, load_config
from gnnjets.tasks.tasks import get_task
from gnnjets.train.cache import ArrayCache, file_features
from gnnjets.train.errors import DownstreamError
from gnnjets.train.heads import fit_head, head_outputs
from gnnjets.train.inference import run_batches
from gnnjets.train.splits import label_counts, label_subsets, load_splits, val_subset
from gnnjets.train.supervised import train_supervised

log = logging.getLogger(__name__)


@dataclass
class Method:
    """One way of predicting the task from N labelled jets.

    ``fit(count, rows, val_rows)`` trains on the training jets ``rows`` (validating on
    ``val_rows``) and returns the test predictions (scores or GeV), a dict of training facts, and
    the model to save (a state dict payload) or ``None``.
    """

    name: str  # pretrained, finetuned, scratch, efp, em, calib
    head: str  # linear, mlp, per-layer, -
    fit: Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, dict, dict | None]]


@dataclass
class BackboneSource:
    """The architecture (graph and model config) every GNN method uses, and the pretrained backbone if any."""

    graph: dict  # resolved GraphConfig dict (with feature scaling)
    model: dict  # resolved ModelConfig dict
    loaded: LoadedBackbone | None = None

    def make(self, *, pretrained: bool, seed: int) -> Backbone:
        """A fresh backbone: a copy of the pretrained one, or random weights drawn from ``seed``."""
        if pretrained:
            return copy.deepcopy(self.loaded.backbone)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return Backbone(ModelConfig.from_dict(self.model).backbone)


def backbone_source(config: DownstreamConfig) -> BackboneSource:
    """The checkpoint's graph/model config and backbone, or the configured ones for scratch only."""
    path = config.backbone.checkpoint
    if path is None:
        return BackboneSource(GraphConfig.from_dict(config.graph).to_dict(),
                              ModelConfig.from_dict(config.model).to_dict())
    try:
        loaded = load_backbone(path)
    except CheckpointError as err:
        raise DownstreamError(str(err)) from None
    model = loaded.model_config.to_dict()
    if config.model and ModelConfig.from_dict(config.model).to_dict() != model:
        raise DownstreamError("model: the backbone checkpoint fixes the architecture; remove the model section (the "
                              "scratch baseline uses the checkpoint's architecture so that it compares like with like)")
    return BackboneSource(loaded.graph_config.to_dict(), model, loaded)


def run_downstream(config: DownstreamConfig | dict | str | Path, *, resume: bool = False,
                   overwrite: bool = False) -> dict:
    """Run every configured method for every label count; write results.json and plots; return the results.

    What ``gnnjets-downstream`` calls (also as ``gnnjets.downstream``).

    Args:
        config: a :class:`~gnnjets.tasks.config.DownstreamConfig`, a dict of its sections, or a YAML
            path or shipped name (``"qg"``, ``"energy"``, ``"top"``).
        resume: continue the end-to-end trainings of an interrupted run in ``run.out_dir`` from
            their per-epoch checkpoints; refused when the folder holds nothing to resume.
        overwrite: replace the files of an earlier run in ``run.out_dir``; without it (or
            ``resume``) a folder that holds files is refused before any work.

    Returns:
        The summary written to ``results.json``: config, data sizes, ``results`` (one dict per
        method and label count with its metrics), ``files``.
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = config_from_dict(config)
    try:  # before any work: an earlier run is never replaced unasked
        check_run_folder(config.run.out_dir, resume=resume, overwrite=overwrite, option="run.out_dir")
    except OutputPathError as err:
        raise DownstreamError(str(err)) from None
    started = time.perf_counter()
    try:
        device = resolve_device(config.run.device)
    except ValueError as err:
        raise DownstreamError(f"run.device: {err}") from None
    if device.type == "cpu":
        configure_threads(config.run.threads)
    tune_allocator()
    task = get_task(config.task, energy_target=config.energy.target)
    out_dir = Path(config.run.out_dir)
    cache = ArrayCache(config.run.cache_dir)
    source = backbone_source(config)
    if source.loaded is not None:
        try:
            for paths in filter(None, (config.data.train, config.data.val, config.data.test)):
                check_schema_versions(paths, source.loaded.schema_version,
                                      f"backbone checkpoint {source.loaded.path}")
        except SchemaVersionError as err:
            raise DownstreamError(str(err)) from None
    splits = load_splits(config, source.graph, task)
    for note in splits.notes:
        log.info(note)
    train, val, test = splits.train, splits.val, splits.test
    log.info("task %s: %d training, %d validation, %d test jets", task.name, len(train), len(val), len(test))
    y_train, y_val = task.target(train.attrs), task.target(val.attrs)
    counts = label_counts(config, len(train))
    subsets = label_subsets(len(train), counts, config.run.seed,
                            train.attrs["label"] if task.classification else None)
    seed = config.run.seed
    saved_config = {"task": task.name, "graph": source.graph, "model": source.model,
                    "head": dataclasses.asdict(config.head), "energy_target": config.energy.target}
    card = model_card(saved_config, train.files, kind=f"downstream {task.name}")
    methods = _methods(config, task, source, cache, (train, val, test), (y_train, y_val), saved_config,
                       device=device, resume=resume, models_dir=out_dir / "models")

    results: list[dict] = []
    predictions: dict[str, np.ndarray] = {}  # method -> test predictions at the largest N
    for method in methods:
        for count in counts:
            prediction, info, model = method.fit(count, subsets[count], val_subset(len(val), count, seed))
            metrics = task.evaluate(prediction, test.attrs, energy_bins=config.energy.bins)
            results.append({"method": method.name, "head": method.head, "labels": count, "metrics": metrics,
                            "uncertainty": task.bootstrap(prediction, test.attrs), "train": info})
            if count == counts[-1]:
                predictions[method.name] = prediction
            if model is not None:
                save_checkpoint(out_dir / "models" / f"{method.name}-{method.head}-N{count}.pt",
                                {"config": saved_config, "method": method.name, "labels": count,
                                 "backbone_checkpoint": config.backbone.checkpoint,
                                 "model_card": {**card, "kind": f"downstream {task.name}: {method.name} "
                                                                 f"({method.head}), {count} labels"}, **model})
            log.info("%s (%s), %d labels: %s", method.name, method.head, count, report.headline(task, metrics))

    loaded = source.loaded
    files = {"results": str(out_dir / "results.json"), "predictions": str(out_dir / "predictions.npz")}
    summary = {
        "task": task.name, "config": config.to_dict(),
        "backbone": {"checkpoint": None if loaded is None else str(loaded.path),
                     "sha256_16": None if loaded is None else loaded.sha256_16,
                     "step": None if loaded is None else loaded.step},
        "data": {"train": len(train), "val": len(val), "test": len(test), "notes": splits.notes,
                 "test_signal_fraction": float(np.mean(test.attrs["label"])) if task.classification else None},
        "results": results, "files": files, "seconds": round(time.perf_counter() - started, 1),
    }
    with atomic_output(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=float, allow_nan=True))
    report.save_predictions(out_dir / "predictions.npz", predictions, test)
    try:  # plots never cost results: results.json is already written
        files.update(report.make_plots(task, counts, results, predictions, test.attrs, out_dir))
    except Exception as err:  # noqa: BLE001 - matplotlib raises many types
        log.warning("plots not written: %s: %s", type(err).__name__, err)
    with atomic_output(out_dir / "results.json") as tmp:  # again, with the plots' files
        tmp.write_text(json.dumps(summary, indent=2, default=float, allow_nan=True))
    return summary


def _methods(config: DownstreamConfig, task, source: BackboneSource, cache: ArrayCache, sets: tuple, targets: tuple,
             saved_config: dict, *, device: torch.device, resume: bool, models_dir: Path) -> list[Method]:
    """The methods the config asks for, in the order they run and are reported."""
    train, val, test = sets
    y_train, y_val = targets
    seed, progress = config.run.seed, config.run.progress
    head_name = config.head.kind
    methods = []

    def feature_method(name: str, features: dict, extra: dict | None = None, backbone: Backbone | None = None):
        def fit(count, rows, val_rows):
            head, info = fit_head(features["train"][rows], y_train[rows], features["val"][val_rows], y_val[val_rows],
                                  task=task, head_config=config.head, optim=config.head_optim, seed=seed,
                                  device=device)
            model = None
            if backbone is not None:
                model = {"model": BackboneWithHead(copy.deepcopy(backbone), head).state_dict()}
            return task.predict(head_outputs(head, features["test"]), test.attrs), {**info, **(extra or {})}, model
        return Method(name, head_name, fit)

    # -- pretrained backbone, frozen: embeddings once, then a head per label count
    if source.loaded is not None and not config.backbone.finetune:
        backbone = source.make(pretrained=True, seed=seed).to(device)
        embeddings = {}
        for name, jets in (("train", train), ("val", val), ("test", test)):
            key = {"kind": "embed", "checkpoint": source.loaded.sha256_16, "jets": jets.signature(config.data.replica),
                   "graph": source.graph}
            embeddings[name] = cache.get(key, lambda jets=jets, name=name: run_batches(
                backbone, jets.batches(512), len(jets), device=device, progress=progress, desc=f"embed {name}"))
        methods.append(feature_method("pretrained", embeddings, backbone=backbone.cpu()))

    # -- end to end: fine-tuned from the checkpoint, and from scratch
    end_to_end = []
    if source.loaded is not None and config.backbone.finetune:
        end_to_end.append(("finetuned", True, config.backbone.finetune_lr_factor))
    if "scratch" in config.baselines:
        end_to_end.append(("scratch", False, 1.0))
    for name, pretrained, factor in end_to_end:
        def fit(count, rows, val_rows, name=name, pretrained=pretrained, factor=factor):
            sub_train, sub_val = train.subset(rows), val.subset(val_rows)
            backbone = source.make(pretrained=pretrained, seed=seed)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                head = Head(ModelConfig.from_dict(source.model).backbone.output_dim, config.head)
            sample = sub_train.subset(np.arange(min(len(sub_train), 2048)))
            head.set_input_scaling(torch.from_numpy(run_batches(backbone.to(device), sample.batches(512), len(sample),
                                                                device=device)))
            if not task.classification:
                head.set_output_scaling(torch.as_tensor(y_train[rows]))
            run_key = {"method": name, "labels": count, "seed": seed, "task": task.name, "config": saved_config,
                       "train_jets": sub_train.signature(config.data.replica),
                       "supervised": dataclasses.asdict(config.supervised)}
            model, info = train_supervised(
                BackboneWithHead(backbone, head), sub_train, y_train[rows], sub_val, y_val[val_rows], task=task,
                optim=config.supervised, backbone_lr_factor=factor, device=device, seed=seed,
                checkpoint=models_dir / f"{name}-{head_name}-N{count}.train.pt", run_key=run_key, resume=resume,
                progress=progress, desc=f"{name} N={count}")
            outputs = run_batches(model, test.batches(512), len(test), device=device)
            return task.predict(outputs, test.attrs), info, {"model": model.cpu().state_dict()}
        methods.append(Method(name, head_name, fit))

    # -- non-GNN baselines
    if "efp" in config.baselines:
        from gnnjets.tasks.baselines import efp

        settings = efp.efp_settings(task.name, config.efp)
        features = {name: file_features(cache, "efp", jets, settings, config,
                                        lambda paths: efp.efp_features(paths, replica=config.data.replica,
                                                                       tree=config.data.tree, progress=progress,
                                                                       **settings))
                    for name, jets in (("train", train), ("val", val), ("test", test))}
        methods.append(feature_method("efp", features, {"n_efps": int(features["train"].shape[1])}))
    if "em" in config.baselines:
        methods.append(Method("em", "-", lambda count, rows, val_rows: (test.attrs["jet_e"].astype(np.float64), {},
                                                                       None)))
    if "calib" in config.baselines:
        from gnnjets.tasks.baselines import calibration

        layers = {name: file_features(cache, "layers", jets, {}, config,
                                      lambda paths: calibration.layer_energies(paths, replica=config.data.replica,
                                                                               tree=config.data.tree))
                  for name, jets in (("train", train), ("test", test))}

        def fit_calibration(count, rows, val_rows):
            fitted = calibration.LayerCalibration().fit(layers["train"][rows],
                                                        train.attrs["truth_e"][rows].astype(np.float64))
            return fitted.predict(layers["test"]), {"weights": fitted.to_dict()}, None
        methods.append(Method("calib", "per-layer", fit_calibration))
    return methods


def results_table(summary: dict) -> str:
    """The results as a fixed-width text table (one row per method and label count)."""
    return report.results_table(summary)
