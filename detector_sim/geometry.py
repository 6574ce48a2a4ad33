"""The simulated calorimeter's cell grids: global cell ids, lookup tables, depths in X0 and lambda.

The layers themselves (granularity, radii, noise, materials) are the COCOA-like geometry of
:mod:`gnnjets.base.detector`, shared with the readers of foreign files; the kinematics (phi
wrapping, the helix) live in :mod:`gnnjets.base.kinematics`. Each layer is an (eta, phi) grid
with ``n_cells`` bins in eta across [-3, 3] and the same number in phi across [-pi, pi); cell
index within a layer: ``ieta * n_cells + iphi``. The depth seen by a particle at pseudorapidity
eta is the radial depth times cosh(eta).

Conventions: lengths in mm, energies in GeV, angles in radians, phi in (-pi, pi].
"""

from __future__ import annotations

import numpy as np

from gnnjets.base.detector import B_FIELD_T, CALO_FRONT_MM, ETA_MAX, LAYERS, N_LAYERS, Layer  # noqa: F401
from gnnjets.base.kinematics import wrap_phi

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
