"""Calorimeter physics: energy bookkeeping, responses, field cut-off, noise, windows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_sim import calorimeter as cal
from detector_sim import geometry as geo
from gnnjets.base import kinematics


def gun(pdgid, energy, n, eta=0.3, phi=0.1, charge=None):
    energy = np.full(n, float(energy))
    eta = np.full(n, float(eta))
    if charge is None:
        charge = 0.0 if abs(pdgid) in (22, 130, 2112) else (-1.0 if pdgid in (11, 13, -211) else 1.0)
    return dict(pt=energy / np.cosh(eta), eta=eta, phi=np.full(n, float(phi)), e=energy, m=np.zeros(n),
                pdgid=np.full(n, pdgid), charge=np.full(n, float(charge)))


def test_spot_energies_add_up_to_the_deposit_of_each_particle():
    particles = gun(211, 40.0, 50)
    spots, deposited = cal.shower_spots(particles, np.random.default_rng(3))
    per_particle = np.bincount(spots.particle, weights=spots.energy, minlength=50)
    np.testing.assert_allclose(per_particle, deposited, rtol=1e-12)
    assert np.all(spots.energy > 0)


def test_before_noise_cell_signal_equals_the_deposited_energy():
    particles = gun(22, 80.0, 1)
    spots, deposited = cal.shower_spots(particles, np.random.default_rng(5))
    window = cal.window_cells([0.3], [0.1], 0.8)
    total, signal = cal.digitise(spots, window, np.random.default_rng(6))
    assert signal.sum() == pytest.approx(deposited.sum(), rel=1e-9)
    assert total.sum() != pytest.approx(signal.sum(), rel=1e-9)  # noise is there


@pytest.mark.parametrize("pdgid, energy", [(11, 50.0), (22, 10.0), (211, 50.0), (-211, 200.0), (130, 30.0)])
def test_mean_deposit_is_visible_energy_times_response(pdgid, energy):
    n = 3000
    particles = gun(pdgid, energy, n)
    _, deposited = cal.shower_spots(particles, np.random.default_rng(11))
    expected = energy * cal.mean_response(pdgid, energy)
    # hadrons lose a little to MIP-like passage before the interaction and to punch-through
    tolerance = 0.005 if abs(pdgid) in (11, 22) else 0.04
    assert deposited.mean() == pytest.approx(expected, rel=tolerance)


def test_pion_response_is_below_the_em_scale_and_rises_with_energy():
    low = cal.mean_response(211, 5.0)
    high = cal.mean_response(211, 500.0)
    assert 0.6 < low < high < 0.85


def test_em_resolution_matches_the_sampling_term():
    energy = 100.0
    _, deposited = cal.shower_spots(gun(11, energy, 4000), np.random.default_rng(2))
    resolution = deposited.std() / deposited.mean()
    target = np.hypot(cal.EM_STOCHASTIC / np.sqrt(energy), cal.EM_CONSTANT)
    assert resolution == pytest.approx(target, rel=0.1)


def test_muons_leave_minimum_ionising_energy_in_every_layer():
    particles = gun(13, 50.0, 500, eta=0.0)
    spots, deposited = cal.shower_spots(particles, np.random.default_rng(1))
    per_layer = np.bincount(spots.layer, weights=spots.energy, minlength=6) / 500
    np.testing.assert_allclose(per_layer, cal.MIP_GEV_PER_LAYER, rtol=0.1)
    assert deposited.mean() < 2.5  # a 50 GeV muon is not absorbed


def test_charged_particles_below_the_field_cut_off_deposit_nothing():
    # pT needed to reach r = 1500 mm in 3.8 T: 0.3 * 3.8 * 0.75 = 0.855 GeV
    slow = gun(211, 0.8, 10, eta=0.0)
    spots, deposited = cal.shower_spots(slow, np.random.default_rng(0))
    assert spots.energy.size == 0 and np.all(deposited == 0)
    neutral = gun(130, 0.8, 10, eta=0.0, charge=0.0)
    _, deposited = cal.shower_spots(neutral, np.random.default_rng(0))
    assert deposited.sum() > 0


def test_charged_showers_are_displaced_in_phi_by_the_field():
    positive = gun(211, 5.0, 200, eta=0.0, phi=0.0, charge=1.0)
    spots, _ = cal.shower_spots(positive, np.random.default_rng(4))
    # clockwise bending for q > 0 (B along +z): phi decreases
    expected = -np.arcsin(geo.R_MID_MM[1] / (2 * kinematics.curvature_radius_mm(5.0, 1.0)))
    ecal2 = spots.layer == 1
    assert np.average(spots.phi[ecal2], weights=spots.energy[ecal2]) == pytest.approx(expected, abs=0.01)


def test_em_showers_sit_in_the_ecal_and_hadron_showers_go_deeper():
    em, _ = cal.shower_spots(gun(11, 50.0, 200), np.random.default_rng(0))
    had, _ = cal.shower_spots(gun(211, 50.0, 200), np.random.default_rng(0))
    em_ecal = em.energy[em.layer < 3].sum() / em.energy.sum()
    had_ecal = had.energy[had.layer < 3].sum() / had.energy.sum()
    assert em_ecal > 0.95 and had_ecal < 0.6


def test_same_generator_seed_gives_identical_spots_and_another_seed_differs():
    particles = gun(211, 30.0, 20)
    a, _ = cal.shower_spots(particles, np.random.default_rng(7))
    b, _ = cal.shower_spots(particles, np.random.default_rng(7))
    c, _ = cal.shower_spots(particles, np.random.default_rng(8))
    for name in ("layer", "eta", "phi", "energy"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.energy.size != c.energy.size or not np.array_equal(a.energy, c.energy)


def test_noise_has_the_cocoa_sigma_of_each_layer():
    window = cal.window_cells([0.0], [0.0], 1.5)  # a disc: wide enough for ~200 cells of the coarsest layer
    empty = cal.Spots(*(np.zeros(0, dtype=t) for t in (np.int64, float, float, float, np.int64)))
    energy, signal = cal.digitise(empty, window, np.random.default_rng(0))
    assert np.all(signal == 0)
    for layer in geo.LAYERS:
        cells = window.layer == layer.index
        assert energy[cells].std() == pytest.approx(layer.noise_gev, rel=0.15)


def test_window_wraps_around_phi_pi():
    window = cal.window_cells([0.0], [3.1], 0.2)
    assert np.any(window.phi > 3.0) and np.any(window.phi < -3.0)
    assert np.all(np.abs(kinematics.delta_phi(window.phi, 3.1)) < 0.2 + 0.2)
    assert np.unique(window.cell_id).size == window.cell_id.size


def test_spots_map_to_the_cell_containing_them():
    spots = cal.Spots(layer=np.array([0, 3, 5]), eta=np.array([0.011, -2.99, 2.999]), phi=np.array([0.0, np.pi, -np.pi + 1e-6]),
                      energy=np.ones(3), particle=np.zeros(3, dtype=np.int64))
    ids = cal.spot_cell_ids(spots)
    for k in range(3):
        layer = spots.layer[k]
        ieta, iphi = geo.cell_ieta_iphi(layer, spots.eta[k], spots.phi[k])
        assert ids[k] == geo.LAYER_OFFSET[layer] + ieta * geo.N_CELLS[layer] + iphi
    outside = cal.Spots(layer=np.array([1]), eta=np.array([3.2]), phi=np.array([0.0]), energy=np.ones(1),
                        particle=np.zeros(1, dtype=np.int64))
    assert cal.spot_cell_ids(outside)[0] == -1


# ----------------------------------------------------------------------------- hadronic EM fraction

@pytest.mark.parametrize("energy", [3.0, 10.0, 50.0, 200.0])
def test_em_fraction_follows_groom_with_the_stated_spread(energy):
    f_em = cal.sample_em_fraction(np.full(20000, energy), np.random.default_rng(1))
    groom = 1.0 - (energy / cal.GROOM_E0_GEV) ** (cal.GROOM_M - 1.0)
    assert f_em.mean() == pytest.approx(groom, abs=0.005)
    assert f_em.std() == pytest.approx(cal.em_fraction_spread(energy), rel=0.05)
    assert 0.05 < cal.em_fraction_spread(energy) < 0.15  # of order 0.1 where jets put their hadrons


@settings(deadline=None, max_examples=200)
@given(st.lists(st.floats(0.0, 5000.0), min_size=1, max_size=50), st.integers(0, 2**32 - 1))
def test_em_fraction_is_a_fraction_and_its_mean_rises_with_energy(energies, seed):
    energies = np.array(energies)
    f_em = cal.sample_em_fraction(energies, np.random.default_rng(seed))
    assert np.all((f_em >= 0) & (f_em <= 1))
    assert np.all(f_em[energies <= cal.GROOM_E0_GEV] == 0)  # below E0 no pi0 production in the mean
    ordered = np.sort(energies)
    assert np.all(np.diff(cal.mean_em_fraction(ordered)) >= 0)


def test_em_fraction_spread_widens_the_pion_response():
    # the shower-to-shower spread of f_em moves the response by (1 - h/e) sigma(f_em)
    energy = 100.0
    _, deposited = cal.shower_spots(gun(211, energy, 4000), np.random.default_rng(5))
    interacted = deposited > 0.5 * energy * cal.mean_response(211, energy)
    width = deposited[interacted].std() / deposited[interacted].mean()
    from_em_fraction = (1 - cal.HAD_OVER_EM) * cal.em_fraction_spread(energy) / cal.mean_response(211, energy)
    assert width > from_em_fraction


# ----------------------------------------------------------------------------- the window

@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.floats(-2.0, 2.0), st.floats(-np.pi, np.pi)), min_size=1, max_size=3),
       st.floats(0.1, 1.4))
def test_window_holds_exactly_the_cells_within_dr_of_a_centre(centres, half_width):
    eta0 = np.array([c[0] for c in centres])
    phi0 = np.array([c[1] for c in centres])
    window = cal.window_cells(eta0, phi0, half_width)
    assert np.all(np.diff(window.cell_id) > 0)  # each cell once, in increasing id
    inside = (kinematics.delta_r(window.eta[:, None], window.phi[:, None], eta0, phi0) < half_width + 1e-9).any(axis=1)
    assert inside.all()
    # brute force on every cell of two layers: none inside a disc is missing
    for layer in (2, 5):
        ids = np.arange(geo.LAYER_OFFSET[layer], geo.LAYER_OFFSET[layer + 1])
        dr = kinematics.delta_r(geo.CELL_ETA[ids][:, None], geo.CELL_PHI[ids][:, None], eta0, phi0)
        expected = ids[(dr < half_width - 1e-9).any(axis=1)]
        assert np.isin(expected, window.cell_id).all()
