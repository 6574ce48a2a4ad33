"""``run_study``: pretrain every arm, fit every method on every label subset of every task, report.

The run folder (``out_dir``):

- ``arms/<arm>/``: each arm's pretraining run (``last.pt``, ``metrics.csv``, ``config.yaml``);
- ``cache/``: embeddings and baseline features, keyed by what they depend on;
- ``fits.jsonl``: one line per finished fit (task, method, labels, subset, metrics, facts), appended
  as it finishes; a rerun with ``resume=True`` skips every fit (and finished arm) already there;
- ``timings.json``: wall seconds per stage (each arm's pretraining, each task), summed over resumes;
- ``results.json``, ``results.md``, ``label_efficiency_<task>.png/.pdf``, ``ablation_<task>.png/.pdf``:
  written by :mod:`gnnjets.study.report` from ``fits.jsonl`` (:func:`write_study_report` writes
  them from the fits finished so far, running nothing).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from gnnjets.base.config import apply_overrides, read_config_file
from gnnjets.base.outputs import atomic_output
from gnnjets.checkpoint import config_differences, load_backbone, load_checkpoint
from gnnjets.config import config_from_dict as pretrain_config_from_dict
from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import ModelConfig
from gnnjets.runtime import configure_threads, resolve_device, tune_allocator
from gnnjets.study import data as study_data
from gnnjets.study import methods, report
from gnnjets.study.config import BASELINES, StudyConfig, config_from_dict
from gnnjets.train.errors import DownstreamError
from gnnjets.train.inference import run_batches
from gnnjets.train.pretrain import pretrain
from gnnjets.train.splits import disjoint_label_subsets

log = logging.getLogger(__name__)


def _merge(base: dict, update: dict) -> dict:
    """``base`` with the nested dict ``update`` merged in (a copy)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def arm_pretrain_config(config: StudyConfig, arm, out_dir: Path) -> dict:
    """The resolved pretraining config of ``arm``: base file, the study's shared section, the arm's overrides."""
    data = read_config_file(config.base_config, folder="configs/pretrain/", example="data: ..., optim: ...")
    data = _merge(data, config.pretrain)
    apply_overrides(data, list(arm.overrides))
    data = _merge(data, {"train": {"out_dir": str(out_dir / "arms" / arm.name), "seed": config.seed,
                                   "progress": False}})
    return pretrain_config_from_dict(data).to_dict()


#: the sections of a pretraining config that make two runs of an arm the same run
_ARM_SECTIONS = ("data", "graph", "augment", "model", "loss", "optim")
_ARM_IGNORED = ("data.num_workers", "data.val")


def _arm_differences(saved: dict, resolved: dict) -> list[str]:
    differences = [d for key in _ARM_SECTIONS for d in config_differences({key: saved.get(key)}, {key: resolved[key]})]
    return [d for d in differences if not d.startswith(_ARM_IGNORED)]


class Arms:
    """Each arm's backbone (frozen, eval mode) and graph config, pretrained on demand."""

    def __init__(self, config: StudyConfig, out_dir: Path, timings: Timings, overwrite: bool = False):
        self.config, self.out_dir, self.timings, self.overwrite = config, out_dir, timings, overwrite
        self.checkpoints: dict[str, Path | None] = {}
        self.graphs: dict[str, dict] = {}

    def prepare(self) -> None:
        for arm in self.config.arms:
            resolved = arm_pretrain_config(self.config, arm, self.out_dir)
            self.graphs[arm.name] = resolved["graph"]
            if not arm.pretrain:
                self.checkpoints[arm.name] = None
                continue
            path = Path(resolved["train"]["out_dir"]) / "last.pt"
            done = False
            if path.exists():
                saved = load_checkpoint(path)
                differences = _arm_differences(saved["config"], resolved)
                if differences and not self.overwrite:
                    raise DownstreamError(f"arm {arm.name}: {path} was pretrained with another config ("
                                          + "; ".join(differences[:4]) + "); rerun with --overwrite to pretrain "
                                          "it again, or restore the config")
                if differences:
                    shutil.rmtree(path.parent)
                else:
                    done = saved.get("step") == resolved["optim"]["max_steps"]
            if not done:
                log.info("arm %s: pretraining %d steps (%s)", arm.name, resolved["optim"]["max_steps"],
                         ", ".join(arm.overrides) or "base config")
                start = time.perf_counter()
                # a killed arm continues from its last checkpoint; one killed before its first starts again
                pretrain(resolved, resume=path.exists(), overwrite=not path.exists())
                self.timings.add(f"pretrain {arm.name}", time.perf_counter() - start)
            self.checkpoints[arm.name] = path

    def backbone(self, name: str) -> Backbone:
        path = self.checkpoints[name]
        if path is not None:
            return load_backbone(path).backbone.eval()
        arm = next(a for a in self.config.arms if a.name == name)
        model = ModelConfig.from_dict(arm_pretrain_config(self.config, arm, self.out_dir)["model"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            return Backbone(model.backbone).eval()

    def key(self, name: str) -> str:
        path = self.checkpoints[name]
        return f"untrained-seed{self.config.seed}-{json.dumps(self.graphs[name], sort_keys=True)}" if path is None \
            else f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}"


class _Learned(torch.nn.Module):
    """The learned part of a backbone's h (:meth:`~gnnjets.nn.backbone.Backbone.encode`), whether or not
    the backbone appends the jet scalars: the study adds them itself, as the ``<arm>+scalars`` method."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, batch):
        return self.backbone.encode(batch)


class Timings:
    """``timings.json``: wall seconds per stage, summed over the runs of a resumed study."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.seconds: dict[str, float] = {}
        if resume and path.exists():
            try:
                self.seconds = {k: float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError):
                log.warning("%s is unreadable; the times start afresh", path)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 1)
        with atomic_output(self.path) as tmp:
            tmp.write_text(json.dumps(self.seconds, indent=1))


class FitLog:
    """``fits.jsonl``: the finished fits, appended one line at a time (a torn last line is ignored)."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.records: list[dict] = []
        if path.exists() and resume:
            for line in path.read_text().splitlines():
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    log.warning("%s: a torn line (a killed run) is ignored", path)
        self.done = {self._key(r) for r in self.records}

    @staticmethod
    def _key(record: dict) -> tuple:
        return record["task"], record["method"], record["labels"], record["subset"]

    def add(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
        self.records.append(record)
        self.done.add(self._key(record))


def run_study(config: StudyConfig | dict, *, resume: bool = False, overwrite: bool = False) -> dict:
    """Run (or continue) a study; returns the summary that ``results.json`` holds."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    out_dir = Path(config.out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (resume or overwrite):
        raise DownstreamError(f"{out_dir} already holds a study; continue it with --resume, or start afresh "
                              f"with --overwrite (which replaces its fits), or choose another out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite and (out_dir / "fits.jsonl").exists():
        (out_dir / "fits.jsonl").unlink()
    configure_threads(config.threads or None)
    tune_allocator()
    device = resolve_device("auto")
    started = time.perf_counter()
    timings = Timings(out_dir / "timings.json", resume=not overwrite)
    arms = Arms(config, out_dir, timings, overwrite=overwrite)
    arms.prepare()
    fits = FitLog(out_dir / "fits.jsonl", resume=True)
    notes = {}
    for task_name, samples in config.task_samples().items():
        start = time.perf_counter()
        notes[task_name] = _run_task(config, task_name, samples, arms, fits, out_dir, device)
        timings.add(f"task {task_name}", time.perf_counter() - start)
    timings.add("total", time.perf_counter() - started)
    return report.write_report(config, fits.records, out_dir, timings=timings.seconds, notes=notes)


def write_study_report(config: StudyConfig | dict) -> dict:
    """The report (results.json, results.md, plots) of the fits a study has finished so far, running
    nothing: for a study that is still running, or was stopped before its end."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    out_dir = Path(config.out_dir)
    if not (out_dir / "fits.jsonl").exists():
        raise DownstreamError(f"{out_dir} holds no fits.jsonl: run the study first (without --report)")
    fits = FitLog(out_dir / "fits.jsonl", resume=True)
    timings = Timings(out_dir / "timings.json", resume=True)
    return report.write_report(config, fits.records, out_dir, timings=timings.seconds,
                               notes={"partial": "report written with --report from the fits finished so far"})


def _run_task(config: StudyConfig, task_name: str, samples, arms: Arms, fits: FitLog, out_dir: Path,
              device: torch.device) -> list[str]:
    cache = study_data.FeatureCache(out_dir / "cache")
    task_arms = config.arms_of(task_name)
    base_arm = task_arms[0].name
    jets = study_data.load_jets(samples, arms.graphs[base_arm])
    rows = study_data.select_rows(task_name, samples, jets, config.seed)
    task, y_pool = rows.task, rows.y_pool
    log.info("task %s: pool %d jets, test %d jets; %s", task_name, len(rows.pool_rows), len(rows.test_rows),
             "; ".join(rows.notes))

    # -- the features of every linear method, in the selected rows
    sets = {}  # graph config (json) -> (pool JetSet, test JetSet) of the selected rows
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for arm in task_arms:
        graph_key = json.dumps(arms.graphs[arm.name], sort_keys=True)
        if graph_key not in sets:
            loaded = jets if arm.name == base_arm else study_data.load_jets(samples, arms.graphs[arm.name])
            study_data.check_same_rows(rows, loaded)
            sets[graph_key] = (loaded[0].subset(rows.pool_rows), loaded[1].subset(rows.test_rows))
        pool, test = sets[graph_key]
        encoder = _Learned(arms.backbone(arm.name)).to(device)
        embedded = [cache.get({"kind": f"embed-{arm.name}", "arm": arms.key(arm.name), "rows": rows.key(),
                               "part": part, "what": "learned"}, lambda jetset=jetset: run_batches(
            encoder, jetset.batches(512), len(jetset), device=device, desc=f"embed {arm.name}"))
            for part, jetset in (("pool", pool), ("test", test))]
        features[arm.name] = (embedded[0], embedded[1])
        if config.jet_scalars:
            features[f"{arm.name}+scalars"] = (np.column_stack([embedded[0], rows.pool_attrs["jet_features"]]),
                                               np.column_stack([embedded[1], rows.test_attrs["jet_features"]]))
    wanted = [b for b in config.baselines if b in BASELINES[task_name]]
    for name in wanted:
        if name in ("observables", "efp+observables", "calibration"):
            features[name] = study_data.baseline_features(name, rows, cache, config.efp)

    # -- label subsets, then every (method, N, subset) not done yet
    labels = rows.pool_attrs["label"] if task.classification else None

    def draw(count: int):  # where the pool cannot hold `subsets` disjoint sets, `overlapping_subsets` of them
        return disjoint_label_subsets(len(rows.pool_rows), count, config.subsets, config.seed, labels,
                                      config.overlapping_subsets)

    subsets = {n: draw(n) for n in config.labels}
    base_pool, base_test = sets[json.dumps(arms.graphs[base_arm], sort_keys=True)]

    def record(method: str, count: int, k: int, fit_fn) -> None:
        subset = subsets[count]
        if (task_name, method, subset.count, k) in fits.done:
            return
        start = time.perf_counter()
        fit = fit_fn(subset.subsets[k])
        metrics = task.evaluate(fit.prediction, rows.test_attrs, energy_bins=config.energy_bins)
        fits.add({"task": task_name, "method": method, "labels": subset.count, "subset": k,
                  "disjoint": subset.disjoint, "metrics": metrics, "info": fit.info,
                  "seconds": round(time.perf_counter() - start, 2)})
        log.info("%s %s N=%d #%d: %s", task_name, method, subset.count, k, report.headline(task, metrics))

    for name, (x_pool, x_test) in features.items():
        if name == "calibration":
            continue
        for count in config.labels:
            for k in range(len(subsets[count].subsets)):
                record(name, count, k, lambda r, x_pool=x_pool, x_test=x_test: methods.fit_on_features(
                    task, x_pool, y_pool, x_test, rows.test_attrs, r, config.seed + k))
    if "calibration" in wanted:
        layers_pool, layers_test = features["calibration"]
        for count in config.labels:
            for k in range(len(subsets[count].subsets)):
                record("calibration", count, k, lambda r: methods.fit_calibration(
                    layers_pool, rows.pool_attrs["truth_e"].astype(np.float64), layers_test, r))
    if "em" in wanted:
        for count in config.labels:
            record("em", count, 0, lambda r: methods.Fit(rows.test_attrs["jet_e"].astype(np.float64), {}))
    supervised = config.supervised
    end_to_end = [name for name in ("scratch", "finetuned") if name in wanted]
    pretrained = [a.name for a in task_arms if a.pretrain]
    finetune_arm = (supervised.finetune_arm if supervised.finetune_arm in pretrained else pretrained[-1]) \
        if "finetuned" in end_to_end and pretrained else None
    if finetune_arm is None and "finetuned" in end_to_end:
        end_to_end.remove("finetuned")
    for name in end_to_end:
        if name == "scratch":
            graph = arms.graphs[base_arm]
            pool, test = base_pool, base_test
            base = task_arms[0]
            model = ModelConfig.from_dict(arm_pretrain_config(config, base, out_dir)["model"])

            def make(model=model):
                return Backbone(model.backbone)
            augment, factor = [supervised.augment or None, None], 1.0
        else:
            graph = arms.graphs[finetune_arm]
            pool, test = sets[json.dumps(graph, sort_keys=True)]

            def make():
                return copy.deepcopy(arms.backbone(finetune_arm)).train()
            augment, factor = [None], supervised.finetune_lr_factor
        for count in supervised.labels or config.labels:
            if count not in subsets:
                subsets[count] = draw(count)
            for k in range(min(supervised.subsets or config.subsets, len(subsets[count].subsets))):
                record(name, count, k, lambda r, pool=pool, test=test, make=make, augment=augment, factor=factor,
                       graph=graph, name=name: methods.fit_end_to_end(
                    task, make, pool, y_pool, test, r, supervised, graph=graph, augment=augment, lr_factor=factor,
                    seed=config.seed + k, device=device, checkpoint_dir=out_dir / "cache", name=f"{task_name}-{name}"))
    return rows.notes
