"""Contrastive pretraining: replicas (+ augmentations) of a jet pulled together, other jets apart.

One step reads ``loss(model(view_1), ..., model(view_R))``: R replica views of a batch of jets go
through the same backbone and projector; the loss sees the projections ``z`` (N, R, D_z). AdamW,
linear warm-up + cosine schedule, gradient clipping, bf16 autocast on GPU, everything seeded.

Run folder (``train.out_dir``): ``config.yaml`` (the resolved config), ``metrics.csv`` (one row
per ``log_every`` steps: loss, lr, jets/s, alignment, uniformity, positive/negative cosine,
effective ranks; and the probe AUC when measured; the same scalars go to TensorBoard in
``tensorboard/`` when the ``tensorboard`` package is installed), ``last.pt`` (written atomically every
``checkpoint_every`` steps and at the end).

Resuming (``resume=True``) restores weights, optimiser, scheduler, step, the data position (epoch
and batches consumed in it: the loader is deterministic given the seed, so the consumed batches
are regenerated and skipped) and the torch RNG: a run killed after a checkpoint and resumed ends
at the same weights as an uninterrupted run.

Distributed: under ``torchrun --nproc_per_node=N`` each process trains on its share of the chunks
(DDP, NCCL on GPUs, gloo on CPU); the projections of every rank are gathered with their gradients
(:mod:`gnnjets.losses.distributed`), so the loss sees the negatives of the whole global batch and
N ranks of B jets train as one process on N B jets.
"""

from __future__ import annotations

import csv
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch import nn
from tqdm import tqdm

from gnnjets.augment import augmentations_from_config
from gnnjets.checkpoint import CheckpointError, config_differences, load_checkpoint, save_checkpoint
from gnnjets.base.outputs import OutputPathError, check_run_folder
from gnnjets.config import PretrainConfig, config_from_dict, load_config
from gnnjets.data import JetDataset, JetReplicaDataset, make_loader
from gnnjets.losses import NTXentLoss, VICRegLoss
from gnnjets.losses.distributed import gather_across_ranks
from gnnjets.losses.diagnostics import contrastive_diagnostics
from gnnjets.modelcard import model_card
from gnnjets.nn.model import build_model
from gnnjets.runtime import configure_threads, resolve_device, tune_allocator
from gnnjets.train.errors import TrainingError
from gnnjets.train.probe import embed_dataset, linear_probe_auc
from gnnjets.train.schedule import lr_factor

#: config sections that must match for ``--resume`` (max_steps, logging and workers may change)
_RESUME_KEYS = ("graph", "model", "loss", "augment")
_RESUME_OPTIM_KEYS = ("batch_size", "lr", "weight_decay", "warmup_steps", "min_lr_factor", "grad_clip")
METRIC_COLUMNS = ("step", "epoch", "loss", "lr", "jets_per_s", "alignment", "uniformity", "pos_cosine", "neg_cosine",
                  "effective_rank_h", "effective_rank_z", "probe_auc")


@dataclass
class PretrainResult:
    step: int
    loss: float
    diagnostics: dict
    probe_auc: float | None
    checkpoint: Path


class _Views(nn.Module):
    """One forward call for all views (DDP allows one forward per backward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, views):
        outputs = [self.model(view) for view in views]
        h = torch.stack([h for h, _ in outputs], dim=1)  # (N, R, D)
        z = torch.stack([z for _, z in outputs], dim=1)  # (N, R, D_z)
        return h, z


def make_loss(config: PretrainConfig) -> nn.Module:
    loss = config.loss
    if loss.kind == "ntxent":
        return NTXentLoss(temperature=loss.temperature, positive_in_denominator=loss.positive_in_denominator)
    return VICRegLoss(invariance_weight=loss.invariance_weight, variance_weight=loss.variance_weight,
                      covariance_weight=loss.covariance_weight)


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _device(config: PretrainConfig, local_rank: int) -> torch.device:
    """The configured device; under torchrun each rank takes the GPU of its local rank."""
    try:
        device = resolve_device(config.train.device)
    except ValueError as err:
        raise TrainingError(f"train.device: {err}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def _tensorboard(out_dir: Path):
    """A TensorBoard writer in ``out_dir/tensorboard`` when the ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: metrics.csv holds everything
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _write_metrics(path: Path, row: dict, resume_step: int | None = None) -> None:
    """Append one row; on resume first drop rows written after the checkpoint's step."""
    if resume_step is not None and path.exists():
        with path.open() as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, METRIC_COLUMNS)
        if new:
            writer.writeheader()
        if row:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})


class Pretrainer:
    """Holds the run's pieces; :meth:`run` trains. Built by :func:`pretrain`."""

    def __init__(self, config: PretrainConfig, *, resume: bool = False, overwrite: bool = False):
        self.config = config
        self.rank, self.world, local_rank = _distributed()
        if self.rank == 0 and not resume:  # before any work: an earlier run is never replaced unasked
            try:
                check_run_folder(config.train.out_dir, overwrite=overwrite, option="train.out_dir")
            except OutputPathError as err:
                raise TrainingError(str(err)) from None
        self.device = _device(config, local_rank)
        if self.device.type == "cpu":
            configure_threads(config.train.threads, workers=config.data.num_workers)
        tune_allocator()
        self.out_dir = Path(config.train.out_dir)
        self.checkpoint_path = self.out_dir / "last.pt"
        self.metrics_path = self.out_dir / "metrics.csv"
        if not config.data.train:
            raise TrainingError("data.train is empty: give the ROOT files to pretrain on, e.g. "
                                "--set data.train=[data/qg_small.root]")
        torch.manual_seed(config.train.seed)
        self.dataset = JetReplicaDataset(
            config.data.train, replicas=config.data.replicas, transform=augmentations_from_config(config.augment),
            graph_config=config.graph, shuffle=True, shuffle_buffer=config.data.shuffle_buffer,
            seed=config.train.seed, chunk_jets=config.data.chunk_jets, pairing=config.data.pairing)
        #: what made these weights, saved in every checkpoint (gnnjets.modelcard)
        self.model_card = model_card(config.to_dict(), self.dataset.files, kind="pretraining") if self.rank == 0 else None
        jets_per_rank = self.dataset.num_jets // self.world
        if config.optim.batch_size > jets_per_rank:
            raise TrainingError(f"optim.batch_size={config.optim.batch_size} is larger than the {jets_per_rank} jets "
                                f"per process in {', '.join(map(str, self.dataset.files))}; lower optim.batch_size "
                                f"or add data")
        self.loader = make_loader(self.dataset, batch_size=config.optim.batch_size, num_workers=config.data.num_workers,
                                  drop_last=True, pin_memory=self.device.type == "cuda")
        self.probe_dataset = None
        if config.data.val:
            self.probe_dataset = JetDataset(config.data.val, replica=0, graph_config=config.graph, shuffle=False)
        self.model = build_model(config.model, seed=config.train.seed).to(self.device)
        self.views = _Views(self.model)
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.views = nn.parallel.DistributedDataParallel(self.views, device_ids=ids)
        self.criterion = make_loss(config)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        optim = config.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, optim.warmup_steps, optim.max_steps, optim.min_lr_factor))
        self.step, self.epoch, self.batches_in_epoch = 0, 0, 0
        self.probe_auc: float | None = None
        self.resumed_from: int | None = None
        if resume:
            self._resume()

    # ------------------------------------------------------------------------------------ state
    def _payload(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "data_position": {"epoch": self.epoch, "batches": self.batches_in_epoch, "world_size": self.world},
            "rng": {"torch": torch.get_rng_state()},
            "probe_auc": self.probe_auc,
            "model_card": self.model_card,
        }

    def _resume(self) -> None:
        if not self.checkpoint_path.exists():
            raise TrainingError(f"--resume: no checkpoint {self.checkpoint_path}; start without --resume")
        try:
            payload = load_checkpoint(self.checkpoint_path)
        except CheckpointError as err:
            raise TrainingError(f"--resume: {err}") from None
        saved, now = payload["config"], self.config.to_dict()
        differences = [d for key in _RESUME_KEYS for d in config_differences({key: saved.get(key)}, {key: now[key]})]
        differences += [d for key in _RESUME_OPTIM_KEYS
                        for d in config_differences({f"optim.{key}": saved["optim"].get(key)}, {f"optim.{key}": now["optim"][key]})]
        differences += config_differences({"data.replicas": saved["data"]["replicas"], "train.seed": saved["train"]["seed"]},
                                          {"data.replicas": now["data"]["replicas"], "train.seed": now["train"]["seed"]})
        if payload["data_position"].get("world_size", 1) != self.world:
            differences.append(f"world size: checkpoint {payload['data_position'].get('world_size')}, now {self.world}")
        if differences:
            raise TrainingError(f"--resume: {self.checkpoint_path} comes from an incompatible config ("
                                + "; ".join(differences) + "); start a new run folder or restore those values")
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.step = payload["step"]
        self.epoch = payload["data_position"]["epoch"]
        self.batches_in_epoch = payload["data_position"]["batches"]
        self.probe_auc = payload.get("probe_auc")
        torch.set_rng_state(payload["rng"]["torch"])
        self.resumed_from = self.step

    def save(self) -> None:
        if self.rank == 0:
            save_checkpoint(self.checkpoint_path, self._payload())

    # ------------------------------------------------------------------------------------ steps
    def _batches(self):
        """Batches from the current data position on, epoch after epoch."""
        while True:
            self.loader.set_epoch(self.epoch)
            produced = False
            for index, batch in enumerate(self.loader):
                produced = True
                if index < self.batches_in_epoch:
                    continue  # consumed before the checkpoint: regenerated identically, skipped
                self.batches_in_epoch = index + 1
                yield batch
            if not produced:
                raise TrainingError(f"no batch of {self.config.optim.batch_size} jets could be made from "
                                    f"{', '.join(map(str, self.dataset.files))} (skipped jets: {self.loader.skipped})")
            self.epoch += 1
            self.batches_in_epoch = 0

    def _train_step(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        views = [view.to(self.device, non_blocking=True) for view in batch]
        autocast = self.device.type == "cuda" and self.config.train.bf16
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=autocast):
            h, z = self.views(views)  # (N, R, D), (N, R, D_z)
            loss = self.criterion(gather_across_ranks(z))  # (world N, R, D_z): negatives from every rank
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss ({loss.item()}) at step {self.step + 1}; stopped without saving "
                                f"it: {self.checkpoint_path} holds the last good state (step "
                                f"{self.step - self.step % self.config.train.checkpoint_every}). Lower optim.lr or "
                                f"raise loss.temperature")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), h.detach(), z.detach()

    def probe(self) -> float | None:
        if self.probe_dataset is None or self.rank != 0:
            return None
        h, label = embed_dataset(self.model.backbone, self.probe_dataset, max_jets=self.config.train.probe_jets,
                                 device=self.device)
        self.probe_auc = linear_probe_auc(h, label, seed=self.config.train.seed)
        return self.probe_auc

    def run(self, *, stop_after: int | None = None) -> PretrainResult:
        """Train to ``optim.max_steps`` (``stop_after``: leave at that step without a final checkpoint, as a kill would)."""
        config = self.config
        # the first batch (and the step-0 probe) read the data before anything is written: a file that
        # cannot be read leaves the run folder as it was
        batches = self._batches() if self.step < config.optim.max_steps else iter(())
        first = next(batches, None)
        probe_at_start = self.step == 0 and config.train.probe_every and self.probe_dataset is not None
        # the untrained backbone's probe: the start of the AUC-vs-step curve (JetCLR, arXiv:2108.04253, Fig. 4)
        auc = self.probe() if probe_at_start else None
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
            _write_metrics(self.metrics_path, {}, resume_step=self.resumed_from if self.resumed_from is not None else -1)
            if probe_at_start:
                _write_metrics(self.metrics_path, {"step": 0, "epoch": 0, "probe_auc": auc})
        board = _tensorboard(self.out_dir) if self.rank == 0 else None
        progress = tqdm(total=config.optim.max_steps, initial=self.step, unit="step", file=None,
                        disable=not config.train.progress or self.rank != 0, desc="pretrain")
        loss, diagnostics = torch.tensor(float("nan")), {}
        jets_seen, clock = 0, time.perf_counter()
        self.model.train()
        if first is not None:
            for batch in itertools.chain([first], batches):
                loss, h, z = self._train_step(batch)
                self.step += 1
                jets_seen += batch.num_jets
                progress.update(1)
                last = self.step == config.optim.max_steps
                if self.step % config.train.log_every == 0 or last:
                    rate = jets_seen * self.world / (time.perf_counter() - clock)
                    diagnostics = contrastive_diagnostics(h.float(), z.float())
                    row = {"step": self.step, "epoch": self.epoch, "loss": round(loss.item(), 6),
                           "lr": self.scheduler.get_last_lr()[0], "jets_per_s": round(rate, 1),
                           **{k: round(v, 5) for k, v in diagnostics.items()}}
                    if config.train.probe_every and self.step % config.train.probe_every == 0 and not last:
                        row["probe_auc"] = self.probe()
                    if last:
                        row["probe_auc"] = self.probe()
                    if self.rank == 0:
                        _write_metrics(self.metrics_path, row)
                    if board is not None:
                        for key, value in row.items():
                            if key not in ("step", "epoch") and value is not None:
                                board.add_scalar(key, value, self.step)
                    progress.set_postfix(loss=f"{loss.item():.3f}", jets_s=f"{rate:.0f}")
                    jets_seen, clock = 0, time.perf_counter()
                if self.step % config.train.checkpoint_every == 0 or last:
                    self.save()
                if last or (stop_after is not None and self.step >= stop_after):
                    break
        progress.close()
        if board is not None:
            board.close()
        return PretrainResult(self.step, float(loss.item()), diagnostics, self.probe_auc, self.checkpoint_path)


def pretrain(config: PretrainConfig | dict | str | Path, *, resume: bool = False, overwrite: bool = False,
             stop_after: int | None = None) -> PretrainResult:
    """Run (or resume) a contrastive pretraining; what ``gnnjets-pretrain`` calls.

    Args:
        config: a :class:`~gnnjets.config.PretrainConfig`, a dict of its sections, or a YAML path or
            shipped name (``"default"``).
        resume: continue from ``<train.out_dir>/last.pt`` (same weights as an uninterrupted run).
        overwrite: start afresh in a ``train.out_dir`` that holds an earlier run, replacing its
            files; without it (or ``resume``) such a folder is refused before any work.
        stop_after: leave after this step without a final checkpoint (tests of resuming).

    Returns:
        A :class:`PretrainResult` (final step, loss, diagnostics, probe AUC, checkpoint path).

    Raises:
        :class:`~gnnjets.base.errors.GnnjetsError` subclasses for anything the user can fix (bad
        config, unreadable data, occupied run folder, incompatible resume, non-finite loss).
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = config_from_dict(config)
    trainer = Pretrainer(config, resume=resume, overwrite=overwrite)
    try:
        result = trainer.run(stop_after=stop_after)
        if trainer.world > 1:
            # every rank arrives before any tears the group down: a rank leaving while rank 0 still
            # writes the checkpoint can leave gloo waiting on a closed peer
            dist.barrier()
        return result
    finally:
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
