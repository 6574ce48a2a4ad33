"""The calorimeter cells of a region of interest, and their digitisation (signal + electronic noise).

Only the cells near the selected truth jets are simulated: :func:`window_cells` lists every cell
whose centre lies within dR < ``R + roi_margin`` of a jet axis (phi wraps), each cell once, in
increasing global cell id (layer, then ieta, then iphi).
:func:`digitise` adds the energy spots of the showers into those cells and gives every cell
Gaussian noise of its layer's COCOA sigma (arXiv:2303.02101).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from detector_sim import geometry as geo


@dataclass
class Spots:
    """Energy deposits before digitisation: one entry per spot."""

    layer: np.ndarray  # int64
    eta: np.ndarray
    phi: np.ndarray
    energy: np.ndarray  # GeV, EM scale
    particle: np.ndarray  # int64 index of the particle that made the spot


@dataclass
class CellWindow:
    """The cells of a region of interest, each once, in increasing global cell id."""

    cell_id: np.ndarray  # global id: LAYER_OFFSET[layer] + ieta * n + iphi, increasing
    layer: np.ndarray
    ieta: np.ndarray
    iphi: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    sigma: np.ndarray  # GeV

    def positions(self, cell_id) -> np.ndarray:
        """Index into the window's arrays of each global cell id; -1 for ids outside the window (or -1)."""
        cell_id = np.asarray(cell_id, dtype=np.int64)
        if self.cell_id.size == 0:
            return np.full(cell_id.shape, -1, dtype=np.int64)
        index = np.minimum(np.searchsorted(self.cell_id, cell_id), self.cell_id.size - 1)
        return np.where(self.cell_id[index] == cell_id, index, -1)


_N_CELLS = geo.N_CELLS.astype(np.int64)
_LAYER_OFFSET = geo.LAYER_OFFSET.astype(np.int64)
_NOISE_GEV = geo.NOISE_GEV.astype(np.float64)


def window_cells(centre_eta, centre_phi, half_width: float, noise_scale: float = 1.0) -> CellWindow:
    """All cells whose centres lie within dR < ``half_width`` of any centre (``radius`` of the region)."""
    centre_eta = np.ascontiguousarray(np.atleast_1d(centre_eta), dtype=np.float64)
    centre_phi = np.ascontiguousarray(np.atleast_1d(centre_phi), dtype=np.float64)
    return CellWindow(*_window_kernel(centre_eta, centre_phi, float(half_width), float(noise_scale), _N_CELLS,
                                      _LAYER_OFFSET, _NOISE_GEV, geo.ETA_MAX))


@numba.njit(cache=True)
def _window_kernel(centre_eta, centre_phi, half_width, noise_scale, n_cells, layer_offset, noise_gev, eta_max):
    """The arrays of :class:`CellWindow`, cells in increasing global id."""
    n_jets = centre_eta.size
    total = 0
    for lay in range(n_cells.size):  # an upper bound of the cell count
        n = n_cells[lay]
        rows = min(int(2 * half_width / (2 * eta_max / n)) + 2, n)
        cols = min(int(2 * half_width / (2 * np.pi / n)) + 2, n)
        total += n_jets * rows * cols
    cell_id = np.empty(total, dtype=np.int64)
    layer = np.empty(total, dtype=np.int64)
    ieta = np.empty(total, dtype=np.int64)
    iphi = np.empty(total, dtype=np.int64)
    count = 0
    for lay in range(n_cells.size):
        n = n_cells[lay]
        d_eta, d_phi = 2 * eta_max / n, 2 * np.pi / n
        row_lo, row_hi = n, 0  # rows whose centre eta can lie inside some circle
        for k in range(n_jets):
            row_lo = min(row_lo, max(int(np.floor((centre_eta[k] - half_width + eta_max) / d_eta - 0.5)) + 1, 0))
            row_hi = max(row_hi, min(int(np.ceil((centre_eta[k] + half_width + eta_max) / d_eta - 0.5)), n))
        inside = np.zeros(n, dtype=np.bool_)  # per row: the iphi inside some circle
        for i in range(row_lo, row_hi):
            row_eta = -eta_max + (i + 0.5) * d_eta
            lo_j, hi_j = n, -1  # the range of marked iphi, to scan only that
            for k in range(n_jets):
                d = row_eta - centre_eta[k]
                if abs(d) >= half_width:
                    continue
                reach = np.sqrt(half_width**2 - d**2)  # centres with |dphi| < reach are inside
                first = int(np.floor((centre_phi[k] - reach + np.pi) / d_phi - 0.5)) + 1
                last = min(int(np.ceil((centre_phi[k] + reach + np.pi) / d_phi - 0.5)), first + n)
                for j in range(first, last):
                    jj = j % n
                    inside[jj] = True
                    lo_j, hi_j = min(lo_j, jj), max(hi_j, jj)
            for j in range(lo_j, hi_j + 1):  # in order, each once; reset for the next row
                if inside[j]:
                    cell_id[count] = layer_offset[lay] + i * n + j
                    layer[count], ieta[count], iphi[count] = lay, i, j
                    count += 1
                    inside[j] = False
    cell_id, layer, ieta, iphi = cell_id[:count], layer[:count], ieta[:count], iphi[:count]
    eta = np.empty(count)
    phi = np.empty(count)
    sigma = np.empty(count)
    for c in range(count):
        n = n_cells[layer[c]]
        eta[c] = -eta_max + (ieta[c] + 0.5) * (2 * eta_max / n)
        phi[c] = -np.pi + (iphi[c] + 0.5) * (2 * np.pi / n)
        sigma[c] = noise_gev[layer[c]] * noise_scale
    return cell_id, layer, ieta, iphi, eta, phi, sigma


def spot_cell_ids(spots: Spots) -> np.ndarray:
    """Global cell id of every spot; -1 outside |eta| < 3."""
    n = geo.N_CELLS[spots.layer]
    ieta = np.floor((spots.eta + geo.ETA_MAX) / (2 * geo.ETA_MAX) * n).astype(np.int64)
    iphi = np.floor((spots.phi + np.pi) / (2 * np.pi) * n).astype(np.int64) % n
    inside = (ieta >= 0) & (ieta < n)
    return np.where(inside, geo.LAYER_OFFSET[spots.layer] + ieta * n + iphi, -1)


def digitise(spots: Spots, window: CellWindow, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell energies in ``window``: (signal + Gaussian noise, signal alone); one normal per cell, in window order."""
    signal = _signal_kernel(np.ascontiguousarray(spots.layer, dtype=np.int64), np.ascontiguousarray(spots.eta, dtype=np.float64),
                            np.ascontiguousarray(spots.phi, dtype=np.float64), np.ascontiguousarray(spots.energy, dtype=np.float64),
                            window.cell_id, _N_CELLS, _LAYER_OFFSET, geo.ETA_MAX, _POSITION_MAP)
    noise = window.sigma * rng.standard_normal(window.cell_id.size, dtype=np.float32)
    return signal + noise, signal


#: global cell id -> position in the current window (-1 between calls); one per process, like the
#: topoclustering's map (the kernel holds the GIL, so threads never share it at the same time)
_POSITION_MAP = np.full(geo.N_CELLS_TOTAL, -1, dtype=np.int64)


@numba.njit(cache=True)
def _signal_kernel(layer, eta, phi, energy, window_ids, n_cells, layer_offset, eta_max, position_map):
    """Sum of the spots' energies in each window cell (spots outside the window or |eta| < 3 are lost)."""
    for c in range(window_ids.size):
        position_map[window_ids[c]] = c
    signal = np.zeros(window_ids.size)
    for s in range(layer.size):
        n = n_cells[layer[s]]
        i = int(np.floor((eta[s] + eta_max) / (2 * eta_max) * n))
        if i < 0 or i >= n:
            continue
        j = int(np.floor((phi[s] + np.pi) / (2 * np.pi) * n)) % n
        c = position_map[layer_offset[layer[s]] + i * n + j]
        if c >= 0:
            signal[c] += energy[s]
    for c in range(window_ids.size):
        position_map[window_ids[c]] = -1
    return signal
