"""Typed simulation config: YAML -> dataclasses, with errors that name the field and the fix.

A config file has the sections ``generator``, ``jets``, ``detector``, ``replicas``, ``pileup``
and ``sharding`` plus the ``process``; every field has a default here, so a YAML file only
states what differs. Unknown keys are errors that suggest the closest known key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from gnnjets.base.config import ConfigError, apply_overrides, from_dict, read_config_file
from gnnjets.base.hints import close_matches

PROCESSES = ("qg", "top", "qcd")
#: the Pythia subprocess switches each process may use (``generator.subprocesses``); the first
#: entry of each is the full process, used when ``subprocesses`` is empty
SUBPROCESSES: dict[str, tuple[str, ...]] = {
    # q qbar -> Z g gives gluon jets, q g -> Z q quark jets
    "qg": ("WeakBosonAndParton:qqbar2gmZg", "WeakBosonAndParton:qg2gmZq"),
    "top": ("Top:gg2ttbar", "Top:qqbar2ttbar"),
    "qcd": ("HardQCD:all", "HardQCD:gg2gg", "HardQCD:gg2qqbar", "HardQCD:qg2qg", "HardQCD:qq2qq",
            "HardQCD:qqbar2gg", "HardQCD:qqbar2qqbarNew", "HardQCD:hardccbar", "HardQCD:hardbbbar"),
}
#: the subprocesses switched on when ``generator.subprocesses`` is empty
DEFAULT_SUBPROCESSES: dict[str, tuple[str, ...]] = {
    "qg": SUBPROCESSES["qg"], "top": SUBPROCESSES["top"], "qcd": ("HardQCD:all",),
}
REPLICA_MODES = ("detector", "hadronization", "particle-augmented")


@dataclass
class GeneratorConfig:
    ecm_gev: float = 14000.0  # LHC design energy
    # pT-hat slices [min, max] in GeV; shards cycle through them so that a wide jet-pT range is
    # populated without event weights (the steeply falling spectrum would starve the high end)
    pthat_slices: list[list[float]] = field(default_factory=lambda: [[200.0, 400.0]])
    # sets of Pythia subprocess switches, cycled over shards together with the slices (shard s uses
    # slice s % n_slices and set (s // n_slices) % n_sets); [] = the whole process in every shard.
    # [[WeakBosonAndParton:qg2gmZq], [WeakBosonAndParton:qqbar2gmZg]] alternates quark and gluon jets
    subprocesses: list[list[str]] = field(default_factory=list)
    mpi: bool = True  # multiparton interactions (underlying event), on for every process
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
    # write equal numbers of jets per label: jets of the more frequent label wait for one of the
    # other, the surplus at the end is dropped (counted in the provenance)
    balance: bool = False


@dataclass
class DetectorConfig:
    # eta-phi margin around each truth jet inside which showers, noise and clustering are simulated
    # (a topocluster reaching a jet of radius R never starts further out than R + margin in practice)
    roi_margin: float = 0.4
    noise_scale: float = 1.0  # multiplies COCOA's per-layer noise sigmas
    tracker_efficiency: float = 0.95  # plateau efficiency for pT > 5 GeV (lower between 1 and 5 GeV)
    reco_jet_pt_min_gev: float = 10.0  # anti-kT topocluster jets below this are not considered for matching
    splitting: bool = True  # split topoclusters at local maxima (ATLAS, arXiv:1603.02934)
    # per layer (ECAL1, ECAL2, ECAL3, HCAL1, HCAL2, HCAL3): the energy a local maximum must exceed;
    # null: no maxima in that layer. 500 MeV is ATLAS's threshold.
    split_thresholds_gev: list[float | None] = field(default_factory=lambda: [0.5] * 6)
    # layers whose maxima give way to an overlapping maximum of another layer (ATLAS: presampler,
    # strips and hadronic layers are secondary to the EM middle and back layers)
    split_secondary_layers: list[int] = field(default_factory=lambda: [0, 3, 4, 5])


@dataclass
class ReplicaConfig:
    # what differs between the replicas of a jet: detector (new detector seed only),
    # hadronization (new hadronisation and detector seeds; arXiv:2503.11632), particle-augmented
    # (augmented truth particles, then a new detector seed)
    mode: str = "detector"
    # particle-augmented: Poisson mean number of soft particles (gamma, pi+, pi-) added per jet,
    # their mean energy [GeV] (exponential) and how far from the axis (uniform in the disc dR < R)
    soft_mean_count: float = 2.0
    soft_mean_energy_gev: float = 1.0
    # particle-augmented: photons of the jet split into two collinear photons, energy share z ~ U(0.1, 0.5)
    collinear_splits: int = 1
    # particle-augmented: rotate the jet's particles about its axis in (eta, phi) by an angle
    # uniform in [-max, max] (pi: any angle, as JetCLR), and translate them by offsets uniform in
    # [-max, max] in eta and phi (jets stay inside |eta| < jets.abs_eta_max)
    rotation_max_rad: float = math.pi
    translation_max: float = 0.5


@dataclass
class PileupConfig:
    mu: float = 0.0  # mean number of in-time non-diffractive interactions per event (Poisson); 0 = off
    pool_events: int = 100  # minimum-bias events generated per shard, drawn from with replacement
    vertex_sigma_z_mm: float = 45.0  # spread of the pile-up vertices along the beam (LHC luminous region)


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
    replicas: ReplicaConfig = field(default_factory=ReplicaConfig)
    pileup: PileupConfig = field(default_factory=PileupConfig)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def subprocess_sets(config: SimConfig) -> list[list[str]]:
    """The subprocess sets cycled over shards (the process's default set when none is given)."""
    return config.generator.subprocesses or [list(DEFAULT_SUBPROCESSES[config.process])]


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
    allowed = SUBPROCESSES[config.process]
    for i, names in enumerate(config.generator.subprocesses):
        if not names:
            raise ConfigError(f"config.generator.subprocesses[{i}] is empty; give at least one of {', '.join(allowed)}")
        for name in names:
            if name not in allowed:
                raise ConfigError(f"config.generator.subprocesses[{i}]: '{name}' is not a subprocess of process "
                                  f"'{config.process}'{close_matches(name, allowed, end='')} Choose from {', '.join(allowed)}")
    jets = config.jets
    if not 0.05 <= jets.radius <= 1.5:
        raise ConfigError(f"config.jets.radius must be in [0.05, 1.5], not {jets.radius}")
    if not 0 <= jets.pt_min_gev < jets.pt_max_gev:
        raise ConfigError(f"config.jets.pt_min_gev must be below pt_max_gev (got {jets.pt_min_gev}, {jets.pt_max_gev})")
    if not 0 < jets.abs_eta_max <= 3.0 - jets.radius:
        raise ConfigError(f"config.jets.abs_eta_max must be in (0, 3 - radius] to keep jets inside the calorimeter, not {jets.abs_eta_max}")
    if jets.max_jets_per_event < 1:
        raise ConfigError("config.jets.max_jets_per_event must be at least 1")
    if jets.balance and config.process != "qg":
        raise ConfigError(f"config.jets.balance needs two labels in one file; process '{config.process}' has one "
                          "(make top and qcd files separately, or set jets.balance: false)")
    _validate_detector(config.detector)
    _validate_replicas(config.replicas)
    pileup = config.pileup
    if not 0 <= pileup.mu <= 1000:
        raise ConfigError(f"config.pileup.mu must be in [0, 1000], not {pileup.mu}")
    if pileup.pool_events < 1 or pileup.vertex_sigma_z_mm < 0:
        raise ConfigError("config.pileup.pool_events must be at least 1 and vertex_sigma_z_mm >= 0")
    if config.sharding.events_per_shard < 1:
        raise ConfigError("config.sharding.events_per_shard must be at least 1")
    return config


def _validate_detector(det: DetectorConfig) -> None:
    if not 0 < det.tracker_efficiency <= 1:
        raise ConfigError(f"config.detector.tracker_efficiency must be in (0, 1], not {det.tracker_efficiency}")
    if det.noise_scale < 0 or det.roi_margin < 0:
        raise ConfigError("config.detector.noise_scale and roi_margin must be >= 0")
    if len(det.split_thresholds_gev) != 6:
        raise ConfigError(f"config.detector.split_thresholds_gev needs one entry per layer (6), "
                          f"not {len(det.split_thresholds_gev)}; use null for a layer without maxima")
    if any(t is not None and not t >= 0 for t in det.split_thresholds_gev):
        raise ConfigError(f"config.detector.split_thresholds_gev entries must be >= 0 or null, not {det.split_thresholds_gev}")
    if any(not 0 <= layer < 6 for layer in det.split_secondary_layers):
        raise ConfigError(f"config.detector.split_secondary_layers must hold layers 0..5, not {det.split_secondary_layers}")


def _validate_replicas(replicas: ReplicaConfig) -> None:
    if replicas.mode not in REPLICA_MODES:
        raise ConfigError(f"config.replicas.mode: unknown replica mode '{replicas.mode}'"
                          f"{close_matches(replicas.mode, REPLICA_MODES, end='')} Choose one of {', '.join(REPLICA_MODES)}")
    if replicas.soft_mean_count < 0 or replicas.soft_mean_energy_gev <= 0:
        raise ConfigError("config.replicas.soft_mean_count must be >= 0 and soft_mean_energy_gev > 0")
    if replicas.collinear_splits < 0:
        raise ConfigError(f"config.replicas.collinear_splits must be >= 0, not {replicas.collinear_splits}")
    if not 0 <= replicas.rotation_max_rad <= math.pi or not 0 <= replicas.translation_max <= 2.0:
        raise ConfigError("config.replicas.rotation_max_rad must be in [0, pi] and translation_max in [0, 2]")


def load_config(path: str | Path, overrides: list[str] | None = None) -> SimConfig:
    """Read a YAML simulation config, apply ``--set`` overrides, check it."""
    data = read_config_file(path, folder="configs/sim/", example="process: ..., jets: ...")
    apply_overrides(data, overrides or [])
    try:
        return validate(from_dict(SimConfig, data))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
