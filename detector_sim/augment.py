"""``particle-augmented`` replicas: JetCLR's augmentations applied to the truth particles, before the detector.

JetCLR (arXiv:2108.04253) augments the constituents of a jet with the symmetries and near-symmetries
a representation should respect: soft emissions, collinear splittings, rotations about the jet
axis and translations in (eta, phi). Applied to *cells* (:mod:`gnnjets.augment`) they move
deposits the detector never made; applied here, to the particles of each selected jet before the
calorimeter and tracker see them, every augmented view is a physical detector response.

Per selected jet, in this order, with the replica's own generator
(``replicas.augmentation_generator(seed, event, replica)``) and the parameters of
``config.replicas``:

1. **Collinear splits**: ``collinear_splits`` photons of the jet (chosen uniformly, without
   replacement) each split into two photons along the same direction with energy shares
   ``1 - z`` and ``z``, ``z ~ U(0.1, 0.5)``. Photons only: they are massless and neutral, so the
   split conserves four-momentum and charge exactly, and an EM calorimeter responds to the two
   almost as to one (infrared and collinear safety is the invariance being taught).
2. **Soft emissions**: ``N ~ Poisson(soft_mean_count)`` particles (gamma, pi+ or pi-, equally
   likely) with energy ``m + Exp(soft_mean_energy_gev)``, placed uniformly in the disc dR < R
   around the jet axis, produced at the origin. They become constituents of the jet.
3. **Rotation** of the jet's particles about its axis in the (eta, phi) plane by an angle
   uniform in [-``rotation_max_rad``, ``rotation_max_rad``].
4. **Translation** of the jet's particles by (d_eta, d_phi), each uniform in
   [-``translation_max``, ``translation_max``]; d_eta changes sign if the axis would leave
   |eta| < ``jets.abs_eta_max`` (and is 0 if both signs would).

Moved particles keep their pT and mass (E = sqrt(pT^2 cosh^2 eta + m^2)): for massless particles
a common eta shift is a longitudinal boost, which leaves the jet mass unchanged. A displaced
production vertex follows its particle: turned in the transverse plane by the particle's change
of phi, moved along z so that it stays on the particle's line of flight. The replica's truth jet
(``truth_*``, ``particle_*``) is the four-momentum sum of the augmented constituents; labels and
``jet_index`` are those of the original jet. Particles outside the selected jets are untouched.
"""

from __future__ import annotations

import numpy as np

from detector_sim.truth import TruthEvent, jet_kinematics
from gnnjets.base.kinematics import wrap_phi

_PHOTON = 22
_SOFT_SPECIES = ((22, 0.0, 0.0), (211, 1.0, 0.13957), (-211, -1.0, 0.13957))  # (pdgid, charge, mass [GeV])
_SPLIT_SHARE = (0.1, 0.5)


def augment_event(event: TruthEvent, rng: np.random.Generator, config) -> TruthEvent:
    """The event with the particles of every selected jet augmented (module docstring); the input is not modified."""
    settings = config.replicas
    particles = {key: np.array(value, copy=True) for key, value in event.particles.items()}
    constituents = [np.array(members, copy=True) for members in event.constituents]
    for j in range(len(constituents)):
        axis_eta, axis_phi = float(event.jets["eta"][j]), float(event.jets["phi"][j])
        particles, constituents[j] = _split_photons(particles, constituents[j], rng, settings.collinear_splits)
        particles, constituents[j] = _add_soft(particles, constituents[j], rng, axis_eta, axis_phi, config.jets.radius,
                                               settings.soft_mean_count, settings.soft_mean_energy_gev)
        members = constituents[j]
        angle = rng.uniform(-settings.rotation_max_rad, settings.rotation_max_rad)
        d_eta, d_phi = rng.uniform(-settings.translation_max, settings.translation_max, 2)
        if abs(axis_eta + d_eta) >= config.jets.abs_eta_max:
            d_eta = -d_eta if abs(axis_eta - d_eta) < config.jets.abs_eta_max else 0.0
        rel_eta = particles["eta"][members] - axis_eta
        rel_phi = wrap_phi(particles["phi"][members] - axis_phi)
        cos, sin = np.cos(angle), np.sin(angle)
        new_eta = axis_eta + d_eta + cos * rel_eta - sin * rel_phi
        new_phi = wrap_phi(axis_phi + d_phi + sin * rel_eta + cos * rel_phi)
        _move(particles, members, new_eta, new_phi)
    jets = dict(event.jets)
    p4 = np.array([_four_momentum(particles, members).sum(axis=0) for members in constituents]).reshape(-1, 4)
    jets.update({key: value for key, value in jet_kinematics(p4).items()})
    return TruthEvent(event.event_id, particles, jets, constituents, event.jets_dropped)


def _four_momentum(particles: dict, index: np.ndarray) -> np.ndarray:
    pt, eta, phi = particles["pt"][index], particles["eta"][index], particles["phi"][index]
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), particles["e"][index]], axis=1)  # (n, 4)


def _move(particles: dict, index: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
    """Give particles ``index`` new directions at fixed pT and mass; displaced vertices follow them."""
    old_eta, old_phi = particles["eta"][index], particles["phi"][index]
    turn = phi - old_phi
    vx, vy = particles["vx"][index], particles["vy"][index]
    rho = np.hypot(vx, vy)
    particles["vx"][index] = vx * np.cos(turn) - vy * np.sin(turn)
    particles["vy"][index] = vx * np.sin(turn) + vy * np.cos(turn)
    particles["vz"][index] = particles["vz"][index] + rho * (np.sinh(eta) - np.sinh(old_eta))
    particles["eta"][index], particles["phi"][index] = eta, phi
    pt, m = particles["pt"][index], particles["m"][index]
    particles["e"][index] = np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)


def _append(particles: dict, rows: dict) -> tuple[dict, np.ndarray]:
    """Particles with ``rows`` appended (same keys); the new rows' indices."""
    start = len(particles["pt"])
    out = {key: np.concatenate([particles[key], np.asarray(rows[key], dtype=particles[key].dtype)]) for key in particles}
    return out, np.arange(start, len(out["pt"]), dtype=np.int64)


def _split_photons(particles: dict, members: np.ndarray, rng: np.random.Generator, n_splits: int):
    photons = members[particles["pdgid"][members] == _PHOTON]
    n = min(n_splits, photons.size)
    if n == 0:
        return particles, members
    chosen = rng.choice(photons, size=n, replace=False)
    share = rng.uniform(*_SPLIT_SHARE, n)
    rows = {key: particles[key][chosen].copy() for key in particles}
    for key in ("pt", "e"):
        rows[key] = particles[key][chosen] * share
        particles[key][chosen] = particles[key][chosen] * (1.0 - share)
    particles, new = _append(particles, rows)
    return particles, np.concatenate([members, new])


def _add_soft(particles: dict, members: np.ndarray, rng: np.random.Generator, axis_eta: float, axis_phi: float,
              radius: float, mean_count: float, mean_energy_gev: float):
    n = int(rng.poisson(mean_count))
    if n == 0:
        return particles, members
    species = rng.integers(0, len(_SOFT_SPECIES), n)
    pdgid, charge, mass = (np.array([_SOFT_SPECIES[k][column] for k in species]) for column in range(3))
    energy = mass + rng.exponential(mean_energy_gev, n)
    distance = radius * np.sqrt(rng.uniform(size=n))
    direction = rng.uniform(0.0, 2 * np.pi, n)
    eta = axis_eta + distance * np.cos(direction)
    phi = wrap_phi(axis_phi + distance * np.sin(direction))
    pt = np.sqrt(np.maximum(energy**2 - mass**2, 0.0)) / np.cosh(eta)
    zeros = np.zeros(n)
    rows = {"pt": pt, "eta": eta, "phi": phi, "e": energy, "m": mass, "pdgid": pdgid, "charge": charge,
            "vx": zeros, "vy": zeros, "vz": zeros}
    particles, new = _append(particles, rows)
    return particles, np.concatenate([members, new])
