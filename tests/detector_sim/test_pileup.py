"""Pile-up overlay: off by default, a per-shard pool, independent draws per replica, truth untouched."""

from __future__ import annotations

import numpy as np
import pytest

from detector_sim.config import ConfigError, SimConfig, load_config, validate
from detector_sim.generate import generate_shard
from detector_sim.pileup import make_pool, overlay
from detector_sim.replicas import pileup_generator
from detector_sim.simulate import simulate_events


def small_config(mu: float) -> SimConfig:
    config = load_config("configs/sim/qg.yaml", ["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=150",
                                                 "jets.pt_max_gev=500", "sharding.events_per_shard=8",
                                                 "generator.mpi=false", f"pileup.mu={mu}", "pileup.pool_events=20"])
    return config


@pytest.fixture(scope="module")
def pool():
    return make_pool(small_config(20.0), 5, 0)


def test_pileup_is_off_by_default():
    assert SimConfig().pileup.mu == 0
    assert make_pool(small_config(0.0), 5, 0) is None


def test_the_pool_is_reproducible_per_shard(pool):
    again = make_pool(small_config(20.0), 5, 0)
    other = make_pool(small_config(20.0), 5, 1)
    assert len(pool.particles) == 20
    for a, b in zip(pool.particles, again.particles):
        np.testing.assert_array_equal(a["pt"], b["pt"])
    assert not np.array_equal(pool.particles[0]["pt"], other.particles[0]["pt"])
    assert all(np.all(np.abs(event["eta"]) < 4.0) for event in pool.particles)


def test_each_replica_draws_its_own_pileup(pool):
    draws = [overlay(pool, 20.0, 45.0, pileup_generator(5, 3, replica)) for replica in range(3)]
    again = overlay(pool, 20.0, 45.0, pileup_generator(5, 3, 0))
    np.testing.assert_array_equal(draws[0][0]["pt"], again[0]["pt"])
    assert len({len(d[0]["pt"]) for d in draws}) > 1 or not np.array_equal(draws[0][0]["pt"], draws[1][0]["pt"])
    particles, impacts = draws[0]
    assert impacts[0].shape == (len(particles["pt"]), 6)
    # vertices spread along the beam, one offset per overlaid interaction
    assert np.std(particles["vz"]) > 5.0


@pytest.mark.parametrize("mu", [0.5, 40.0])
def test_the_number_of_interactions_is_poisson(pool, mu):
    counts = []
    sizes = np.array([len(event["pt"]) for event in pool.particles])
    for replica in range(300):
        drawn = overlay(pool, mu, 45.0, pileup_generator(1, 0, replica))
        counts.append(0 if drawn is None else len(drawn[0]["pt"]))
    assert np.mean(counts) == pytest.approx(mu * sizes.mean(), rel=0.2)


def test_pileup_adds_energy_but_leaves_the_truth_alone(pool):
    config = small_config(20.0)
    events = list(generate_shard(config, 5, 0, 8))
    with_pileup, stats = simulate_events(events, config, 5, 2, pool)
    without, _ = simulate_events(events, config, 5, 2, None)
    assert stats.jets_written > 0
    for name in ("truth_pt", "truth_m", "label"):
        np.testing.assert_array_equal(with_pileup[name], without[name])
    ncell = lambda batch: np.array([len(c) for c in batch["cell_e"]])  # noqa: E731
    assert ncell(with_pileup).sum() > ncell(without).sum()
    # the two replicas of a jet see different pile-up
    assert not np.array_equal(with_pileup["jet_e"][0::2], with_pileup["jet_e"][1::2])


def test_pileup_settings_are_checked():
    config = SimConfig()
    config.pileup.mu = -1.0
    with pytest.raises(ConfigError, match="pileup.mu"):
        validate(config)
