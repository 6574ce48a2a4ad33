"""Event generation: determinism, event ids, labels, jet selection, constituents, silence.

Each process is generated once per module (a few dozen events, a few seconds) and shared.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import fastjet
import numpy as np
import pytest

from detector_sim import generate
from detector_sim.config import ConfigError, SimConfig, load_config
from detector_sim.generate import NEUTRINO_PDGIDS, PARTICLE_ABS_ETA_MAX, TruthEvent, generate_shard, make_pythia
from gnnjets.base.kinematics import delta_phi

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "sim"
PARTICLE_FIELDS = {"pt": np.float64, "eta": np.float64, "phi": np.float64, "e": np.float64, "m": np.float64,
                   "pdgid": np.int32, "charge": np.float64, "vx": np.float64, "vy": np.float64, "vz": np.float64}
JET_FIELDS = {"pt": np.float64, "eta": np.float64, "phi": np.float64, "e": np.float64, "m": np.float64,
              "label": np.int32, "parton_pdgid": np.int32, "jet_index": np.int32}


def small_qcd_config(events_per_shard: int = 8) -> SimConfig:
    """Fast QCD: no MPI, a pT-hat slice matching the default jet window."""
    config = SimConfig(process="qcd")
    config.generator.mpi = False
    config.sharding.events_per_shard = events_per_shard
    return config


def shipped_config(name: str, events_per_shard: int) -> SimConfig:
    config = load_config(CONFIGS / f"{name}.yaml")
    config.sharding.events_per_shard = events_per_shard
    return config


def all_jets(events: list[TruthEvent]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([event.jets[key] for event in events]) for key in JET_FIELDS}


def four_momentum(pt, eta, phi, e):
    """(px, py, pz, e) from the stored coordinates."""
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=-1)


@pytest.fixture(scope="module")
def qcd_events() -> list[TruthEvent]:
    return list(generate_shard(small_qcd_config(), base_seed=11, shard=0, n_events=8))


@pytest.fixture(scope="module")
def qg_events() -> list[TruthEvent]:
    # shard 0 -> the lowest pT-hat slice, where gluon jets are most common
    return list(generate_shard(shipped_config("qg", 60), base_seed=5, shard=0, n_events=60))


@pytest.fixture(scope="module")
def top_events() -> list[TruthEvent]:
    return list(generate_shard(shipped_config("top", 60), base_seed=5, shard=0, n_events=60))


# --- seeding and event ids ------------------------------------------------------------------

def test_same_seed_and_shard_give_identical_events(qcd_events):
    again = list(generate_shard(small_qcd_config(), base_seed=11, shard=0, n_events=8))
    assert len(again) == len(qcd_events)
    for a, b in zip(qcd_events, again):
        assert a.event_id == b.event_id
        for key in PARTICLE_FIELDS:
            np.testing.assert_array_equal(a.particles[key], b.particles[key])
        for key in JET_FIELDS:
            np.testing.assert_array_equal(a.jets[key], b.jets[key])
        assert len(a.constituents) == len(b.constituents)
        for ca, cb in zip(a.constituents, b.constituents):
            np.testing.assert_array_equal(ca, cb)


def test_different_shard_gives_different_events(qcd_events):
    other = list(generate_shard(small_qcd_config(), base_seed=11, shard=1, n_events=3))
    for a, b in zip(qcd_events, other):
        assert not np.array_equal(a.particles["pt"], b.particles["pt"])


def test_different_base_seed_gives_different_events(qcd_events):
    other = list(generate_shard(small_qcd_config(), base_seed=12, shard=0, n_events=2))
    for a, b in zip(qcd_events, other):
        assert not np.array_equal(a.particles["pt"], b.particles["pt"])


def test_event_ids_count_from_shard_times_events_per_shard():
    events = list(generate_shard(small_qcd_config(events_per_shard=4), base_seed=1, shard=3, n_events=3))
    assert [event.event_id for event in events] == [12, 13, 14]


def test_every_event_is_yielded_even_without_selected_jets():
    config = small_qcd_config(events_per_shard=6)
    config.jets.pt_min_gev, config.jets.pt_max_gev = 2000.0, 3000.0  # unreachable from pT-hat 200-400
    events = list(generate_shard(config, base_seed=1, shard=0, n_events=6))
    assert len(events) == 6
    for event in events:
        assert event.constituents == []
        assert all(event.jets[key].shape == (0,) and event.jets[key].dtype == dtype for key, dtype in JET_FIELDS.items())
        assert len(event.particles["pt"]) > 0


@pytest.mark.parametrize("n_events", [-1, 9, 2.0, True])
def test_n_events_outside_the_shard_is_refused(n_events):
    with pytest.raises(ValueError, match="n_events"):
        list(generate_shard(small_qcd_config(events_per_shard=8), base_seed=1, shard=0, n_events=n_events))


class FlakyPythia:
    """Delegates to a real Pythia, but every event's first ``next()`` fails."""

    def __init__(self, pythia, always_fail: bool = False):
        self._pythia = pythia
        self._always_fail = always_fail
        self._failed = False

    def next(self) -> bool:
        if self._always_fail or not self._failed:
            self._failed = True
            return False
        self._failed = False
        return self._pythia.next()

    def __getattr__(self, name):
        return getattr(self._pythia, name)


def test_failed_pythia_next_is_retried_without_consuming_event_ids(monkeypatch, qcd_events):
    real = generate.make_pythia
    monkeypatch.setattr(generate, "make_pythia", lambda *args: FlakyPythia(real(*args)))
    events = list(generate_shard(small_qcd_config(), base_seed=11, shard=0, n_events=3))
    assert [event.event_id for event in events] == [0, 1, 2]
    for a, b in zip(events, qcd_events):
        np.testing.assert_array_equal(a.particles["pt"], b.particles["pt"])


def test_pythia_that_always_fails_raises(monkeypatch):
    real = generate.make_pythia
    monkeypatch.setattr(generate, "make_pythia", lambda *args: FlakyPythia(real(*args), always_fail=True))
    with pytest.raises(RuntimeError, match="failed 100 times in a row"):
        list(generate_shard(small_qcd_config(), base_seed=1, shard=0, n_events=1))


# --- Pythia set-up --------------------------------------------------------------------------

def test_unknown_extra_setting_names_the_line():
    config = small_qcd_config()
    config.generator.extra = ["PartonLevel:ISR = off", "PartonLevel:NoSuchThing = on"]
    with pytest.raises(ConfigError, match=r"extra\[1\].*NoSuchThing"):
        make_pythia(config, 200.0, 400.0, seed=1)


@pytest.mark.parametrize("seed", [0, 900_000_001, 1.5])
def test_seed_outside_pythia_range_is_refused(seed):
    with pytest.raises(ValueError, match="seed"):
        make_pythia(small_qcd_config(), 200.0, 400.0, seed=seed)


def test_unknown_process_is_refused():
    config = small_qcd_config()
    config.process = "ttbar"
    with pytest.raises(ConfigError, match="unknown process 'ttbar'"):
        make_pythia(config, 200.0, 400.0, seed=1)


def test_settings_reach_pythia():
    config = small_qcd_config()
    config.generator.extra = ["PartonLevel:ISR = off"]
    pythia = make_pythia(config, 250.0, 300.0, seed=42)
    settings = pythia.settings
    assert not settings.flag("PartonLevel:MPI") and not settings.flag("PartonLevel:ISR")
    assert settings.flag("HardQCD:all")
    assert settings.parm("PhaseSpace:pTHatMin") == 250.0 and settings.parm("PhaseSpace:pTHatMax") == 300.0
    assert settings.mode("Random:seed") == 42 and settings.mode("Tune:pp") == 14
    assert settings.parm("Beams:eCM") == 14000.0


def test_generation_prints_nothing():
    code = ("from detector_sim.config import SimConfig\n"
            "from detector_sim.generate import generate_shard\n"
            "config = SimConfig(process='top')\n"
            "config.generator.mpi = False\n"
            "for event in generate_shard(config, 1, 0, 3): pass\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == ""
    assert result.stderr == ""


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda path: path.stem)
def test_shipped_configs_load_with_mpi_on(path):
    config = load_config(path)
    assert config.process == path.stem.split("_")[0]
    assert config.generator.mpi  # MPI on for every process


@pytest.mark.parametrize("name, label", [("qg_quark", 1), ("qg_gluon", 0)])
def test_one_subprocess_gives_one_flavour(name, label):
    config = shipped_config(name, 30)
    config.generator.mpi = False  # the labels come from the hard process; MPI only slows the test
    config.generator.pthat_slices = [[200.0, 400.0]]
    jets = all_jets(list(generate_shard(config, base_seed=3, shard=0, n_events=30)))
    assert len(jets["label"]) >= 5 and np.all(jets["label"] == label)


def test_shards_cycle_through_slices_and_subprocess_sets():
    config = shipped_config("qg_balanced", 10)
    settings = [generate.shard_settings(config, shard) for shard in range(7)]
    assert [s[:2] for s in settings[:3]] == [(100.0, 250.0), (250.0, 500.0), (500.0, 1000.0)]
    assert [s[2] for s in settings] == [["WeakBosonAndParton:qg2gmZq"]] * 3 + [["WeakBosonAndParton:qqbar2gmZg"]] * 3 \
        + [["WeakBosonAndParton:qg2gmZq"]]


def test_unknown_subprocess_is_refused_with_the_close_match():
    with pytest.raises(ConfigError, match="did you mean 'WeakBosonAndParton:qg2gmZq'"):
        load_config(CONFIGS / "qg.yaml", ["generator.subprocesses=[[WeakBosonAndParton:qg2gmZQ]]"])


# --- particles and jets ---------------------------------------------------------------------

def test_particles_are_visible_inside_eta_4_with_schema_dtypes(qcd_events):
    for event in qcd_events:
        assert set(event.particles) == set(PARTICLE_FIELDS)
        n = len(event.particles["pt"])
        for key, dtype in PARTICLE_FIELDS.items():
            assert event.particles[key].dtype == dtype and event.particles[key].shape == (n,)
        assert not np.isin(np.abs(event.particles["pdgid"]), NEUTRINO_PDGIDS).any()
        assert np.all(np.abs(event.particles["eta"]) < PARTICLE_ABS_ETA_MAX)
        assert np.all((event.particles["phi"] > -np.pi) & (event.particles["phi"] <= np.pi))
        assert set(np.unique(event.particles["charge"])) <= {-1.0, 0.0, 1.0}
        pions = np.abs(event.particles["pdgid"]) == 211
        np.testing.assert_array_equal(event.particles["charge"][pions], np.sign(event.particles["pdgid"][pions]))
        assert np.all(event.particles["charge"][event.particles["pdgid"] == 22] == 0)


def test_displaced_vertices_are_present(qcd_events):
    radius_mm = np.concatenate([np.hypot(event.particles["vx"], event.particles["vy"]) for event in qcd_events])
    assert np.all(np.isfinite(radius_mm))
    assert np.any(radius_mm > 1.0)  # K0S / Lambda decay products
    assert np.median(radius_mm) < 1e-3  # most particles come from (near) the interaction point


def test_selected_jets_pass_the_selection(qcd_events):
    config = small_qcd_config()
    jets = all_jets(qcd_events)
    assert len(jets["pt"]) >= 4
    assert np.all((jets["pt"] >= config.jets.pt_min_gev) & (jets["pt"] <= config.jets.pt_max_gev))
    assert np.all(np.abs(jets["eta"]) < config.jets.abs_eta_max)
    assert np.all((jets["jet_index"] >= 0) & (jets["jet_index"] < config.jets.max_jets_per_event))
    for event in qcd_events:
        assert np.all(np.diff(event.jets["pt"]) <= 0)
        assert np.all(np.diff(event.jets["jet_index"]) > 0)
        assert set(event.jets) == set(JET_FIELDS)


@pytest.mark.parametrize("process", ["qcd", "qg", "top"])
def test_constituents_add_up_to_the_jet(process, qcd_events, qg_events, top_events):
    events = {"qcd": qcd_events, "qg": qg_events, "top": top_events}[process]
    n_checked = 0
    for event in events:
        assert len(event.constituents) == len(event.jets["pt"])
        particle_p4 = four_momentum(*(event.particles[key] for key in ("pt", "eta", "phi", "e")))  # (N, 4)
        for j, index in enumerate(event.constituents):
            assert index.dtype == np.int64 and len(np.unique(index)) == len(index)
            px, py, pz, e = particle_p4[index].sum(axis=0)
            pt = np.hypot(px, py)
            assert pt == pytest.approx(event.jets["pt"][j], rel=1e-6)
            assert np.arcsinh(pz / pt) == pytest.approx(event.jets["eta"][j], rel=1e-6, abs=1e-6)
            assert abs(delta_phi(np.arctan2(py, px), event.jets["phi"][j])) < 1e-6
            assert e == pytest.approx(event.jets["e"][j], rel=1e-6)
            assert np.sqrt(max(e**2 - px**2 - py**2 - pz**2, 0.0)) == pytest.approx(event.jets["m"][j], rel=1e-6)
            n_checked += 1
    assert n_checked >= 4


def test_clustering_agrees_with_fastjet_pseudojets(qcd_events):
    """``_cluster`` uses fastjet's array interface; it must give the classic PseudoJet answer."""
    event = qcd_events[0]
    momenta = four_momentum(*(event.particles[key] for key in ("pt", "eta", "phi", "e")))  # (N, 4)
    jet_definition = generate.jet_definition(0.4)
    jets, constituents = generate.cluster_antikt(momenta, jet_definition, pt_min=20.0)
    pseudojets = []
    for i, (px, py, pz, e) in enumerate(momenta.tolist()):
        pseudojet = fastjet.PseudoJet(px, py, pz, e)
        pseudojet.set_user_index(i)
        pseudojets.append(pseudojet)
    sequence = fastjet.ClusterSequence(pseudojets, jet_definition)
    reference = fastjet.sorted_by_pt(sequence.inclusive_jets(20.0))
    assert len(reference) == len(jets) >= 2
    for jet, index, ref in zip(jets, constituents, reference):
        np.testing.assert_allclose(jet, [ref.px(), ref.py(), ref.pz(), ref.e()], rtol=1e-12)
        np.testing.assert_array_equal(index, sorted(c.user_index() for c in ref.constituents()))


# --- labels ---------------------------------------------------------------------------------

def test_qg_labels_are_parton_flavours(qg_events):
    jets = all_jets(qg_events)
    assert set(np.unique(jets["label"])) == {0, 1}  # both quark and gluon jets appear
    is_quark = (np.abs(jets["parton_pdgid"]) >= 1) & (np.abs(jets["parton_pdgid"]) <= 6)
    np.testing.assert_array_equal(jets["label"], is_quark.astype(np.int32))
    assert np.all(is_quark | (jets["parton_pdgid"] == 21))
    assert all(len(event.jets["pt"]) <= 1 for event in qg_events)  # one hard parton labels one jet
    assert np.all((jets["pt"] >= 100.0) & (np.abs(jets["eta"]) < 1.7))


def test_top_jets_are_contained_tops(top_events):
    jets = all_jets(top_events)
    assert len(jets["pt"]) >= 10
    assert np.all(jets["label"] == 1)
    assert set(np.abs(jets["parton_pdgid"])) == {6}
    in_top_window = (jets["m"] > 120.0) & (jets["m"] < 230.0)
    assert in_top_window.mean() > 0.7
    assert np.all((jets["pt"] >= 550.0) & (jets["pt"] <= 650.0) & (np.abs(jets["eta"]) < 2.0))
    for event in top_events:  # a top labels one jet, so the two jets of an event are t and tbar
        assert len(np.unique(event.jets["parton_pdgid"])) == len(event.jets["pt"])


def test_qcd_labels_are_zero_with_parton_ids(qcd_events):
    jets = all_jets(qcd_events)
    assert np.all(jets["label"] == 0)
    ids = np.abs(jets["parton_pdgid"])
    assert np.all((ids == 0) | ((ids >= 1) & (ids <= 5)) | (ids == 21))
    assert np.any(ids != 0)


def test_match_closest_is_one_to_one():
    distance = np.array([[0.1, 0.2, 0.9],
                         [0.15, 0.3, 0.05]])  # (objects, jets)
    allowed = distance < 0.4
    np.testing.assert_array_equal(generate.match_closest(distance, allowed), [0, -1, 1])
    np.testing.assert_array_equal(generate.match_closest(distance[:, :0], allowed[:, :0]), np.zeros(0))


def test_config_is_not_modified_by_generation():
    config = small_qcd_config(events_per_shard=2)
    before = copy.deepcopy(config)
    list(generate_shard(config, base_seed=1, shard=0, n_events=1))
    assert config == before
