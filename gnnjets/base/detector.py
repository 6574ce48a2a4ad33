"""The COCOA-like detector both packages describe: calorimeter layers, radii, noise, the solenoid.

The simulation (``detector_sim``) builds its cells from these numbers, and the readers of foreign
files (:mod:`gnnjets.io.mapping`) fill missing branches with them, so they live once, here.

The calorimeter is a projective cylinder with its front face at r = 1500 mm covering
|eta| < 3 (the endcaps are treated as the barrel continued: cells are projective in
(eta, phi) everywhere). Each layer is an (eta, phi) grid with ``n_cells`` bins in eta across
[-3, 3] and the same number in phi across [-pi, pi). Granularity and noise are COCOA's default
configuration (arXiv:2303.02101). Radii follow from the depths (X0 for the ECAL, lambda_int for
the HCAL) with effective material constants: Pb/LAr X0 = 14 mm, lambda = 280 mm;
Fe/scintillator X0 = 20 mm, lambda = 200 mm.

Units: lengths in mm, energies in GeV (noise in MeV where the name says so), field in tesla.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ETA_MAX = 3.0
CALO_FRONT_MM = 1500.0
B_FIELD_T = 3.8


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
        return 2 * math.pi / self.n_cells

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
#: per-layer electronic noise [GeV] and radius of the layer middle [mm], in layer order
NOISE_GEV: tuple[float, ...] = tuple(layer.noise_gev for layer in LAYERS)
R_MID_MM: tuple[float, ...] = tuple(layer.r_mid_mm for layer in LAYERS)
