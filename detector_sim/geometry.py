"""COCOA-like detector geometry: calorimeter layers, cell grids, magnetic field, kinematics.

The calorimeter is a projective cylinder with its front face at r = 1500 mm covering
|eta| < 3 (the endcaps are treated as the barrel continued: cells are projective in
(eta, phi) everywhere). Each layer is an (eta, phi) grid with ``n_cells`` bins in eta across
[-3, 3] and the same number in phi across [-pi, pi). Cell index within a layer:
``ieta * n_cells + iphi``.

Granularity and noise are COCOA's default configuration (arXiv:2303.02101). Radii follow from the
depths (X0 for the ECAL, lambda_int for the HCAL) with effective material constants:
Pb/LAr X0 = 14 mm, lambda = 280 mm; Fe/scintillator X0 = 20 mm, lambda = 200 mm.
The depth seen by a particle at pseudorapidity eta is the radial depth times cosh(eta).

Conventions: lengths in mm, energies in GeV, angles in radians, phi in (-pi, pi].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ETA_MAX = 3.0
CALO_FRONT_MM = 1500.0
B_FIELD_T = 3.8
#: pT [GeV] = C * B [T] * R [m] for unit charge
GEV_PER_TESLA_METRE = 0.299792458


@dataclass(frozen=True)
class Layer:
    """One calorimeter layer."""

    index: int
    name: str
    n_cells: int  # bins in eta over [-3, 3] and in phi over [-pi, pi)
    noise_mev: float  # electronic noise sigma per cell (COCOA)
    r_inner_mm: float
    r_outer_mm: float
    x0_mm: float  # effective radiation length of the layer's material
    lambda_mm: float  # effective nuclear interaction length
    sampling_fraction: float  # visible fraction in the active medium (calibrated away: cells are EM scale)

    @property
    def d_eta(self) -> float:
        return 2 * ETA_MAX / self.n_cells

    @property
    def d_phi(self) -> float:
        return 2 * np.pi / self.n_cells

    @property
    def r_mid_mm(self) -> float:
        return 0.5 * (self.r_inner_mm + self.r_outer_mm)

    @property
    def depth_x0(self) -> float:
        return (self.r_outer_mm - self.r_inner_mm) / self.x0_mm

    @property
    def depth_lambda(self) -> float:
        return (self.r_outer_mm - self.r_inner_mm) / self.lambda_mm

    @property
    def noise_gev(self) -> float:
        return self.noise_mev * 1e-3

    @property
    def is_ecal(self) -> bool:
        return self.index < 3


_ECAL = dict(x0_mm=14.0, lambda_mm=280.0, sampling_fraction=0.07)
_HCAL = dict(x0_mm=20.0, lambda_mm=200.0, sampling_fraction=0.025)
_R_ECAL1 = CALO_FRONT_MM + 4 * _ECAL["x0_mm"]  # 4 X0
_R_ECAL2 = _R_ECAL1 + 16 * _ECAL["x0_mm"]  # 16 X0
_R_ECAL3 = _R_ECAL2 + 2 * _ECAL["x0_mm"]  # 2 X0
_R_HCAL0 = _R_ECAL3 + 90.0  # cryostat / solenoid gap, no active material
_R_HCAL1 = _R_HCAL0 + 1.5 * _HCAL["lambda_mm"]
_R_HCAL2 = _R_HCAL1 + 4.1 * _HCAL["lambda_mm"]
_R_HCAL3 = _R_HCAL2 + 1.8 * _HCAL["lambda_mm"]

LAYERS: tuple[Layer, ...] = (
    Layer(0, "ECAL1", 256, 13.0, CALO_FRONT_MM, _R_ECAL1, **_ECAL),
    Layer(1, "ECAL2", 256, 34.0, _R_ECAL1, _R_ECAL2, **_ECAL),
    Layer(2, "ECAL3", 128, 41.0, _R_ECAL2, _R_ECAL3, **_ECAL),
    Layer(3, "HCAL1", 64, 75.0, _R_HCAL0, _R_HCAL1, **_HCAL),
    Layer(4, "HCAL2", 64, 50.0, _R_HCAL1, _R_HCAL2, **_HCAL),
    Layer(5, "HCAL3", 32, 25.0, _R_HCAL2, _R_HCAL3, **_HCAL),
)
N_LAYERS = len(LAYERS)
N_CELLS = np.array([layer.n_cells for layer in LAYERS])
NOISE_GEV = np.array([layer.noise_gev for layer in LAYERS])
R_MID_MM = np.array([layer.r_mid_mm for layer in LAYERS])
#: first global cell id of each layer when all layers are concatenated
LAYER_OFFSET = np.concatenate([[0], np.cumsum(N_CELLS**2)])
N_CELLS_TOTAL = int(LAYER_OFFSET[-1])


def _cell_tables():
    layer = np.repeat(np.arange(len(N_CELLS)), N_CELLS**2)
    local = np.arange(int(LAYER_OFFSET[-1])) - LAYER_OFFSET[layer]
    n = N_CELLS[layer]
    ieta, iphi = local // n, local % n
    eta = -ETA_MAX + (ieta + 0.5) * (2 * ETA_MAX / n)
    phi = -np.pi + (iphi + 0.5) * (2 * np.pi / n)
    return layer, ieta, iphi, eta, phi


#: per global cell id: layer, ieta, iphi, centre eta and phi (lookup tables, read-only)
CELL_LAYER, CELL_IETA, CELL_IPHI, CELL_ETA, CELL_PHI = _cell_tables()
for _table in (CELL_LAYER, CELL_IETA, CELL_IPHI, CELL_ETA, CELL_PHI):
    _table.flags.writeable = False
#: radial boundaries of the calorimeter layers in units of X0 / lambda seen at eta = 0,
#: ``depth_*_edges[i]`` is the front of layer i, the last entry the back of the calorimeter
DEPTH_X0_EDGES = np.concatenate([[0.0], np.cumsum([layer.depth_x0 for layer in LAYERS])])
DEPTH_LAMBDA_EDGES = np.concatenate([[0.0], np.cumsum([layer.depth_lambda for layer in LAYERS])])


def wrap_phi(phi):
    """Map an angle into (-pi, pi]."""
    phi = np.asarray(phi)
    wrapped = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(wrapped == -np.pi, np.pi, wrapped)


def delta_phi(phi_a, phi_b):
    """phi_a - phi_b wrapped into (-pi, pi]."""
    return wrap_phi(np.asarray(phi_a) - np.asarray(phi_b))


def delta_r(eta_a, phi_a, eta_b, phi_b):
    """Angular distance sqrt(d_eta^2 + d_phi^2) with the phi difference wrapped."""
    return np.hypot(np.asarray(eta_a) - np.asarray(eta_b), delta_phi(phi_a, phi_b))


def curvature_radius_mm(pt_gev, charge, b_field_t: float = B_FIELD_T):
    """Radius of the transverse helix [mm] of a particle with ``pt_gev`` and ``charge`` (|q| in e)."""
    charge = np.abs(np.asarray(charge, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(charge > 0, 1e3 * np.asarray(pt_gev) / (GEV_PER_TESLA_METRE * b_field_t * charge), np.inf)


def reaches_radius(pt_gev, charge, radius_mm, b_field_t: float = B_FIELD_T):
    """Whether a helix from the origin reaches the cylinder at ``radius_mm`` (2 R_curv >= r)."""
    return 2 * curvature_radius_mm(pt_gev, charge, b_field_t) >= radius_mm


def helix_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm, b_field_t: float = B_FIELD_T):
    """(eta, phi) of the point where a particle from the origin crosses the cylinder ``radius_mm``.

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


def calo_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm, b_field_t: float = B_FIELD_T):
    """(eta, phi) where a particle from the origin crosses ``radius_mm`` >= the calorimeter front.

    The solenoid field fills the volume inside the calorimeter: the particle follows its helix up
    to r0 = ``CALO_FRONT_MM`` and then a straight line along its direction there (shower axes and
    extrapolated tracks alike). At r0 the position has turned by ``b = asin(r0 / 2R)`` and the
    direction by ``2 b``; a straight line at azimuth ``phi_d`` passing r0 at ``phi_p`` crosses r at
    ``phi_d - asin(r0 sin(phi_d - phi_p) / r)``, after a transverse path ``sqrt(r^2 - h^2) -
    sqrt(r0^2 - h^2)`` with ``h = r0 sin(phi_d - phi_p)``; z grows by sinh(eta) per unit transverse
    path. NaN for particles that do not reach the calorimeter.
    """
    pt_gev, eta, phi, charge, radius_mm = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi, charge, radius_mm)))
    r0 = CALO_FRONT_MM
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


def cell_ieta_iphi(layer: int, eta, phi):
    """Integer (ieta, iphi) of the cells of ``layer`` containing (eta, phi); ieta = -1 outside |eta| < 3."""
    n = LAYERS[layer].n_cells
    ieta = np.floor((np.asarray(eta) + ETA_MAX) / (2 * ETA_MAX) * n).astype(np.int64)
    iphi = np.floor((wrap_phi(phi) + np.pi) / (2 * np.pi) * n).astype(np.int64) % n
    ieta = np.where((ieta >= 0) & (ieta < n), ieta, -1)
    return ieta, iphi


def cell_centre(layer: int, ieta, iphi):
    """(eta, phi) of the centres of cells (ieta, iphi) of ``layer``."""
    n = LAYERS[layer].n_cells
    eta = -ETA_MAX + (np.asarray(ieta) + 0.5) * (2 * ETA_MAX / n)
    phi = -np.pi + (np.asarray(iphi) + 0.5) * (2 * np.pi / n)
    return eta, phi
