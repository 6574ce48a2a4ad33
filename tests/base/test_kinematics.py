"""One phi convention, (-pi, pi], for numpy and torch alike; Delta phi, Delta R and the helix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gnnjets.base import kinematics
from gnnjets.base.detector import CALO_FRONT_MM, LAYERS, R_MID_MM

angles = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False)


def test_wrap_phi_convention_at_the_edges():
    values = np.array([math.pi, -math.pi, 3 * math.pi, -3 * math.pi, 0.0, 2 * math.pi])
    np.testing.assert_allclose(kinematics.wrap_phi(values), [math.pi, math.pi, math.pi, math.pi, 0.0, 0.0], atol=1e-12)
    assert kinematics.wrap_phi(-math.pi) == math.pi  # -pi maps to +pi, never the other way
    assert isinstance(kinematics.wrap_phi(torch.tensor([-math.pi])), torch.Tensor)
    assert kinematics.wrap_phi(torch.tensor([-math.pi], dtype=torch.float64)).item() == math.pi


@settings(max_examples=200, deadline=None)
@given(angles)
def test_wrap_phi_range_and_equivalence(phi):
    wrapped = float(kinematics.wrap_phi(phi))
    assert -math.pi < wrapped <= math.pi
    assert math.isclose(math.cos(wrapped), math.cos(phi), abs_tol=1e-9)
    assert math.isclose(math.sin(wrapped), math.sin(phi), abs_tol=1e-9)
    twin = kinematics.wrap_phi(torch.tensor([phi], dtype=torch.float64)).item()
    assert twin == pytest.approx(wrapped, abs=1e-12) or abs(abs(twin - wrapped) - 2 * math.pi) < 1e-9


@settings(max_examples=200, deadline=None)
@given(angles, angles)
def test_delta_phi_is_antisymmetric_and_bounded(a, b):
    d = float(kinematics.delta_phi(a, b))
    assert -math.pi < d <= math.pi
    back = float(kinematics.delta_phi(b, a))
    assert abs(d + back) < 1e-9 or abs(abs(d) - math.pi) < 1e-9  # antisymmetric except at the +pi edge


def test_delta_r_through_the_phi_wrap():
    assert kinematics.delta_r(0.0, 3.1, 0.0, -3.1) == pytest.approx(2 * math.pi - 6.2)
    assert kinematics.delta_r(0.3, 0.0, 0.0, 0.4) == pytest.approx(0.5)


def test_helix_closed_forms():
    # neutral and infinite momentum go straight
    eta, phi = kinematics.helix_eta_phi_at_radius([10.0], [0.5], [1.0], [0], 2000.0)
    assert eta[0] == pytest.approx(0.5) and phi[0] == pytest.approx(1.0)
    # a positive track bends clockwise by asin(r / 2R), R = pT / (0.3 B)
    pt, b = 5.0, 3.8
    curvature = 1e3 * pt / (kinematics.GEV_PER_TESLA_METRE * b)
    _, phi = kinematics.helix_eta_phi_at_radius([pt], [0.0], [0.0], [1], 1000.0, b)
    assert phi[0] == pytest.approx(-math.asin(1000.0 / (2 * curvature)))
    # too soft to reach the radius: NaN
    eta, _ = kinematics.helix_eta_phi_at_radius([0.5], [0.0], [0.0], [1], CALO_FRONT_MM)
    assert np.isnan(eta[0])


def test_calo_extrapolation_continues_straight_after_the_front():
    pt, eta0, phi0 = np.array([3.0]), np.array([0.4]), np.array([0.2])
    at_front = kinematics.calo_eta_phi_at_radius(pt, eta0, phi0, [1], CALO_FRONT_MM)
    helix_front = kinematics.helix_eta_phi_at_radius(pt, eta0, phi0, [1], CALO_FRONT_MM)
    np.testing.assert_allclose(at_front, helix_front, atol=1e-12)  # identical up to the front
    outer = kinematics.calo_eta_phi_at_radius(pt, eta0, phi0, [1], R_MID_MM[-1])
    helix_outer = kinematics.helix_eta_phi_at_radius(pt, eta0, phi0, [1], R_MID_MM[-1])
    assert abs(outer[1][0] - helix_outer[1][0]) > 0.05  # beyond it the field-free line bends no more


def test_perigee_conversion_closed_forms():
    theta = 2 * np.arctan(np.exp(-2.0))
    pt, eta, charge = kinematics.perigee_to_pt_eta_charge([0.1, -0.05], [np.pi / 2, theta])
    np.testing.assert_allclose(pt, [10.0, 20.0 * np.sin(theta)])
    np.testing.assert_allclose(eta, [0.0, 2.0], atol=1e-12)
    assert charge.tolist() == [1, -1]


def test_geometry_constants_are_consistent():
    assert [layer.index for layer in LAYERS] == list(range(len(LAYERS)))
    assert all(a.r_outer_mm <= b.r_inner_mm for a, b in zip(LAYERS, LAYERS[1:]))
    assert LAYERS[0].r_inner_mm == CALO_FRONT_MM
