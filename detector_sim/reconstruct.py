"""One replica's detector response: showers, cell noise, topoclusters split at local maxima, tracks.

The region of interest of an event's truth (one *view*: the particles and selected jets a
replica sees) is fixed before its replicas are drawn (:func:`view_geometry`): the window of cells
within dR < ``R + roi_margin`` of the jet axes, the particles whose showers can reach it (impact
point within ``R + roi_margin + SHOWER_REACH`` of an axis in eta and in phi), and the charged
particles whose tracks can fall inside a reco jet (within dR < ``1.5 R + TRACK_REACH`` of a truth
axis: a reco jet is matched within R/2 of its truth jet and takes the tracks within R of its own
axis).

:func:`respond` then draws one replica from its generator, in this fixed order: showers, cell
noise, tracks. Pile-up particles (:mod:`detector_sim.pileup`), when given, join the view's
particles before any of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detector_sim import calorimeter
from detector_sim.cells import CellWindow, digitise, window_cells
from detector_sim.clustering import topoclusters
from detector_sim.config import SimConfig
from detector_sim.splitting import SplitClusters, Splitter
from detector_sim.tracker import reconstruct_tracks
from detector_sim.truth import TruthEvent
from gnnjets.base.kinematics import delta_phi, delta_r

#: extra eta-phi distance beyond the region of interest within which a particle's showers are simulated
SHOWER_REACH = 0.3
#: extra eta-phi distance beyond 1.5 R within which charged particles are tracked
TRACK_REACH = 0.1
_NO_SPLITTING = (None,) * 6
_SPLITTERS: dict[tuple, Splitter] = {}  # per detector setting, made once per process


@dataclass
class ViewGeometry:
    """What the replicas of one view share: the cell window, the impact points, who is showered and tracked."""

    window: CellWindow
    impacts: tuple[np.ndarray, np.ndarray, np.ndarray]  # eta (n, 6), phi (n, 6), reaches (n,)
    showered: np.ndarray  # (n,) bool: impact point within reach of the window
    tracked: np.ndarray  # int64 indices of the particles near enough to a jet to be tracked


@dataclass
class Response:
    """One replica's reconstructed detector: its clustered cells, their clusters, its tracks."""

    window: CellWindow
    cells: np.ndarray  # (M,) window positions of the cells in a topocluster
    energy: np.ndarray  # (M,) their energies [GeV], noise included
    clusters: SplitClusters  # over the M cells
    tracks: dict[str, np.ndarray]


def splitter_of(config: SimConfig) -> Splitter:
    """The cluster splitter of ``config.detector`` (with ``splitting: false`` one that finds no maxima)."""
    det = config.detector
    key = (det.splitting, tuple(det.split_thresholds_gev), tuple(det.split_secondary_layers))
    if key not in _SPLITTERS:
        _SPLITTERS[key] = Splitter(det.split_thresholds_gev if det.splitting else _NO_SPLITTING, det.split_secondary_layers)
    return _SPLITTERS[key]


def _near_jets(eta, phi, jets: dict, reach: float) -> np.ndarray:
    """Whether each (eta, phi) — any trailing shape — lies within ``reach`` of some jet axis in eta and phi."""
    d_eta = np.abs(np.asarray(eta)[..., None] - jets["eta"])
    d_phi = np.abs(delta_phi(np.asarray(phi)[..., None], jets["phi"]))
    return ((d_eta < reach) & (d_phi < reach)).any(axis=-1)


def _within(eta, phi, jets: dict, distance: float) -> np.ndarray:
    """Whether each particle direction lies within dR < ``distance`` of some jet axis."""
    return (delta_r(np.asarray(eta)[:, None], np.asarray(phi)[:, None], jets["eta"], jets["phi"]) < distance).any(axis=1)


def view_geometry(view: TruthEvent, config: SimConfig) -> ViewGeometry:
    """The window, impacts and selections of a view with at least one selected jet."""
    radius = config.jets.radius
    half_width = radius + config.detector.roi_margin
    window = window_cells(view.jets["eta"], view.jets["phi"], half_width, config.detector.noise_scale)
    impacts = calorimeter.impact_points(view.particles)
    showered = _near_jets(impacts[0], impacts[1], view.jets, half_width + SHOWER_REACH).any(axis=1)
    particles = view.particles
    tracked = np.flatnonzero((particles["charge"] != 0)
                             & _within(particles["eta"], particles["phi"], view.jets, 1.5 * radius + TRACK_REACH))
    return ViewGeometry(window, impacts, showered, tracked)


def respond(view: TruthEvent, geometry: ViewGeometry, rng: np.random.Generator, config: SimConfig,
            pileup=None) -> Response:
    """One replica of ``view`` through calorimeter and tracker (draws in the module docstring's order).

    ``pileup``: (particles, impacts) from :func:`detector_sim.pileup.overlay`, or None.
    """
    particles, impacts, showered, tracked = view.particles, geometry.impacts, geometry.showered, geometry.tracked
    if pileup is not None:
        extra, extra_impacts = pileup
        half_width = config.jets.radius + config.detector.roi_margin
        n = len(particles["pt"])
        particles = {key: np.concatenate([particles[key], extra[key]]) for key in particles}
        impacts = tuple(np.concatenate([a, b]) for a, b in zip(impacts, extra_impacts))
        showered = np.concatenate([showered, _near_jets(extra_impacts[0], extra_impacts[1], view.jets,
                                                        half_width + SHOWER_REACH).any(axis=1)])
        near = (extra["charge"] != 0) & _within(extra["eta"], extra["phi"], view.jets,
                                                1.5 * config.jets.radius + TRACK_REACH)
        tracked = np.concatenate([tracked, n + np.flatnonzero(near)])
    window = geometry.window
    spots, _ = calorimeter.shower_spots(particles, rng, select=showered, impacts=impacts)
    energy, _ = digitise(spots, window, rng)
    topo = topoclusters(window.layer, window.ieta, window.iphi, energy, window.sigma)
    cells = np.flatnonzero(topo >= 0)
    clusters = splitter_of(config).split_clustered(window.layer[cells], window.ieta[cells], window.iphi[cells],
                                                   energy[cells], window.eta[cells], window.phi[cells], topo[cells])
    tracks = reconstruct_tracks({key: particles[key][tracked] for key in ("pt", "eta", "phi", "charge", "vx", "vy", "vz")},
                                rng, efficiency_plateau=config.detector.tracker_efficiency)
    return Response(window, cells, energy[cells], clusters, tracks)
