"""The study's configuration: samples, pretraining arms, label counts, baselines and budget, in one YAML.

A study answers one question with error bars: does a frozen, pretrained representation with a
linear head beat the baselines at every number of labels, and which pretext choices make it do so?
Every arm pretrains the same base config (``pretrain``) on the same data for the same steps, with
its own ``overrides`` (``section.key=value`` strings, as ``--set``); the untrained arm
(``pretrain: false``) is the base architecture with random weights. See ``configs/study/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.base.hints import close_matches

TASKS = ("qg", "top", "energy")
#: baselines a study can run (per task: classification or energy)
BASELINES = {"qg": ("observables", "efp+observables", "scratch", "finetuned"),
             "top": ("observables", "efp+observables", "scratch", "finetuned"),
             "energy": ("em", "calibration", "scratch", "finetuned")}


@dataclass
class TaskSamples:
    """The labelled jets of one task (replica 0 of each jet is used)."""

    train: list[str] = field(default_factory=list)  # the pool the label subsets are drawn from
    test: list[str] = field(default_factory=list)  # scored once per fit; never seen by any pretraining
    balance: bool = True  # classification: equal numbers of each class in the pool and the test set
    max_train: int = 0  # cap on the pool after balancing (0: all)
    max_test: int = 0  # cap on the test set after balancing (0: all)


@dataclass
class Arm:
    """One pretraining arm of the ablation."""

    name: str = ""
    pretrain: bool = True  # false: the base architecture with random weights
    overrides: list[str] = field(default_factory=list)  # on top of the study's base pretraining config
    tasks: list[str] = field(default_factory=list)  # the tasks it is evaluated on ([]: every task)
    description: str = ""


@dataclass
class Supervised:
    """End-to-end training of the scratch and fine-tuned baselines (each on exactly N labels)."""

    labels: list[int] = field(default_factory=list)  # label counts to run (default: the study's)
    subsets: int = 0  # label subsets per count (0: the study's)
    val_fraction: float = 0.2  # of the N labels, held out for early stopping and the choice below
    # scratch: trained with these augmentations and without, the better by validation loss is kept
    augment: list = field(default_factory=lambda: [{"name": "RotateJet"}])
    epochs: int = 20
    min_steps: int = 200
    max_steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    finetune_arm: str = ""  # the arm whose backbone is fine-tuned ("": the last pretrained arm)
    finetune_lr_factor: float = 0.1


@dataclass
class StudyConfig:
    name: str = "study"
    out_dir: str = "runs/study"
    seed: int = 0
    base_config: str = "configs/pretrain/default.yaml"  # the pretraining config every arm starts from
    pretrain: dict = field(default_factory=dict)  # nested overrides of it shared by every arm (data.train, optim, ...)
    arms: list[Arm] = field(default_factory=list)
    tasks: dict = field(default_factory=dict)  # task name -> TaskSamples
    labels: list[int] = field(default_factory=lambda: [100, 300, 1000, 3000, 10000, 0])  # 0: every pool jet
    subsets: int = 5  # label subsets per count, disjoint where the pool allows
    # how many subsets when the pool cannot hold `subsets` disjoint ones of a count (e.g. N = all):
    # overlapping subsets measure only the fit's seed, not the label draw; null: `subsets`
    overlapping_subsets: int | None = None
    baselines: list[str] = field(default_factory=lambda: ["observables", "efp+observables", "em", "calibration",
                                                          "scratch"])
    jet_scalars: bool = True  # also report each arm with the jet scalars appended to h ("<arm>+scalars")
    # per task, the method the targets are checked for (default: the task's last arm, +scalars if jet_scalars)
    headline: dict = field(default_factory=dict)
    # the arms playing the ablation's roles: none (no invariance), replicas, augmentations, both
    ablation: dict = field(default_factory=dict)
    efp: dict = field(default_factory=dict)  # overrides of the EFP presets (all tasks), e.g. {max_cells: 60}
    supervised: Supervised = field(default_factory=Supervised)
    energy_bins: list[float] = field(default_factory=lambda: [100.0, 200.0, 300.0, 400.0, 600.0, 1000.0, 2500.0])
    threads: int = 0  # torch CPU threads (0: automatic)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def task_samples(self) -> dict[str, TaskSamples]:
        return {name: from_dict(TaskSamples, value, f"tasks.{name}") for name, value in self.tasks.items()}

    def arms_of(self, task: str) -> list[Arm]:
        """The arms evaluated on ``task``, in config order."""
        return [arm for arm in self.arms if not arm.tasks or task in arm.tasks]


def validate(config: StudyConfig) -> StudyConfig:
    """Ranges and combinations; the message names the field and the fix."""
    if not config.arms:
        raise ConfigError("arms is empty: name at least one arm, e.g. {name: untrained, pretrain: false}")
    names = [arm.name for arm in config.arms]
    if any(not name or "/" in name for name in names) or len(set(names)) != len(names):
        raise ConfigError(f"arms need unique, non-empty names without '/': {names}")
    if not config.tasks:
        raise ConfigError(f"tasks is empty: give at least one of {', '.join(TASKS)} with train and test files")
    for name, samples in config.task_samples().items():
        if name not in TASKS:
            raise ConfigError(f"tasks: unknown task {name!r}{close_matches(name, TASKS, end='')} "
                              f"Tasks: {', '.join(TASKS)}")
        if not samples.train or not samples.test:
            raise ConfigError(f"tasks.{name} needs train and test files")
    for arm in config.arms:
        for task in arm.tasks:
            if task not in config.tasks:
                raise ConfigError(f"arms: {arm.name}.tasks names {task!r}, which is not a task of this study "
                                  f"({', '.join(config.tasks)})")
    for task in config.tasks:
        if not config.arms_of(task):
            raise ConfigError(f"no arm is evaluated on task {task!r}; remove 'tasks' from an arm or add {task}")
    for task in config.headline:
        if task not in config.tasks:
            raise ConfigError(f"headline: {task!r} is not a task of this study ({', '.join(config.tasks)})")
    known = set().union(*BASELINES.values())
    for name in config.baselines:
        if name not in known:
            raise ConfigError(f"baselines: unknown baseline {name!r}{close_matches(name, known, end='')} "
                              f"Known: {', '.join(sorted(known))}")
    if not config.labels or any(n < 0 or (n and n < 4) for n in config.labels):
        raise ConfigError(f"labels must be label counts >= 4 (0: all), not {config.labels}")
    if config.subsets < 1 or config.supervised.subsets < 0:
        raise ConfigError("subsets must be >= 1 (supervised.subsets >= 0)")
    if config.overlapping_subsets is not None and (isinstance(config.overlapping_subsets, bool)
                                                   or not isinstance(config.overlapping_subsets, int)
                                                   or config.overlapping_subsets < 1):
        raise ConfigError(f"overlapping_subsets must be a count >= 1 or null, not {config.overlapping_subsets!r}")
    if not 0 < config.supervised.val_fraction < 1:
        raise ConfigError(f"supervised.val_fraction must be in (0, 1), not {config.supervised.val_fraction}")
    for role, name in config.ablation.items():
        if role not in ("none", "replicas", "augmentations", "both") or name not in names:
            raise ConfigError(f"ablation: {role}: {name!r} must map a role (none, replicas, augmentations, both) "
                              f"to an arm name ({', '.join(names)})")
    arm = config.supervised.finetune_arm
    if arm and arm not in names:
        raise ConfigError(f"supervised.finetune_arm {arm!r} is not an arm{close_matches(arm, names, end='')}")
    if "finetuned" in config.baselines and not any(a.pretrain for a in config.arms):
        raise ConfigError("baseline 'finetuned' needs a pretrained arm")
    return config


def config_from_dict(data: dict) -> StudyConfig:
    return validate(from_dict(StudyConfig, data))


def load_study_config(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read a study YAML, apply ``--set`` overrides, check it."""
    data = read_config_file(path, folder="configs/study/", example="name: ..., arms: ..., tasks: ...")
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
