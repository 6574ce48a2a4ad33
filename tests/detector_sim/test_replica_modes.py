"""Replica modes: what the replicas of a jet share (truth, parton shower, nothing but the event)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_sim.augment import augment_event
from detector_sim.config import ConfigError, SimConfig, load_config, validate
from detector_sim.generate import generate_replicas, generate_shard
from detector_sim.hadronization import generate_hadronization_replicas
from detector_sim.simulate import simulate_events
from detector_sim.truth import TruthEvent
from gnnjets.base.kinematics import delta_r

N_EVENTS = 12


def qg_config(mode: str) -> SimConfig:
    config = load_config("configs/sim/qg.yaml", [f"replicas.mode={mode}", "generator.pthat_slices=[[200,400]]",
                                                 "jets.pt_min_gev=150", "jets.pt_max_gev=500",
                                                 f"sharding.events_per_shard={N_EVENTS}"])
    return config


@pytest.fixture(scope="module")
def hadronized():
    return list(generate_replicas(qg_config("hadronization"), 4, 0, N_EVENTS, 3))


def test_detector_mode_repeats_one_truth():
    views = list(generate_replicas(qg_config("detector"), 4, 0, 3, 2))
    assert all(a is b for a, b in views)
    batch, stats = simulate_events(views, qg_config("detector"), 4, 2)
    assert stats.jets_written > 0
    for name in ("truth_pt", "truth_m", "label", "jet_index"):
        np.testing.assert_array_equal(batch[name][0::2], batch[name][1::2])
    for name in ("particle_pt", "particle_pdgid"):
        assert all(np.array_equal(a, b) for a, b in zip(batch[name][0::2], batch[name][1::2]))


def test_hadronization_replicas_share_the_partons_but_not_the_hadrons(hadronized):
    n_jets = 0
    for views in hadronized:
        assert len(views) == 3 and len({id(v) for v in views}) == 3
        jets = [v.jets for v in views]
        for key in ("label", "parton_pdgid", "jet_index"):  # from the hard parton and the parton-level jet
            assert all(np.array_equal(jets[0][key], j[key]) for j in jets[1:])
        for j in range(len(views[0].constituents)):
            n_jets += 1
            # each replica's truth jet sits at the shared parton-level jet: within R/2 of one another
            axes = [(v.jets["eta"][j], v.jets["phi"][j]) for v in views]
            assert all(delta_r(*axes[0], *axis) < 0.4 for axis in axes[1:])
            hadrons = [np.sort(v.particles["pt"][v.constituents[j]]) for v in views]
            assert not any(np.array_equal(hadrons[0], h) for h in hadrons[1:])
        particles = [np.sort(v.particles["pt"]) for v in views]  # the whole event is hadronised anew
        assert not np.array_equal(particles[0], particles[1])
    assert n_jets >= 4


def test_hadronization_is_reproducible_and_independent_of_the_replica_count(hadronized):
    again = list(generate_hadronization_replicas(qg_config("hadronization"), 4, 0, N_EVENTS, 2))
    for a, b in zip(hadronized, again):
        # replica r is hadronised with the seed of (seed, event, r) from the same parton-level event
        for r in range(2):
            for key in ("pt", "eta", "pdgid"):
                np.testing.assert_array_equal(a[r].particles[key], b[r].particles[key])
        # the parton-level events (the labels) follow from the shard's seed alone
        np.testing.assert_array_equal(a[0].jets["parton_pdgid"], b[0].jets["parton_pdgid"])


def test_hadronization_replicas_through_the_detector(hadronized):
    batch, stats = simulate_events(hadronized, qg_config("hadronization"), 4, 3)
    assert stats.jets_written > 0 and len(batch["event_id"]) == 3 * stats.jets_written
    truth_pt = batch["truth_pt"].reshape(-1, 3)
    assert np.all(np.ptp(truth_pt, axis=1) > 0)  # each replica has its own truth jet
    assert np.all(batch["label"].reshape(-1, 3) == batch["label"][0::3, None])


def test_particle_augmented_replicas_keep_labels_and_move_the_jet():
    views = list(generate_replicas(qg_config("particle-augmented"), 4, 0, N_EVENTS, 2))
    moved = 0
    for a, b in views:
        assert a is not b or not a.constituents
        for key in ("label", "parton_pdgid", "jet_index"):
            np.testing.assert_array_equal(a.jets[key], b.jets[key])
        moved += int(np.sum(a.jets["eta"] != b.jets["eta"]))
    assert moved > 0
    base = list(generate_shard(qg_config("particle-augmented"), 4, 0, N_EVENTS))
    for event, (a, _) in zip(base, views):  # unselected particles are untouched
        n = len(event.particles["pt"])
        outside = np.setdiff1d(np.arange(n), np.concatenate(event.constituents or [np.zeros(0, np.int64)]))
        np.testing.assert_array_equal(a.particles["pt"][outside], event.particles["pt"][outside])


def test_replica_mode_is_checked():
    config = SimConfig()
    config.replicas.mode = "hadronisation"
    with pytest.raises(ConfigError, match="did you mean 'hadronization'"):
        validate(config)


# ----------------------------------------------------------------------------- augmentations

def synthetic_event(rng: np.random.Generator, n: int = 30, eta0: float = 0.3, phi0: float = 3.0) -> TruthEvent:
    """A jet of ``n`` particles (photons and pions) around (eta0, phi0), plus two far away."""
    pdgid = rng.choice([22, 211, -211, 130], n + 2).astype(np.int32)
    mass = np.where(np.abs(pdgid) == 211, 0.13957, np.where(pdgid == 130, 0.4976, 0.0))
    pt = rng.exponential(20.0, n + 2) + 0.5
    eta = np.concatenate([eta0 + rng.normal(0, 0.1, n), [2.5, -2.5]])
    phi = np.concatenate([phi0 + rng.normal(0, 0.1, n), [0.0, 1.0]])
    phi = (phi + np.pi) % (2 * np.pi) - np.pi
    e = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    charge = np.where(pdgid == 211, 1.0, np.where(pdgid == -211, -1.0, 0.0))
    vx = np.where(rng.uniform(size=n + 2) < 0.2, rng.normal(0, 5, n + 2), 0.0)
    particles = dict(pt=pt, eta=eta, phi=phi, e=e, m=mass, pdgid=pdgid, charge=charge, vx=vx, vy=np.zeros(n + 2),
                     vz=np.zeros(n + 2))
    members = np.arange(n)
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=1)[members].sum(axis=0)
    jet_pt = np.hypot(p4[0], p4[1])
    jets = dict(pt=np.array([jet_pt]), eta=np.array([np.arcsinh(p4[2] / jet_pt)]), phi=np.array([np.arctan2(p4[1], p4[0])]),
                e=np.array([p4[3]]), m=np.array([np.sqrt(max(p4[3] ** 2 - p4[:3] @ p4[:3], 0.0))]),
                label=np.array([1], np.int32), parton_pdgid=np.array([2], np.int32), jet_index=np.array([0], np.int32))
    return TruthEvent(7, particles, jets, [members])


def four_momentum(particles, index):
    pt, eta, phi = particles["pt"][index], particles["eta"][index], particles["phi"][index]
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), particles["e"][index]], axis=1)


def augmentation_config(**changes) -> SimConfig:
    config = SimConfig()
    for key, value in changes.items():
        setattr(config.replicas, key, value)
    return validate(config)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, np.pi), st.floats(0.0, 1.0))
def test_rotation_and_translation_keep_each_particle_pt_and_the_jet_mass(seed, rotation, translation):
    rng = np.random.default_rng(seed)
    event = synthetic_event(rng)
    config = augmentation_config(soft_mean_count=0.0, collinear_splits=0, rotation_max_rad=rotation,
                                 translation_max=translation)
    out = augment_event(event, np.random.default_rng(seed + 1), config)
    np.testing.assert_allclose(out.particles["pt"], event.particles["pt"], rtol=1e-12)
    members = out.constituents[0]
    assert np.all(np.abs(out.jets["eta"]) < config.jets.abs_eta_max)
    # a rotation and a translation move the jet's shape in (eta, phi) rigidly: distances are kept

    def distances(particles):
        eta, phi = particles["eta"][members], particles["phi"][members]
        return delta_r(eta[:, None], phi[:, None], eta[None, :], phi[None, :])

    np.testing.assert_allclose(distances(out.particles), distances(event.particles), atol=1e-9)
    massless = event.particles["m"][members] == 0
    if massless.all():  # a boost along the beam for massless particles: the mass is invariant
        assert out.jets["m"][0] == pytest.approx(event.jets["m"][0], rel=1e-6)
    assert event.particles["pt"] is not out.particles["pt"]  # the input is not modified


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_collinear_splits_conserve_four_momentum(seed, n_splits):
    rng = np.random.default_rng(seed)
    event = synthetic_event(rng)
    config = augmentation_config(soft_mean_count=0.0, collinear_splits=n_splits, rotation_max_rad=0.0, translation_max=0.0)
    out = augment_event(event, np.random.default_rng(seed), config)
    n_photons = int(np.sum(event.particles["pdgid"][event.constituents[0]] == 22))
    assert len(out.constituents[0]) == len(event.constituents[0]) + min(n_splits, n_photons)
    np.testing.assert_allclose(four_momentum(out.particles, out.constituents[0]).sum(axis=0),
                               four_momentum(event.particles, event.constituents[0]).sum(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([out.jets[k][0] for k in ("pt", "eta", "m")],
                               [event.jets[k][0] for k in ("pt", "eta", "m")], rtol=1e-9, atol=1e-9)


@settings(deadline=None, max_examples=40)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 8.0))
def test_soft_emissions_are_soft_and_inside_the_jet(seed, mean_count):
    rng = np.random.default_rng(seed)
    event = synthetic_event(rng)
    config = augmentation_config(soft_mean_count=mean_count, collinear_splits=0, rotation_max_rad=0.0, translation_max=0.0)
    out = augment_event(event, np.random.default_rng(seed), config)
    new = out.constituents[0][len(event.constituents[0]):]
    assert np.all(new >= len(event.particles["pt"]))
    assert np.all(delta_r(out.particles["eta"][new], out.particles["phi"][new], event.jets["eta"][0], event.jets["phi"][0])
                  <= config.jets.radius + 1e-12)
    assert set(out.particles["pdgid"][new].tolist()) <= {22, 211, -211}
    assert np.all(out.particles["e"][new] >= out.particles["m"][new])
    np.testing.assert_array_equal(out.particles["charge"][new], np.sign(out.particles["pdgid"][new]) * (out.particles["pdgid"][new] != 22))


def test_every_replica_hadronises_the_same_parton_level_event(monkeypatch):
    """A spy on the re-hadronisation: per event, every replica starts from one unchanged parton record."""
    from detector_sim import hadronization

    real = hadronization.hadronize
    seen = []  # (event id, replica, fingerprint of the parton-level record before and after)

    def fingerprint(event):
        return tuple((p.id(), round(p.px(), 12), round(p.pz(), 12)) for p in event.particles() if p.isFinal())

    def spy(pythia, parton_level, base_seed, event_id, replica):
        before = fingerprint(parton_level)
        ok = real(pythia, parton_level, base_seed, event_id, replica)
        seen.append((event_id, replica, before, fingerprint(parton_level), len(fingerprint(pythia.event))))
        return ok

    monkeypatch.setattr(hadronization, "hadronize", spy)
    list(generate_hadronization_replicas(qg_config("hadronization"), 4, 0, 3, 2))
    assert [(e, r) for e, r, *_ in seen] == [(e, r) for e in range(3) for r in range(2)]
    for e in range(3):
        first, second = [item for item in seen if item[0] == e]
        assert first[2] == first[3] == second[2]  # same partons in, and the saved record is not modified
        # before hadronisation the final state holds partons, diquarks (xy0z) and leptons/photons, no hadron
        assert all(abs(i) < 100 or (1000 <= abs(i) < 6000 and (abs(i) // 10) % 10 == 0) for i, *_ in first[2])
        assert first[4] > len(first[2]) // 2  # and after it, hadrons
