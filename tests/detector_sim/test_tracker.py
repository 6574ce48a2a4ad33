"""Tracker: acceptance, efficiency, smearing widths, bending, phi wrapping, perigee, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detector_sim import geometry, tracker
from detector_sim.replicas import replica_generator
from detector_sim.tracker import perigee_from_vertex, reconstruct_tracks, track_resolutions, tracking_efficiency
from gnnjets.base import kinematics

K_GEV_PER_T_M = 0.299792458
B_T = 3.8


def make_particles(n=1, *, pt=10.0, eta=0.0, phi=0.0, charge=1.0, vx=0.0, vy=0.0, vz=0.0) -> dict[str, np.ndarray]:
    """``n`` particles; each keyword is a scalar (repeated) or an array of length n."""
    def column(value, dtype=np.float64):
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()

    particles = {key: column(value) for key, value in
                 dict(pt=pt, eta=eta, phi=phi, charge=charge, vx=vx, vy=vy, vz=vz).items()}
    particles["e"] = particles["pt"] * np.cosh(particles["eta"])
    particles["m"] = np.full(n, 0.13957)
    particles["pdgid"] = np.where(particles["charge"] < 0, -211, 211).astype(np.int32)
    return particles


def curvature_mm(pt):
    return 1e3 * pt / (K_GEV_PER_T_M * B_T)


# --- output contract ------------------------------------------------------------------------

def test_output_keys_dtypes_and_shapes():
    tracks = reconstruct_tracks(make_particles(50, pt=np.linspace(2, 200, 50), charge=np.tile([1, -1], 25)),
                                np.random.default_rng(0))
    n = tracks["pt"].size
    assert set(tracks) == set(tracker.TRACK_KEYS)
    assert 35 < n <= 50
    for key in ("pt", "eta", "phi", "d0", "z0"):
        assert tracks[key].dtype == np.float64 and tracks[key].shape == (n,)
    assert tracks["charge"].dtype == np.int32 and set(np.unique(tracks["charge"])) <= {-1, 1}
    assert tracks["particle_index"].dtype == np.int64 and np.all(np.diff(tracks["particle_index"]) > 0)
    assert tracks["eta_layer"].shape == tracks["phi_layer"].shape == (n, geometry.N_LAYERS)
    assert np.all((tracks["phi"] > -np.pi) & (tracks["phi"] <= np.pi))


def test_empty_event():
    tracks = reconstruct_tracks(make_particles(0), np.random.default_rng(0))
    assert all(tracks[key].shape[0] == 0 for key in tracker.TRACK_KEYS)
    assert tracks["eta_layer"].shape == (0, geometry.N_LAYERS)


def test_input_errors_teach():
    particles = make_particles(3)
    particles["Charge"] = particles.pop("charge")
    with pytest.raises(KeyError, match="did you mean 'Charge'"):
        reconstruct_tracks(particles, np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        reconstruct_tracks(make_particles(3), 42)
    with pytest.raises(ValueError, match="efficiency_plateau"):
        reconstruct_tracks(make_particles(3), np.random.default_rng(0), efficiency_plateau=1.5)
    bad = make_particles(3)
    bad["vz"] = np.zeros(4)
    with pytest.raises(ValueError, match="equal length"):
        reconstruct_tracks(bad, np.random.default_rng(0))


# --- acceptance and efficiency --------------------------------------------------------------

@pytest.mark.parametrize("inside, outside", [
    (dict(charge=1.0), dict(charge=0.0)),
    (dict(pt=1.01), dict(pt=0.99)),
    (dict(eta=2.49), dict(eta=2.51)),
    (dict(eta=-2.49), dict(eta=-2.51)),
    (dict(vx=299.0 / math.sqrt(2), vy=299.0 / math.sqrt(2)), dict(vx=-301.0 / math.sqrt(2), vy=301.0 / math.sqrt(2))),
    (dict(vz=2000.0), dict(vx=350.0)),  # no cut on the longitudinal vertex position
])
def test_acceptance_cuts(inside, outside):
    n = 200  # copies: at an efficiency >= 0.8 at least one of them is found
    rng = np.random.default_rng(1)
    assert reconstruct_tracks(make_particles(n, **inside), rng)["pt"].size > 0
    assert reconstruct_tracks(make_particles(n, **outside), rng)["pt"].size == 0


def test_efficiency_shape():
    assert tracking_efficiency(20.0, 0.0, 0.9) == pytest.approx(0.9)
    assert tracking_efficiency(5.0, 1.5, 0.9) == pytest.approx(0.9)
    assert tracking_efficiency(1.0, 0.0, 1.0) == pytest.approx(0.9)
    assert tracking_efficiency(3.0, 0.0, 1.0) == pytest.approx(1 - 0.1 * 0.25)
    assert tracking_efficiency(50.0, -2.5, 1.0) == pytest.approx(0.9)
    assert tracking_efficiency(50.0, 2.0, 1.0) == pytest.approx(0.95)
    pt = np.linspace(1.0, 10.0, 200)
    assert np.all(np.diff(tracking_efficiency(pt, 0.0)) >= 0)


@pytest.mark.parametrize("plateau", [0.95, 0.7])
def test_efficiency_matches_plateau_at_high_pt(plateau):
    n = 20_000
    rng = np.random.default_rng(2)
    particles = make_particles(n, pt=rng.uniform(5.5, 500.0, n), eta=rng.uniform(-1.5, 1.5, n),
                               phi=rng.uniform(-np.pi, np.pi, n), charge=rng.choice([-1.0, 1.0], n))
    found = reconstruct_tracks(particles, np.random.default_rng(3), efficiency_plateau=plateau)["pt"].size
    sigma = math.sqrt(n * plateau * (1 - plateau))
    assert abs(found - n * plateau) < 5 * sigma


def test_efficiency_in_the_turn_on():
    n = 20_000
    expected = float(tracking_efficiency(1.5, 2.2, 0.95))
    found = reconstruct_tracks(make_particles(n, pt=1.5, eta=2.2), np.random.default_rng(4))["pt"].size
    assert abs(found - n * expected) < 5 * math.sqrt(n * expected * (1 - expected))


def test_efficiency_extremes():
    particles = make_particles(100, pt=50.0)
    assert reconstruct_tracks(particles, np.random.default_rng(0), efficiency_plateau=0.0)["pt"].size == 0
    assert reconstruct_tracks(particles, np.random.default_rng(0), efficiency_plateau=1.0)["pt"].size == 100


# --- smearing -------------------------------------------------------------------------------

@pytest.mark.parametrize("pt, eta", [(10.0, 0.0), (2.0, 1.8), (300.0, -0.7)])
def test_smearing_has_the_stated_widths(pt, eta):
    n = 20_000
    particles = make_particles(n, pt=pt, eta=eta, phi=1.0, charge=np.tile([1.0, -1.0], n // 2))
    tracks = reconstruct_tracks(particles, np.random.default_rng(5), efficiency_plateau=1.0)
    index = tracks["particle_index"]
    charge = particles["charge"][index]
    sigma = track_resolutions(pt, eta)
    theta_true = 2 * math.atan(math.exp(-eta))
    pulls = {
        "qoverpt": (tracks["charge"] / tracks["pt"] - charge / pt) / sigma["qoverpt"],
        "theta": (2 * np.arctan(np.exp(-tracks["eta"])) - theta_true) / sigma["theta"],
        "phi": kinematics.delta_phi(tracks["phi"], 1.0) / sigma["phi"],
        "d0": tracks["d0"] / sigma["d0"],
        "z0": tracks["z0"] / sigma["z0"],
    }
    tolerance = 5 / math.sqrt(2 * index.size)  # 5 sigma on a Gaussian standard deviation
    for name, pull in pulls.items():
        assert abs(np.std(pull) - 1) < tolerance, name
        assert abs(np.mean(pull)) < 5 / math.sqrt(index.size), name


def test_resolution_numbers():
    sigma = track_resolutions(np.array([1.0, 100.0]), 0.0)
    # sigma(pT)/pT = 0.036 % pT (+) 1.3 % in the barrel
    assert sigma["qoverpt"] * np.array([1.0, 100.0]) == pytest.approx(np.hypot(3.6e-4 * np.array([1.0, 100.0]), 0.013))
    assert sigma["d0"] == pytest.approx(np.hypot(0.010, 0.100 / np.array([1.0, 100.0])))
    assert sigma["z0"] == pytest.approx(np.hypot(0.050, 0.150 / np.array([1.0, 100.0])))
    assert sigma["phi"] == pytest.approx(np.hypot(1e-4, 2.5e-3 / np.array([1.0, 100.0])))
    forward = track_resolutions(10.0, 2.0)
    central = track_resolutions(10.0, 0.0)
    for name in ("qoverpt", "phi", "d0", "z0"):
        assert forward[name] > central[name], name  # more material, longer projections


def test_charge_comes_from_the_smeared_curvature():
    # at 10 TeV sigma(pT)/pT = 360 %: the measured sign is nearly random
    particles = make_particles(4000, pt=10_000.0)
    tracks = reconstruct_tracks(particles, np.random.default_rng(6), efficiency_plateau=1.0)
    assert 0.2 < np.mean(tracks["charge"] == -1) < 0.5
    assert np.all(np.isfinite(tracks["pt"]) & (tracks["pt"] > 0))


# --- bending and extrapolation --------------------------------------------------------------

@pytest.mark.parametrize("charge", [1.0, -1.0])
def test_bending_sign_and_magnitude(charge):
    pt, phi = 10.0, 0.5
    tracks = reconstruct_tracks(make_particles(2000, pt=pt, eta=0.3, phi=phi, charge=charge),
                                np.random.default_rng(7), efficiency_plateau=1.0)
    bend = kinematics.delta_phi(tracks["phi_layer"], tracks["phi"][:, None])  # (n, 6)
    # B along +z: a positive track turns clockwise, phi at the calorimeter is smaller
    assert np.all(np.sign(bend) == -charge)
    expected = calo_turn(tracks["pt"][:, None])  # with the measured pT
    assert np.allclose(np.abs(bend), expected, rtol=1e-12, atol=1e-15)
    truth = calo_turn(pt)
    assert np.allclose(np.mean(np.abs(bend), axis=0), truth, rtol=5e-3)


def test_low_pt_cut_off_at_the_calorimeter():
    threshold = K_GEV_PER_T_M * B_T * 0.75  # 2R = 1500 mm at 0.854 GeV
    assert threshold == pytest.approx(0.8544, abs=1e-4)
    assert not kinematics.reaches_radius(0.8, 1, 1500.0)
    assert kinematics.reaches_radius(0.9, 1, 1500.0)
    eta_r, phi_r = kinematics.helix_eta_phi_at_radius(np.array([0.8, 0.9]), 0.2, 0.1, np.array([-1, 1]), 1500.0)
    assert np.isnan(eta_r[0]) and np.isnan(phi_r[0])
    assert np.isfinite(eta_r[1]) and np.isfinite(phi_r[1])


def calo_turn(pt):
    """|phi(r) - phi0| at the layer radii: helix up to r0 = 1500 mm (turn b), then a straight line."""
    r0 = geometry.CALO_FRONT_MM
    b = np.arcsin(r0 / (2 * curvature_mm(pt)))
    return 2 * b - np.arcsin(r0 * np.sin(b) / geometry.R_MID_MM)


def test_tracks_reach_every_layer_beyond_the_field():
    # the field ends at the calorimeter front: a 1-2.5 GeV track that could not reach r = 3000 mm
    # on its helix still crosses every layer on its straight line beyond r = 1500 mm
    n = 4000
    rng = np.random.default_rng(8)
    particles = make_particles(n, pt=rng.uniform(1.0, 2.5, n), eta=rng.uniform(-2.4, 2.4, n),
                               phi=rng.uniform(-np.pi, np.pi, n), charge=rng.choice([-1.0, 1.0], n))
    tracks = reconstruct_tracks(particles, np.random.default_rng(9))
    helix_reaches = kinematics.reaches_radius(tracks["pt"][:, None], 1, geometry.R_MID_MM[None, :])  # (n, 6)
    assert not helix_reaches[:, -1].all()
    assert np.isfinite(tracks["phi_layer"]).all() and np.isfinite(tracks["eta_layer"]).all()


@pytest.mark.parametrize("phi, charge", [(np.pi - 0.01, -1.0), (-np.pi + 0.01, 1.0), (np.pi, -1.0), (-np.pi, 1.0)])
def test_phi_wraps_when_the_track_bends_across_pi(phi, charge):
    pt = 3.0
    tracks = reconstruct_tracks(make_particles(500, pt=pt, eta=-0.4, phi=phi, charge=charge),
                                np.random.default_rng(10), efficiency_plateau=1.0)
    phi_layer = tracks["phi_layer"]
    assert np.all((phi_layer > -np.pi) & (phi_layer <= np.pi))
    # crossed the boundary: the sign flipped, but the wrapped difference is the small bend
    assert np.all(np.sign(phi_layer[:, 0]) == charge)
    bend = kinematics.delta_phi(phi_layer, tracks["phi"][:, None])
    expected = calo_turn(tracks["pt"][:, None])
    ok = np.isfinite(expected)
    assert np.allclose(bend[ok], -charge * expected[ok], atol=1e-12)


def test_neutral_particles_leave_no_track_and_straight_extrapolation():
    assert reconstruct_tracks(make_particles(100, charge=0.0), np.random.default_rng(0))["pt"].size == 0
    # infinitely stiff charged track: the layer coordinates equal the perigee ones (straight line)
    eta_r, phi_r = kinematics.helix_eta_phi_at_radius(1e12, 0.7, 2.0, 1, geometry.R_MID_MM)
    assert np.allclose(eta_r, 0.7, atol=1e-9) and np.allclose(phi_r, 2.0, atol=1e-9)


def test_eta_at_the_layers_follows_the_arc_length():
    tracks = reconstruct_tracks(make_particles(200, pt=1.6, eta=1.2), np.random.default_rng(11))
    reached = np.isfinite(tracks["eta_layer"])
    assert np.all(tracks["eta_layer"][reached] > np.repeat(tracks["eta"][:, None], 6, axis=1)[reached])


# --- perigee --------------------------------------------------------------------------------

def _brute_force_perigee(pt, eta, phi, charge, vx, vy, vz, half_length_mm=500.0, step_mm=0.002):
    """Walk the transverse circle through the vertex in tiny exact rotations; take the closest point."""
    radius = curvature_mm(pt)
    k = np.arange(-int(half_length_mm / step_mm), int(half_length_mm / step_mm) + 1)
    turn = -np.sign(charge) * step_mm / radius  # heading change per step (clockwise for q > 0)
    heading = phi + turn * k  # heading at point k (k = 0: the vertex)
    chord = 2 * radius * np.sin(step_mm / (2 * radius))
    # positions by walking chords along the mid-step headings, both ways from the vertex
    forward = np.cumsum(chord * np.stack([np.cos(phi + turn * (np.arange(1, k.max() + 1) - 0.5)),
                                          np.sin(phi + turn * (np.arange(1, k.max() + 1) - 0.5))]), axis=1)
    backward = -np.cumsum(chord * np.stack([np.cos(phi - turn * (np.arange(1, k.max() + 1) - 0.5)),
                                            np.sin(phi - turn * (np.arange(1, k.max() + 1) - 0.5))]), axis=1)
    xy = np.concatenate([backward[:, ::-1], np.zeros((2, 1)), forward], axis=1) + np.array([[vx], [vy]])
    best = int(np.argmin(np.hypot(*xy)))
    x, y = xy[:, best]
    phi0 = heading[best]
    d0 = math.cos(phi0) * y - math.sin(phi0) * x  # (u x r)_z: positive when the perigee is on the left
    z0 = vz + k[best] * step_mm * math.sinh(eta)  # point k lies k steps of arc after the vertex
    return float(kinematics.wrap_phi(phi0)), d0, z0


@pytest.mark.parametrize("vertex", [(12.0, -5.0, 30.0), (-80.0, 40.0, -100.0), (0.0, 150.0, 0.0), (250.0, 10.0, 5.0)])
@pytest.mark.parametrize("charge", [1.0, -1.0])
def test_perigee_matches_brute_force_helix(vertex, charge):
    pt, eta, phi = 1.3, 0.9, 2.8
    phi0, d0, z0 = perigee_from_vertex(pt, eta, phi, charge, *vertex)
    phi0_bf, d0_bf, z0_bf = _brute_force_perigee(pt, eta, phi, charge, *vertex)
    assert float(d0) == pytest.approx(d0_bf, abs=1e-5)
    assert float(kinematics.delta_phi(phi0, phi0_bf)) == pytest.approx(0.0, abs=1e-5)
    assert float(z0) == pytest.approx(z0_bf, abs=5e-3)  # a step of arc (2 um) times sinh(eta), twice


def test_perigee_straight_line_limit_and_sign_convention():
    vx, vy, vz, phi, eta = 10.0, 5.0, 3.0, 0.3, 0.5
    phi0, d0, z0 = perigee_from_vertex(1e7, eta, phi, 1, vx, vy, vz)
    assert float(d0) == pytest.approx(vy * math.cos(phi) - vx * math.sin(phi), abs=1e-6)
    assert float(z0) == pytest.approx(vz - (vx * math.cos(phi) + vy * math.sin(phi)) * math.sinh(eta), abs=1e-6)
    assert float(phi0) == pytest.approx(phi, abs=1e-8)
    # vertex on the left of a track flying along +x: positive d0; prompt: zero
    assert float(perigee_from_vertex(1e7, 0.0, 0.0, -1, 0.0, 2.0, 0.0)[1]) == pytest.approx(2.0)
    assert perigee_from_vertex(5.0, 1.0, -2.0, 1, 0.0, 0.0, 7.0) == pytest.approx((-2.0, 0.0, 7.0))
    # neutral input gets the straight line exactly
    assert float(perigee_from_vertex(0.0, eta, phi, 0, vx, vy, vz)[1]) == pytest.approx(vy * math.cos(phi) - vx * math.sin(phi))


def test_displaced_track_d0_and_z0_scatter_around_the_truth():
    n = 5000
    pt, eta, phi, vertex = 20.0, 0.6, -1.0, (30.0, 20.0, -15.0)
    tracks = reconstruct_tracks(make_particles(n, pt=pt, eta=eta, phi=phi, vx=vertex[0], vy=vertex[1], vz=vertex[2]),
                                np.random.default_rng(12))
    _, d0, z0 = perigee_from_vertex(pt, eta, phi, 1, *vertex)
    sigma = track_resolutions(pt, eta)
    m = tracks["pt"].size
    assert abs(np.mean(tracks["d0"]) - d0) < 5 * sigma["d0"] / math.sqrt(m)
    assert abs(np.mean(tracks["z0"]) - z0) < 5 * sigma["z0"] / math.sqrt(m)
    assert abs(float(d0)) > 10  # truly displaced: far outside the prompt resolution


# --- randomness -----------------------------------------------------------------------------

def _busy_event(n=300, seed=13):
    rng = np.random.default_rng(seed)
    return make_particles(n, pt=rng.exponential(10.0, n) + 0.5, eta=rng.uniform(-3, 3, n),
                          phi=rng.uniform(-np.pi, np.pi, n), charge=rng.choice([-1.0, 0.0, 1.0], n),
                          vx=rng.normal(0, 20, n), vy=rng.normal(0, 20, n), vz=rng.normal(0, 50, n))


def test_same_seed_same_tracks_different_seed_different_tracks():
    particles = _busy_event()
    first = reconstruct_tracks(particles, replica_generator(7, 3, 0))
    again = reconstruct_tracks(particles, replica_generator(7, 3, 0))
    other = reconstruct_tracks(particles, replica_generator(7, 3, 1))
    for key in tracker.TRACK_KEYS:
        assert np.array_equal(first[key], again[key], equal_nan=first[key].dtype.kind == "f"), key
    assert not np.array_equal(first["particle_index"], other["particle_index"]) \
        or not np.array_equal(first["pt"], other["pt"])


def test_rng_consumption_is_fixed():
    """One uniform per accepted particle, then (n_tracks, 5) normals: the generator ends in a known state."""
    particles = _busy_event()
    rng = np.random.default_rng(14)
    tracks = reconstruct_tracks(particles, rng)
    accepted = (particles["charge"] != 0) & (particles["pt"] > 1) & (np.abs(particles["eta"]) < 2.5) \
        & (np.hypot(particles["vx"], particles["vy"]) < 300)
    reference = np.random.default_rng(14)
    reference.random(int(accepted.sum()))
    reference.standard_normal((tracks["pt"].size, 5))
    assert rng.random() == reference.random()


def test_input_is_not_modified():
    particles = _busy_event()
    copy = {key: value.copy() for key, value in particles.items()}
    reconstruct_tracks(particles, np.random.default_rng(0))
    assert all(np.array_equal(particles[key], copy[key]) for key in particles)
