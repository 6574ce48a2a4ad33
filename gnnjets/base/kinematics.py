"""Kinematics with one convention: azimuths in (-pi, pi], the helix in the solenoid, track perigees.

Every function takes numpy arrays (or scalars); :func:`wrap_phi` and :func:`delta_phi` also take
torch tensors and return the same type. Angles in radians, momenta in GeV, lengths in mm, the
field in tesla along +z.
"""

from __future__ import annotations

import math

import numpy as np

from gnnjets.base.detector import B_FIELD_T, CALO_FRONT_MM

#: pT [GeV] = C * B [T] * R [m] for unit charge
GEV_PER_TESLA_METRE = 0.299792458


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch")


def wrap_phi(phi):
    """Map angles into (-pi, pi] (numpy arrays and scalars, or torch tensors).

    The convention of the whole package: +pi stays +pi, -pi becomes +pi.
    """
    if _is_tensor(phi):
        import torch  # only reached with a tensor, so torch is already imported

        wrapped = torch.remainder(phi + math.pi, 2 * math.pi) - math.pi
        return torch.where(wrapped <= -math.pi, wrapped + 2 * math.pi, wrapped)
    phi = np.asarray(phi)
    wrapped = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(wrapped <= -np.pi, wrapped + 2 * np.pi, wrapped)


def delta_phi(phi_a, phi_b):
    """``phi_a - phi_b`` wrapped into (-pi, pi]."""
    if _is_tensor(phi_a) or _is_tensor(phi_b):
        return wrap_phi(phi_a - phi_b)
    return wrap_phi(np.asarray(phi_a) - np.asarray(phi_b))


def delta_r(eta_a, phi_a, eta_b, phi_b):
    """Angular distance sqrt(Delta eta^2 + Delta phi^2) with the phi difference wrapped."""
    return np.hypot(np.asarray(eta_a) - np.asarray(eta_b), delta_phi(phi_a, phi_b))


def curvature_radius_mm(pt_gev, charge, b_field_t: float = B_FIELD_T):
    """Radius of the transverse helix [mm] of a particle with ``pt_gev`` and ``charge`` (|q| in e); inf if neutral."""
    charge = np.abs(np.asarray(charge, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(charge > 0, 1e3 * np.asarray(pt_gev) / (GEV_PER_TESLA_METRE * b_field_t * charge), np.inf)


def reaches_radius(pt_gev, charge, radius_mm, b_field_t: float = B_FIELD_T):
    """Whether a helix from the origin reaches the cylinder at ``radius_mm`` (2 R_curv >= r)."""
    return 2 * curvature_radius_mm(pt_gev, charge, b_field_t) >= radius_mm


def helix_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm, b_field_t: float = B_FIELD_T):
    """(eta, phi) of the point where a particle from the origin crosses the cylinder ``radius_mm``
    on its helix (a field filling the whole volume).

    The field points along +z, so a positive particle bends clockwise (phi decreases):
    ``phi(r) = phi0 - q * asin(r / 2R)``. The longitudinal position follows from the transverse
    arc length ``s = 2R asin(r / 2R)``: ``z = s * sinh(eta)``, so the crossing point's
    pseudorapidity is ``asinh(z / r)``. Neutral particles (and infinite momentum) go straight.
    Particles that do not reach the radius get NaN.
    """
    pt_gev, eta, phi, charge, radius_mm = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi, charge, radius_mm)))
    curvature = curvature_radius_mm(pt_gev, charge, b_field_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = radius_mm / (2 * curvature)  # 0 for neutral
        bend = np.arcsin(np.where(ratio <= 1, ratio, np.nan))
        arc = np.where(np.isfinite(curvature), 2 * curvature * bend, radius_mm)
        phi_r = wrap_phi(phi - np.sign(charge) * bend)
        eta_r = np.arcsinh(arc * np.sinh(eta) / radius_mm)
    return eta_r, phi_r


def calo_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm, b_field_t: float = B_FIELD_T,
                           calo_front_mm: float = CALO_FRONT_MM):
    """(eta, phi) where a particle from the origin crosses ``radius_mm`` >= the calorimeter front.

    The solenoid field fills the volume inside the calorimeter: the particle follows its helix up
    to r0 = ``calo_front_mm`` and then a straight line along its direction there (shower axes and
    extrapolated tracks alike). At r0 the position has turned by ``b = asin(r0 / 2R)`` and the
    direction by ``2 b``; a straight line at azimuth ``phi_d`` passing r0 at ``phi_p`` crosses r at
    ``phi_d - asin(r0 sin(phi_d - phi_p) / r)``, after a transverse path ``sqrt(r^2 - h^2) -
    sqrt(r0^2 - h^2)`` with ``h = r0 sin(phi_d - phi_p)``; z grows by sinh(eta) per unit transverse
    path. NaN for particles that do not reach the calorimeter.
    """
    pt_gev, eta, phi, charge, radius_mm = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi, charge, radius_mm)))
    r0 = calo_front_mm
    curvature = curvature_radius_mm(pt_gev, charge, b_field_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = r0 / (2 * curvature)
        bend = np.sign(charge) * np.arcsin(np.where(ratio <= 1, ratio, np.nan))  # signed position turn at r0
        arc0 = np.where(np.isfinite(curvature), 2 * curvature * np.abs(bend), r0)
        z0 = arc0 * np.sinh(eta)
        # direction minus position azimuth at r0 is -bend; h = r0 sin(-bend)
        h = r0 * np.sin(-bend)
        radius = np.maximum(radius_mm, r0)
        path = np.sqrt(radius**2 - h**2) - np.sqrt(r0**2 - h**2)
        phi_r = wrap_phi(phi - 2 * bend - np.arcsin(h / radius))
        eta_r = np.arcsinh((z0 + path * np.sinh(eta)) / radius)
    return eta_r, phi_r


def perigee_to_pt_eta_charge(qoverp_per_gev, theta):
    """Track (pt [GeV], eta, charge) from q/p [1/GeV] and the polar angle theta [rad].

    ``pt = |1/(q/p)| sin(theta)``, ``eta = -ln tan(theta/2)``, ``charge = sign(q/p)``.
    """
    qoverp_per_gev = np.asarray(qoverp_per_gev, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    with np.errstate(divide="ignore"):
        pt = np.abs(1.0 / qoverp_per_gev) * np.sin(theta)
        eta = -np.log(np.tan(0.5 * theta))
    return pt, eta, np.sign(qoverp_per_gev).astype(np.int32)
