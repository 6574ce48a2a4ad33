"""Typed pretraining config: YAML -> dataclasses, unknown keys refused with the close match.

A config file has the sections ``data``, ``graph``, ``augment``, ``model``, ``loss``, ``optim``
and ``train``; every field has a default here, so a file states only what differs. ``graph`` and
``model`` are validated by their own records (:class:`gnnjets.graphs.GraphConfig`,
:class:`gnnjets.nn.config.ModelConfig`); ``augment`` is a list of ``{name: ..., <arguments>}``.
The resolved config (plain data) is saved in the run folder and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.base.hints import close_matches

LOSSES = ("ntxent", "vicreg")


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=list)  # ROOT files (or globs) with >= `replicas` replicas per jet
    val: str | None = None  # labelled file (one replica per jet is used) for the linear probe; None: no probe
    replicas: int = 2  # views per jet in the contrastive loss
    # "replicas": the views are different detector replicas; "same": one replica viewed `replicas`
    # times, the views differing only by the augmentations (an ablation arm)
    pairing: str = "replicas"
    num_workers: int = 2  # DataLoader processes: graph building and augmentation run beside training
    shuffle_buffer: int = 2048  # jets mixed per worker; larger mixes better, costs memory
    chunk_jets: int = 512  # jets read per chunk (the unit of sharding over workers and ranks)


@dataclass
class LossConfig:
    kind: str = "ntxent"  # "ntxent" (SimCLR, arXiv:2002.05709) or "vicreg" (arXiv:2105.04906)
    temperature: float = 0.1  # NT-Xent tau; 0.1 is the choice of JetCLR (arXiv:2108.04253) and of replica SSL (arXiv:2503.11632)
    positive_in_denominator: bool = True  # SimCLR (arXiv:2002.05709) / replica-SSL form; False = decoupled (DCL)
    invariance_weight: float = 25.0  # VICReg paper defaults 25/25/1
    variance_weight: float = 25.0
    covariance_weight: float = 1.0


@dataclass
class OptimConfig:
    batch_size: int = 256  # jets per step (x replicas graphs); replica SSL (arXiv:2503.11632) used 300 pairs
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 1e-4
    warmup_steps: int = 100  # linear warm-up, then cosine decay to min_lr_factor * lr
    max_steps: int = 2000
    min_lr_factor: float = 0.05
    grad_clip: float = 1.0  # global gradient-norm clip; 0 disables


@dataclass
class TrainConfig:
    seed: int = 0  # weights, data order, augmentations
    out_dir: str = "runs/pretrain"
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda"
    # torch intra-op threads on CPU; 0 = the cores left over by the data workers (at least 1): two
    # threads competing with a busy worker make every scatter call ~100x slower on a 2-core machine
    threads: int = 0
    bf16: bool = True  # bf16 autocast on GPU (ignored on CPU)
    log_every: int = 10  # steps between metric rows (loss, lr, jets/s, diagnostics)
    checkpoint_every: int = 200  # steps between checkpoints (always one at the end)
    probe_every: int = 500  # steps between linear probes (needs data.val); 0: only at the end
    probe_jets: int = 2000  # jets of data.val used by the probe (half fit, half AUC)
    progress: bool = True  # progress bar on stderr


@dataclass
class PretrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    graph: dict = field(default_factory=dict)  # GraphConfig fields; {} = CPU defaults
    # a random rotation about the jet axis and a common energy scale per view: symmetries that keep
    # what the tasks need (JetCLR's translations, smearing and splits erase it: docs/results.md)
    augment: list = field(default_factory=lambda: [{"name": "RotateJet"}, {"name": "ScaleJetEnergy"}])
    model: dict = field(default_factory=dict)  # ModelConfig fields; {} = CPU defaults
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(config: PretrainConfig) -> PretrainConfig:
    """Check ranges and the nested records; fill ``graph``/``model`` with their resolved defaults."""
    from gnnjets.augment import augmentations_from_config
    from gnnjets.data.replicas import PAIRINGS
    from gnnjets.graphs import GraphConfig
    from gnnjets.nn.config import ModelConfig

    if config.loss.kind not in LOSSES:
        raise ConfigError(f"loss.kind must be one of {', '.join(LOSSES)}, not {config.loss.kind!r}")
    if config.loss.temperature <= 0:
        raise ConfigError(f"loss.temperature must be > 0, not {config.loss.temperature}")
    if config.data.replicas < 2:
        raise ConfigError(f"data.replicas must be at least 2 (positive pairs), not {config.data.replicas}")
    for name in ("batch_size", "max_steps"):
        if getattr(config.optim, name) < 1:
            raise ConfigError(f"optim.{name} must be at least 1, not {getattr(config.optim, name)}")
    if config.optim.batch_size < 2:
        raise ConfigError("optim.batch_size must be at least 2: a contrastive batch needs negatives")
    if config.optim.lr <= 0 or config.optim.warmup_steps < 0 or config.optim.grad_clip < 0:
        raise ConfigError("optim.lr must be > 0, optim.warmup_steps and optim.grad_clip >= 0")
    for name in ("log_every", "checkpoint_every"):
        if getattr(config.train, name) < 1:
            raise ConfigError(f"train.{name} must be at least 1")
    if config.train.probe_every < 0 or (config.train.probe_every and config.train.probe_every % config.train.log_every):
        raise ConfigError(f"train.probe_every must be 0 or a multiple of train.log_every ({config.train.log_every}), "
                          f"not {config.train.probe_every}")
    if config.train.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"train.device must be auto, cpu or cuda, not {config.train.device!r}")
    if config.train.threads < 0:
        raise ConfigError("train.threads must be >= 0 (0: automatic)")
    if config.data.num_workers < 0:
        raise ConfigError("data.num_workers must be >= 0")
    if config.data.pairing not in PAIRINGS:
        raise ConfigError(f"data.pairing must be one of {', '.join(PAIRINGS)}, not {config.data.pairing!r}"
                          f"{close_matches(config.data.pairing, PAIRINGS, end='')}")
    try:
        config.graph = GraphConfig.from_dict(config.graph).to_dict()
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"graph: {err}") from None
    try:
        config.model = ModelConfig.from_dict(config.model).to_dict()
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model: {err}") from None
    try:
        augmentations_from_config(config.augment)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"augment: {err}") from None
    return config


def config_from_dict(data: dict | None) -> PretrainConfig:
    return validate(from_dict(PretrainConfig, data or {}))


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> PretrainConfig:
    """Read a YAML pretraining config (``None``: defaults), apply ``--set`` overrides, check it."""
    data = {} if path is None else read_config_file(path, folder="configs/pretrain/", example="data: ..., model: ...")
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path else str(err)) from None
