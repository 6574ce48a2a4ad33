"""Typed simulation config: YAML -> dataclasses, with errors that name the field and the fix.

A config file has the sections ``generator``, ``jets``, ``detector`` and ``sharding`` plus the
``process``; every field has a default here, so a YAML file only states what differs.
Unknown keys are errors that suggest the closest known key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.base.hints import close_matches

PROCESSES = ("qg", "top", "qcd")


@dataclass
class GeneratorConfig:
    ecm_gev: float = 14000.0  # LHC design energy
    # pT-hat slices [min, max] in GeV; shards cycle through them so that a wide jet-pT range is
    # populated without event weights (the steeply falling spectrum would starve the high end)
    pthat_slices: list[list[float]] = field(default_factory=lambda: [[200.0, 400.0]])
    mpi: bool = True  # multiparton interactions (underlying event)
    tune_pp: int = 14  # Pythia Tune:pp, 14 = Monash 2013
    extra: list[str] = field(default_factory=list)  # further Pythia readString lines, applied last


@dataclass
class JetConfig:
    radius: float = 0.4  # anti-kT R, truth and reco
    pt_min_gev: float = 200.0
    pt_max_gev: float = 400.0
    abs_eta_max: float = 1.7  # inside the barrel for R = 0.4
    match_dr: float = 0.4  # parton (qg) / top-decay-product (top) matching radius
    max_jets_per_event: int = 2  # leading truth jets considered per event


@dataclass
class DetectorConfig:
    # eta-phi margin around each truth jet inside which showers, noise and clustering are simulated
    # (a topocluster reaching a jet of radius R never starts further out than R + margin in practice)
    roi_margin: float = 0.4
    noise_scale: float = 1.0  # multiplies COCOA's per-layer noise sigmas
    tracker_efficiency: float = 0.95  # plateau efficiency for pT > 5 GeV (lower between 1 and 5 GeV)
    reco_jet_pt_min_gev: float = 10.0  # anti-kT topocluster jets below this are not considered for matching


@dataclass
class ShardingConfig:
    # events per Pythia instance; part of the seeding contract (changing it changes the events),
    # independent of --workers so that any worker count gives the same file
    events_per_shard: int = 200


@dataclass
class SimConfig:
    process: str = "qg"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    jets: JetConfig = field(default_factory=JetConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(config: SimConfig) -> SimConfig:
    """Check value ranges that the types cannot express."""
    if config.process not in PROCESSES:
        raise ConfigError(f"config.process: unknown process '{config.process}'"
                          f"{close_matches(config.process, PROCESSES, end='')} Choose one of {', '.join(PROCESSES)}")
    for i, pair in enumerate(config.generator.pthat_slices):
        if len(pair) != 2 or not 0 <= pair[0] < pair[1]:
            raise ConfigError(f"config.generator.pthat_slices[{i}] must be [min, max] with 0 <= min < max, not {pair}")
    if not config.generator.pthat_slices:
        raise ConfigError("config.generator.pthat_slices must hold at least one [min, max] pair")
    jets = config.jets
    if not 0.05 <= jets.radius <= 1.5:
        raise ConfigError(f"config.jets.radius must be in [0.05, 1.5], not {jets.radius}")
    if not 0 <= jets.pt_min_gev < jets.pt_max_gev:
        raise ConfigError(f"config.jets.pt_min_gev must be below pt_max_gev (got {jets.pt_min_gev}, {jets.pt_max_gev})")
    if not 0 < jets.abs_eta_max <= 3.0 - jets.radius:
        raise ConfigError(f"config.jets.abs_eta_max must be in (0, 3 - radius] to keep jets inside the calorimeter, not {jets.abs_eta_max}")
    if jets.max_jets_per_event < 1:
        raise ConfigError("config.jets.max_jets_per_event must be at least 1")
    det = config.detector
    if not 0 < det.tracker_efficiency <= 1:
        raise ConfigError(f"config.detector.tracker_efficiency must be in (0, 1], not {det.tracker_efficiency}")
    if det.noise_scale < 0 or det.roi_margin < 0:
        raise ConfigError("config.detector.noise_scale and roi_margin must be >= 0")
    if config.sharding.events_per_shard < 1:
        raise ConfigError("config.sharding.events_per_shard must be at least 1")
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> SimConfig:
    """Read a YAML simulation config, apply ``--set`` overrides, check it."""
    data = read_config_file(path, folder="configs/sim/", example="process: ..., jets: ...")
    apply_overrides(data, overrides or [])
    try:
        return validate(from_dict(SimConfig, data))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
