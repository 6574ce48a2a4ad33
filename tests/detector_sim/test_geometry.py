"""Geometry kinematics against closed forms: phi wrapping at +-pi, cells, helix vs numerical tracking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detector_sim import geometry
from gnnjets.base.kinematics import delta_phi, delta_r, wrap_phi
from gnnjets.base import kinematics

PI = np.pi
angles = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)


# --- phi wrapping ---------------------------------------------------------------------------

@pytest.mark.parametrize("phi, expected", [
    (0.0, 0.0),
    (PI, PI),  # the upper edge is inside (-pi, pi]
    (-PI, PI),  # the lower edge maps to the upper one
    (3 * PI, PI),
    (-3 * PI, PI),
    (2 * PI, 0.0),
    (-2 * PI, 0.0),
    (4 * PI, 0.0),
    (PI + 0.1, -PI + 0.1),
    (-PI - 0.1, PI - 0.1),
    (2 * PI + 0.25, 0.25),
])
def test_wrap_phi_closed_forms(phi, expected):
    assert float(wrap_phi(phi)) == pytest.approx(expected, abs=1e-12)


def test_wrap_phi_multiples_of_two_pi_are_zero():
    k = np.arange(-50, 51)
    assert np.allclose(wrap_phi(2 * PI * k), 0.0, atol=1e-12)


def test_wrap_phi_keeps_nan_and_shape():
    out = wrap_phi(np.array([[np.nan, 4.0], [-4.0, 0.5]]))
    assert out.shape == (2, 2)
    assert np.isnan(out[0, 0])
    assert np.allclose(out[1:], [[-4.0 + 2 * PI, 0.5]])


@given(angles)
def test_wrap_phi_in_range_and_equal_modulo_two_pi(phi):
    wrapped = float(wrap_phi(phi))
    assert -PI < wrapped <= PI
    assert math.cos(wrapped) == pytest.approx(math.cos(phi), abs=1e-9)
    assert math.sin(wrapped) == pytest.approx(math.sin(phi), abs=1e-9)


@given(angles, angles)
def test_delta_phi_in_range_equal_modulo_two_pi_and_antisymmetric(phi_a, phi_b):
    d = float(delta_phi(phi_a, phi_b))
    assert -PI < d <= PI
    assert math.cos(d) == pytest.approx(math.cos(phi_a - phi_b), abs=1e-9)
    assert math.sin(d) == pytest.approx(math.sin(phi_a - phi_b), abs=1e-9)
    reverse = float(delta_phi(phi_b, phi_a))
    if abs(d) < PI - 1e-9:  # at exactly +-pi both orders give +pi
        assert reverse == pytest.approx(-d, abs=1e-9)


@pytest.mark.parametrize("phi_a, phi_b, expected", [
    (PI - 0.1, -PI + 0.1, -0.2),  # across the boundary: the short way round
    (-PI + 0.1, PI - 0.1, 0.2),
    (PI, -PI, 0.0),
    (0.0, PI, PI),
    (PI, 0.0, PI),
    (0.0, -PI, PI),
    (1.0, 1.0 + 2 * PI, 0.0),
])
def test_delta_phi_closed_forms(phi_a, phi_b, expected):
    assert float(delta_phi(phi_a, phi_b)) == pytest.approx(expected, abs=1e-12)


def test_delta_phi_is_continuous_across_the_boundary():
    phi = np.linspace(PI - 0.05, PI + 0.05, 101)  # crosses +pi
    d = delta_phi(wrap_phi(phi), PI - 0.05)
    assert np.allclose(d, phi - (PI - 0.05), atol=1e-12)


def test_delta_r_wraps_phi():
    assert float(delta_r(0.0, PI - 0.1, 0.3, -PI + 0.1)) == pytest.approx(math.hypot(0.3, 0.2), abs=1e-12)
    assert float(delta_r(1.0, 0.5, 1.0, 0.5)) == 0.0
    assert np.allclose(delta_r(np.zeros(3), np.zeros(3), np.array([0.3, 0.0, 0.4]), np.array([0.4, 2 * PI, 0.3])),
                       [0.5, 0.0, 0.5])


# --- cells ----------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", range(geometry.N_LAYERS))
def test_cell_centre_round_trip(layer):
    n = geometry.LAYERS[layer].n_cells
    ieta, iphi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    eta, phi = geometry.cell_centre(layer, ieta, iphi)
    assert np.all(np.abs(eta) < geometry.ETA_MAX) and np.all((phi > -PI) & (phi < PI))
    back_ieta, back_iphi = geometry.cell_ieta_iphi(layer, eta, phi)
    assert np.array_equal(back_ieta, ieta) and np.array_equal(back_iphi, iphi)
    # any point within a cell maps to that cell, in particular just inside its edges
    d_eta, d_phi = geometry.LAYERS[layer].d_eta, geometry.LAYERS[layer].d_phi
    for shift in (-0.499, 0.499):
        moved = geometry.cell_ieta_iphi(layer, eta + shift * d_eta, phi + shift * d_phi)
        assert np.array_equal(moved[0], ieta) and np.array_equal(moved[1], iphi)


@pytest.mark.parametrize("layer", range(geometry.N_LAYERS))
def test_cell_index_edges(layer):
    n = geometry.LAYERS[layer].n_cells
    ieta, _ = geometry.cell_ieta_iphi(layer, np.array([-3.0, 3.0, 3.5, -3.01]), np.zeros(4))
    assert ieta.tolist() == [0, -1, -1, -1]  # bins are [-3, 3)
    _, iphi = geometry.cell_ieta_iphi(layer, np.zeros(4), np.array([-PI, PI, PI - 1e-9, 3 * PI]))
    assert iphi.tolist() == [0, 0, n - 1, 0]  # phi = +-pi is the lower edge of bin 0


def test_layer_radii_increase_and_start_at_the_calorimeter_front():
    assert geometry.LAYERS[0].r_inner_mm == geometry.CALO_FRONT_MM
    assert np.all(np.diff(geometry.R_MID_MM) > 0)
    assert geometry.LAYER_OFFSET[-1] == geometry.N_CELLS_TOTAL == int(np.sum(geometry.N_CELLS**2))


# --- helix ----------------------------------------------------------------------------------

def test_curvature_radius_closed_form():
    assert float(kinematics.curvature_radius_mm(1.0, 1)) == pytest.approx(1e3 / (0.299792458 * 3.8))
    assert float(kinematics.curvature_radius_mm(1.0, -2)) == pytest.approx(0.5e3 / (0.299792458 * 3.8))
    assert np.isinf(kinematics.curvature_radius_mm(1.0, 0))


def test_reaches_radius_threshold():
    threshold = 0.299792458 * 3.8 * 0.75  # pT [GeV] with 2R = 1500 mm: 0.854 GeV
    assert kinematics.reaches_radius(threshold * 1.0001, 1, 1500.0)
    assert not kinematics.reaches_radius(threshold * 0.9999, -1, 1500.0)
    assert kinematics.reaches_radius(0.1, 0, 1500.0)  # neutral


def _numerical_crossing(pt, eta, phi, charge, radius_mm, step_mm=0.5):
    """Track a particle from the origin through B = 3.8 T zhat with RK4 in path length until r = radius.

    dx/ds = p/|p|, dp/ds = k q (p/|p|) x B with k = 0.299792458e-3 GeV / (T mm). Returns (eta, phi)
    of the crossing point (linear interpolation between the last two steps).
    """
    k_qb = 0.299792458e-3 * charge * geometry.B_FIELD_T
    p_abs = pt * math.cosh(eta)

    def derivative(state):
        _, _, _, px, py, pz = state
        return np.array([px / p_abs, py / p_abs, pz / p_abs, k_qb * py / p_abs, -k_qb * px / p_abs, 0.0])

    state = np.array([0.0, 0.0, 0.0, pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)])
    for _ in range(200_000):
        k1 = derivative(state)
        k2 = derivative(state + 0.5 * step_mm * k1)
        k3 = derivative(state + 0.5 * step_mm * k2)
        k4 = derivative(state + step_mm * k3)
        new = state + step_mm / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        r_old, r_new = math.hypot(state[0], state[1]), math.hypot(new[0], new[1])
        if r_new >= radius_mm:
            f = (radius_mm - r_old) / (r_new - r_old)
            x, y, z = state[:3] + f * (new[:3] - state[:3])
            return math.asinh(z / radius_mm), math.atan2(y, x)
        state = new
    raise RuntimeError("the numerical track never reached the radius")


@pytest.mark.parametrize("charge", [1, -1])
def test_helix_matches_numerical_integration(charge):
    pt, eta, phi, radius = 2.0, 1.1, 0.4, float(geometry.R_MID_MM[1])
    eta_num, phi_num = _numerical_crossing(pt, eta, phi, charge, radius)
    eta_r, phi_r = kinematics.helix_eta_phi_at_radius(pt, eta, phi, charge, radius)
    assert float(phi_r) == pytest.approx(phi_num, abs=1e-6)
    assert float(eta_r) == pytest.approx(eta_num, abs=1e-6)
    # the closed forms the docstring states
    curvature = 1e3 * pt / (0.299792458 * 3.8)
    bend = math.asin(radius / (2 * curvature))
    assert float(phi_r) == pytest.approx(phi - charge * bend, abs=1e-12)
    assert float(eta_r) == pytest.approx(math.asinh(2 * curvature * bend * math.sinh(eta) / radius), abs=1e-12)
    assert float(eta_r) > eta  # the arc is longer than the radius: the crossing point is more forward


def test_helix_neutral_goes_straight_and_low_pt_gives_nan():
    eta_r, phi_r = kinematics.helix_eta_phi_at_radius(np.array([0.3, 50.0]), 1.3, -2.0, 0, 1500.0)
    assert np.allclose(eta_r, 1.3) and np.allclose(phi_r, -2.0)
    eta_r, phi_r = kinematics.helix_eta_phi_at_radius(0.8, 0.5, 0.0, 1, 1500.0)
    assert np.isnan(eta_r) and np.isnan(phi_r)
