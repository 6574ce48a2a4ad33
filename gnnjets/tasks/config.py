"""Typed downstream config: YAML + ``--set`` -> dataclasses, unknown keys refused with the close match.

Sections: ``task``, ``data``, ``backbone``, ``head``, ``head_optim`` (heads on frozen embeddings),
``supervised`` (end-to-end training: ``scratch`` and ``--finetune``), ``baselines``, ``energy``,
``efp``, ``model``/``graph`` (only without a backbone checkpoint) and ``run``. Every field has a
default here; ``configs/downstream/`` holds one file per task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.nn.heads import HeadConfig
from gnnjets.tasks.tasks import DEFAULT_ENERGY_BINS, ENERGY_TARGETS, TASK_NAMES

#: baselines per task: trained or fitted on the same jets, scored with the same metrics
BASELINES = {"qg": ("scratch", "efp"), "top": ("scratch", "efp"), "energy": ("scratch", "em", "calib")}


@dataclass
class DataSection:
    train: list[str] = field(default_factory=list)  # labelled ROOT files (globs allowed)
    val: list[str] = field(default_factory=list)  # for early stopping / model choice; [] = carve val_fraction from train
    test: list[str] = field(default_factory=list)  # scored jets; [] = carve test_fraction from train
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # used only when test is []
    replica: int = 0  # which detector replica of each jet is used
    labels: list[int] = field(default_factory=list)  # labelled training jets; several = label-efficiency curve; 0 or [] = all
    tree: str | None = None  # TTree name for foreign files (None: ours, 'jets')
    mapping: str | None = None  # branch-mapping YAML for foreign files (configs/schemas/)


@dataclass
class BackboneSection:
    checkpoint: str | None = None  # pretraining checkpoint (runs/.../last.pt); None: baselines only
    finetune: bool = False  # train the backbone too, at finetune_lr_factor x supervised.lr
    finetune_lr_factor: float = 0.1


@dataclass
class HeadOptim:
    """Training of a head on fixed features (frozen embeddings, EFPs): Adam, early stopping on the val loss."""

    lr: float = 1e-2
    weight_decay: float = 0.0
    batch_size: int = 512
    max_epochs: int = 300  # at most this many validations (one per epoch, or per several when epochs are short)
    min_steps: int = 3000  # few labels = one-batch epochs: validate every few epochs so this many steps fit
    patience: int = 20  # validations without val-loss improvement before stopping (the best is kept)


@dataclass
class SupervisedOptim:
    """End-to-end training of backbone + head on graphs (``scratch``, ``--finetune``): AdamW, warm-up + cosine."""

    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 10
    min_steps: int = 300  # small label counts get more epochs, so that every run takes at least this many steps
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_every: int = 0  # steps between val evaluations (the best is kept); 0: once per epoch


@dataclass
class EnergySection:
    target: str = "ratio"  # "ratio": E_pred = jet_e * exp(head); "absolute": E_pred = exp(head)
    bins: list[float] = field(default_factory=lambda: list(DEFAULT_ENERGY_BINS))  # E_true bin edges [GeV]


@dataclass
class RunSection:
    out_dir: str = "runs/downstream"  # results.json, PNGs, head and model checkpoints
    cache_dir: str = "runs/cache"  # frozen embeddings and EFPs, keyed by checkpoint, files and settings
    seed: int = 0
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    threads: int = 0  # torch CPU threads; 0 = all cores
    progress: bool = True


@dataclass
class DownstreamConfig:
    task: str = "qg"
    data: DataSection = field(default_factory=DataSection)
    backbone: BackboneSection = field(default_factory=BackboneSection)
    head: HeadConfig = field(default_factory=HeadConfig)
    head_optim: HeadOptim = field(default_factory=HeadOptim)
    supervised: SupervisedOptim = field(default_factory=SupervisedOptim)
    baselines: list[str] = field(default_factory=list)
    energy: EnergySection = field(default_factory=EnergySection)
    efp: dict = field(default_factory=dict)  # overrides of gnnjets.tasks.baselines.efp.EFP_PRESETS[task]
    model: dict = field(default_factory=dict)  # ModelConfig for scratch without a checkpoint ({} = CPU defaults)
    graph: dict = field(default_factory=dict)  # GraphConfig without a checkpoint (with one, the checkpoint's is used)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(config: DownstreamConfig) -> DownstreamConfig:
    """Check ranges and combinations; the message names the field and the fix."""
    if config.task not in TASK_NAMES:
        raise ConfigError(f"task must be one of {', '.join(TASK_NAMES)}, not {config.task!r}")
    data = config.data
    if not data.train:
        raise ConfigError("data.train is empty: give labelled ROOT files, e.g. --train data/big/qg_train.root")
    if not data.test and not 0 < data.test_fraction < 1:
        raise ConfigError("data.test is empty and data.test_fraction is not in (0, 1): give --test files or "
                          "--set data.test_fraction=0.2")
    if not data.val and not 0 < data.val_fraction < 1:
        raise ConfigError("data.val is empty and data.val_fraction is not in (0, 1): give --val files or "
                          "--set data.val_fraction=0.2")
    if not data.test and not data.val and data.val_fraction + data.test_fraction >= 0.9:
        raise ConfigError("data.val_fraction + data.test_fraction leave under 10% of data.train for training")
    if data.replica < 0:
        raise ConfigError(f"data.replica must be >= 0, not {data.replica}")
    if any(n < 2 and n != 0 for n in data.labels):
        raise ConfigError(f"data.labels must be label counts >= 2 (0: all training jets), not {data.labels}")
    if len(set(data.labels)) != len(data.labels):
        raise ConfigError(f"data.labels has repeated counts: {data.labels}")
    allowed = BASELINES[config.task]
    for name in config.baselines:
        if name not in allowed:
            raise ConfigError(f"baseline {name!r} does not apply to task {config.task}; choose from {', '.join(allowed)}")
    if len(set(config.baselines)) != len(config.baselines):
        raise ConfigError(f"baselines has repeats: {config.baselines}")
    if config.backbone.checkpoint is None and not config.baselines:
        raise ConfigError("nothing to run: give --backbone CKPT (a pretrained backbone) and/or --baseline ...")
    if config.backbone.checkpoint is not None and not Path(config.backbone.checkpoint).is_file():
        raise ConfigError(f"backbone checkpoint {config.backbone.checkpoint} does not exist; pretrain one with "
                          f"gnnjets-pretrain (it writes <train.out_dir>/last.pt)")
    if config.backbone.checkpoint is not None and config.graph:
        raise ConfigError("graph: the backbone checkpoint fixes the graph config (and feature scaling); remove the "
                          "graph section or run without --backbone")
    if config.backbone.finetune and config.backbone.checkpoint is None:
        raise ConfigError("--finetune needs --backbone CKPT")
    if config.backbone.finetune_lr_factor <= 0:
        raise ConfigError("backbone.finetune_lr_factor must be > 0")
    if config.energy.target not in ENERGY_TARGETS:
        raise ConfigError(f"energy.target must be one of {', '.join(ENERGY_TARGETS)}, not {config.energy.target!r}")
    bins = config.energy.bins
    if len(bins) < 2 or any(b <= a for a, b in zip(bins, bins[1:])) or bins[0] <= 0:
        raise ConfigError(f"energy.bins must be at least two increasing positive edges [GeV], not {bins}")
    for section, names in (("head_optim", ("lr", "batch_size", "max_epochs", "min_steps", "patience")),
                           ("supervised", ("lr", "batch_size", "epochs"))):
        for name in names:
            if getattr(getattr(config, section), name) <= 0:
                raise ConfigError(f"{section}.{name} must be > 0, not {getattr(getattr(config, section), name)}")
    if config.supervised.min_steps < 0 or config.supervised.warmup_steps < 0 or config.supervised.eval_every < 0:
        raise ConfigError("supervised.min_steps, warmup_steps and eval_every must be >= 0")
    if config.run.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"run.device must be auto, cpu or cuda, not {config.run.device!r}")
    if config.run.threads < 0:
        raise ConfigError("run.threads must be >= 0 (0: all cores)")
    if config.model:
        from gnnjets.nn.config import ModelConfig

        try:
            ModelConfig.from_dict(config.model)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"model: {err}") from None
    if config.efp:
        from gnnjets.tasks.baselines.efp import efp_settings

        try:
            efp_settings(config.task, config.efp)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"efp: {err}") from None
    return config


def config_from_dict(data: dict | None) -> DownstreamConfig:
    try:
        config = from_dict(DownstreamConfig, data or {})
    except ValueError as err:  # HeadConfig's own checks
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"head: {err}") from None
    return validate(config)


def load_config(path: str | Path | None, overrides: list[str] | None = None, *, base: dict | None = None) -> DownstreamConfig:
    """Read a YAML downstream config (``None``: defaults), merge ``base`` (command-line options), apply ``--set``."""
    data = {} if path is None else read_config_file(path, folder="configs/downstream/", example="task: ..., data: ...")
    for dotted, value in (base or {}).items():
        node = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}" if path else str(err)) from None
