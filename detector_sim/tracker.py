"""Tracker: acceptance, reconstruction efficiency, perigee smearing, helix extrapolation.

A parametric inner tracker with ATLAS-Inner-Detector-like performance in the solenoid field of
the calorimeter geometry (3.8 T along +z, ``geometry.B_FIELD_T``). Each charged particle inside the
acceptance is reconstructed with a (pT, eta)-dependent probability; its perigee parameters
(q/pT, theta, phi0, d0, z0) are smeared with Gaussian resolutions, and the smeared helix is
extrapolated to the mid radius of every calorimeter layer.

Conventions
-----------
``particles``: dict of 1-d arrays, one entry per stable particle: ``pt, eta, phi`` [GeV, rad]
at the production vertex, ``charge`` [e], ``vx, vy, vz`` production vertex [mm] (further keys,
e.g. ``e, m, pdgid``, are ignored). Returned tracks: dict of arrays, one row per track, in the
order of the input particles (``particle_index`` increasing).

Perigee = the point of the helix closest to the beam line (z axis) in the transverse plane.

- ``d0`` [mm]: signed transverse distance of the perigee from the beam line, positive when the
  perigee lies to the left of the direction of flight seen from +z: the perigee is
  ``d0 * (-sin phi0, cos phi0)``. This is the CMS ``dxy`` / ACTS and ATLAS perigee convention;
  for a straight line from vertex v it is ``d0 = vy cos(phi) - vx sin(phi)``.
- ``z0`` [mm]: z of the perigee.
- ``phi0``: azimuth of the momentum at the perigee (``track phi``); ``eta`` is constant along
  the helix.

Physics and the origin of every number
--------------------------------------
Acceptance:
  charge != 0, pT > 1 GeV, |eta| < 2.5 (the silicon coverage of ATLAS / CMS),
  production vertex radius sqrt(vx^2 + vy^2) < 300 mm: a standard ATLAS track needs >= 7
  silicon hits; a particle made inside r = 300 mm still crosses the four strip (SCT) barrel
  double layers at r ~ 300-514 mm (8 hits). Decays further out leave no track. No cut on vz.
  A particle with |charge| != 1 is fitted as unit charge: its reported pT is pT / |charge|.
Efficiency (per particle, one Bernoulli draw):
  ``plateau * turn_on(pT) * forward(|eta|)`` with
  ``turn_on = 1 - 0.10 * ((5 - pT) / 4)^2`` for 1 < pT < 5 GeV, 1 above (0.90 at 1 GeV rising
  smoothly to the plateau at 5 GeV; ATLAS-like, losses from hadronic interactions and
  multiple scattering at low pT), and ``forward = 1 - 0.10 * clip((|eta| - 1.5) / 1.0, 0, 1)``
  (more material in front of and inside the forward tracker: 10 % fewer tracks at |eta| = 2.5).
  Default plateau 0.95 (``DetectorConfig.tracker_efficiency``). Efficiency does not depend on
  the production radius inside the 300 mm acceptance (a simplification).
Resolutions (Gaussian, evaluated at the true pT and theta; ``a (+) b`` = sqrt(a^2 + b^2)):
  barrel (theta = 90 deg) values are ATLAS-ID-like; the ATLAS detector paper
  (JINST 3 (2008) S08003, expected ID performance) quotes
  sigma(q/pT) = 0.34 TeV^-1 (1 (+) 44 GeV / pT), i.e. sigma(pT)/pT = 0.034 % pT (+) 1.5 %;
  we use the commonly quoted barrel figure 0.036 % pT (+) 1.3 %. The angle and impact-parameter
  numbers are typical LHC-silicon-tracker barrel values (ATLAS / CMS order of magnitude), not
  a fit to one publication.
  The multiple-scattering (MS) terms scale with the material traversed, ~ 1/sin(theta), through
  the textbook forms below (sin(theta) = 1 / cosh(eta)); the point-resolution terms are kept
  constant in eta except where a projection enters (lever-arm loss in the endcaps ignored).

  ============  ==========================  ===========================================
  parameter     point resolution            multiple scattering (pT in GeV)
  ============  ==========================  ===========================================
  q/pT          sigma * pT = 0.036 % * pT   (+) 1.3 % / sin(theta)^(1/2)
  phi0          0.1 mrad                    (+) 2.5 mrad / (pT sin(theta)^(1/2))
  theta         0.1 mrad                    (+) 2.5 mrad * sin(theta)^(1/2) / pT
  d0            10 um                       (+) 100 um / (pT sin(theta)^(1/2))
  z0            50 um / sin(theta)          (+) 150 um / (pT sin(theta)^(3/2))
  ============  ==========================  ===========================================

  The MS angle at fixed pT is theta_0 ~ sqrt(x / (X0 sin theta)) / p ~ sin(theta)^(1/2) / pT;
  in phi it is projected onto the transverse plane (/ sin theta), d0 is the transverse
  deflection times a transverse lever arm (same scaling as phi0), and z0 sin(theta) behaves like
  d0 (the usual ``b / (p sin^(3/2) theta)`` for d0 and ``b / (p sin^(5/2) theta)`` for z0).
  The smeared theta is kept inside (0, pi); the smeared q/pT gives charge (its sign) and pT.
Truth perigee:
  computed exactly for the helix through the production vertex (closed form: circle of radius
  R = pT / (0.3 B |q|) around centre c; d0 = sign(q) (R - |c|)); it reduces to the straight-line
  ``d0 = vy cos(phi) - vx sin(phi)``, ``z0 = vz - (vx cos(phi) + vy sin(phi)) sinh(eta)`` for
  R >> |v|.
Extrapolation:
  ``kinematics.calo_eta_phi_at_radius`` with the smeared (pT, eta, phi0, charge) to
  ``geometry.R_MID_MM``: the helix up to the calorimeter front (r = 1500 mm), a straight line
  beyond it, as for the shower axes. The helix starts at the origin, i.e. the perigee offsets d0,
  z0 are ignored there: negligible for prompt tracks (|d0| ~ 0.01-0.1 mm), an error of up to
  ~|d0| / r in phi for daughters of K0S / Lambda decays (|d0| up to tens of mm). NaN for tracks
  that do not reach the calorimeter (2R < 1500 mm: pT < 0.855 GeV; never inside the pT > 1 GeV
  acceptance).

Randomness
----------
Draws come from the ``rng`` argument only, in one fixed order: first one uniform per accepted
particle (efficiency, input order), then one block of standard normals of shape
``(n_tracks, 5)`` (columns q/pT, theta, phi0, d0, z0). The output is a deterministic function of
the generator state and the input.
"""

from __future__ import annotations

import numpy as np

from detector_sim import geometry
from gnnjets.base import kinematics
from gnnjets.base.checks import check_number
from gnnjets.base.hints import close_matches

#: tracking acceptance (see the module docstring for the origin of each number)
PT_MIN_GEV = 1.0
ABS_ETA_MAX = 2.5
VERTEX_RADIUS_MAX_MM = 300.0

#: efficiency shape: loss at pT = 1 GeV relative to the plateau, pT [GeV] where the plateau starts
_TURN_ON_LOSS = 0.10
_PLATEAU_PT_GEV = 5.0
#: efficiency loss at |eta| = 2.5 relative to the barrel, and the |eta| where the loss begins
_FORWARD_LOSS = 0.10
_FORWARD_ETA_START = 1.5

#: resolutions at theta = 90 deg: (point-resolution term, multiple-scattering term at pT = 1 GeV)
SIGMA_QOVERPT_REL = (3.6e-4, 1.3e-2)  # sigma(q/pT) * pT = 3.6e-4 * pT[GeV] (+) 1.3e-2
SIGMA_PHI_RAD = (1.0e-4, 2.5e-3)
SIGMA_THETA_RAD = (1.0e-4, 2.5e-3)
SIGMA_D0_MM = (0.010, 0.100)
SIGMA_Z0_SIN_THETA_MM = (0.050, 0.150)

#: smeared theta is clipped to [eps, pi - eps] (eta ~ +-17.5), far outside the acceptance
_THETA_EPS = 5e-8

REQUIRED_KEYS = ("pt", "eta", "phi", "charge", "vx", "vy", "vz")
TRACK_KEYS = ("pt", "eta", "phi", "charge", "d0", "z0", "eta_layer", "phi_layer", "particle_index")


def tracking_efficiency(pt_gev, eta, efficiency_plateau: float = 0.95):
    """Probability to reconstruct a charged particle inside the acceptance (no acceptance cut here)."""
    pt_gev = np.asarray(pt_gev, dtype=np.float64)
    abs_eta = np.abs(np.asarray(eta, dtype=np.float64))
    below = np.clip((_PLATEAU_PT_GEV - pt_gev) / (_PLATEAU_PT_GEV - PT_MIN_GEV), 0.0, 1.0)
    turn_on = 1.0 - _TURN_ON_LOSS * below**2  # flat slope where it meets the plateau
    forward = 1.0 - _FORWARD_LOSS * np.clip((abs_eta - _FORWARD_ETA_START) / (ABS_ETA_MAX - _FORWARD_ETA_START), 0.0, 1.0)
    return efficiency_plateau * turn_on * forward


def track_resolutions(pt_gev, eta) -> dict[str, np.ndarray]:
    """Gaussian sigmas of the perigee parameters at true (pT, eta).

    Returns ``qoverpt`` [1/GeV] (absolute sigma of q/pT), ``theta`` and ``phi`` [rad],
    ``d0`` and ``z0`` [mm], broadcast to the shape of the inputs.
    """
    pt_gev, eta = np.broadcast_arrays(np.asarray(pt_gev, dtype=np.float64), np.asarray(eta, dtype=np.float64))
    sin_theta = 1.0 / np.cosh(eta)
    root_sin = np.sqrt(sin_theta)
    rel_pt = np.hypot(SIGMA_QOVERPT_REL[0] * pt_gev, SIGMA_QOVERPT_REL[1] / root_sin)
    return {
        "qoverpt": rel_pt / pt_gev,
        "theta": np.hypot(SIGMA_THETA_RAD[0], SIGMA_THETA_RAD[1] * root_sin / pt_gev),
        "phi": np.hypot(SIGMA_PHI_RAD[0], SIGMA_PHI_RAD[1] / (pt_gev * root_sin)),
        "d0": np.hypot(SIGMA_D0_MM[0], SIGMA_D0_MM[1] / (pt_gev * root_sin)),
        "z0": np.hypot(SIGMA_Z0_SIN_THETA_MM[0], SIGMA_Z0_SIN_THETA_MM[1] / (pt_gev * root_sin)) / sin_theta,
    }


def perigee_from_vertex(pt_gev, eta, phi, charge, vx_mm, vy_mm, vz_mm, b_field_t: float = geometry.B_FIELD_T):
    """True perigee (phi0, d0, z0) of the helix through a production vertex; conventions in the module docstring.

    The transverse circle has radius R and centre ``c = v + sign(q) R (sin phi, -cos phi)``
    (a positive particle turns clockwise for B along +z). The perigee is where the circle meets
    the line from the origin through c: ``d0 = sign(q) (R - |c|)``, computed without cancellation
    as ``(2 R d_line - sign(q) |v|^2) / (R + |c|)`` with the straight-line ``d_line``. The momentum
    there is perpendicular to c, and z0 follows from the transverse arc length ``R * (phi0 - phi)``
    travelled from the perigee to the vertex. Neutral particles get the straight-line values.
    """
    pt_gev, eta, phi, charge, vx, vy, vz = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi, charge, vx_mm, vy_mm, vz_mm)))
    sign = np.sign(charge)
    cos_phi, sin_phi = np.cos(phi), np.sin(phi)
    d_line = vy * cos_phi - vx * sin_phi
    along = vx * cos_phi + vy * sin_phi  # transverse distance perigee -> vertex along the flight
    straight = sign == 0
    # neutral: a unit placeholder radius keeps the arithmetic finite; np.where discards it
    radius = kinematics.curvature_radius_mm(np.where(straight, 1.0, pt_gev), np.where(straight, 1.0, charge), b_field_t)
    # sign(q) * c: the direction from the origin to the centre, seen as the right-hand normal of phi0
    centre_x = sign * vx + radius * sin_phi
    centre_y = sign * vy - radius * cos_phi
    centre_norm = np.hypot(centre_x, centre_y)
    d0 = np.where(straight, d_line, (2 * radius * d_line - sign * (vx**2 + vy**2)) / (radius + centre_norm))
    phi0 = np.where(straight, phi, np.arctan2(centre_x, -centre_y))
    arc = np.where(straight, along, sign * radius * kinematics.delta_phi(phi0, phi))
    z0 = vz - arc * np.sinh(eta)
    return phi0, d0, z0


def _check_inputs(particles, rng, efficiency_plateau) -> int:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    check_number("efficiency_plateau", efficiency_plateau, 0, 1)
    if not isinstance(particles, dict):
        raise TypeError(f"particles must be a dict of 1-d numpy arrays, not {type(particles).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in particles]
    if missing:
        hints = [f"'{key}'{close_matches(key, particles, end='')}" for key in missing]
        raise KeyError(f"particles lacks {', '.join(hints)}; required: {', '.join(REQUIRED_KEYS)}; "
                       f"available: {', '.join(map(str, particles)) or 'none'}")
    lengths = {key: np.shape(particles[key]) for key in REQUIRED_KEYS}
    shapes = set(lengths.values())
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise ValueError(f"particles arrays must be 1-d and of equal length, got shapes {lengths}")
    return next(iter(shapes))[0]


def reconstruct_tracks(particles: dict[str, np.ndarray], rng: np.random.Generator, *,
                       efficiency_plateau: float = 0.95) -> dict[str, np.ndarray]:
    """Reconstructed tracks of the charged particles of one event (one replica).

    Args:
        particles: per-particle arrays ``pt, eta, phi, charge, vx, vy, vz`` (module docstring).
        rng: the replica's generator; consumed in the fixed order given in the module docstring.
        efficiency_plateau: reconstruction efficiency for pT > 5 GeV, |eta| < 1.5 (default 0.95).

    Returns:
        dict, one row per track: ``pt, eta, phi, d0, z0`` (float64, smeared perigee),
        ``charge`` (int32, +-1), ``eta_layer, phi_layer`` (float64, shape (n_tracks, 6), NaN
        where the smeared helix does not reach the layer's mid radius) and ``particle_index``
        (int64, into the input arrays).
    """
    _check_inputs(particles, rng, efficiency_plateau)
    pt, eta, phi, charge, vx, vy, vz = (np.asarray(particles[key], dtype=np.float64) for key in REQUIRED_KEYS)

    accepted = (charge != 0) & (pt > PT_MIN_GEV) & (np.abs(eta) < ABS_ETA_MAX) \
        & (np.hypot(vx, vy) < VERTEX_RADIUS_MAX_MM)
    candidates = np.flatnonzero(accepted)  # (n_acc,)
    found = rng.random(candidates.size) < tracking_efficiency(pt[candidates], eta[candidates], efficiency_plateau)
    index = candidates[found]  # (n_tracks,)
    pt, eta, phi, charge, vx, vy, vz = (x[index] for x in (pt, eta, phi, charge, vx, vy, vz))

    phi0, d0, z0 = perigee_from_vertex(pt, eta, phi, charge, vx, vy, vz)
    sigma = track_resolutions(pt, eta)
    noise = rng.standard_normal((index.size, 5))  # (n_tracks, 5): q/pT, theta, phi0, d0, z0

    # the fit assumes unit charge: the curvature measures q/pT = sign(q) |q| / pT
    qoverpt = charge / pt + sigma["qoverpt"] * noise[:, 0]
    theta = 2 * np.arctan(np.exp(-eta)) + sigma["theta"] * noise[:, 1]
    theta = np.clip(theta, _THETA_EPS, np.pi - _THETA_EPS)
    track_charge = np.where(qoverpt < 0, -1, 1).astype(np.int32)
    track_pt = 1.0 / np.maximum(np.abs(qoverpt), np.finfo(np.float64).tiny)
    track_eta = -np.log(np.tan(theta / 2))
    track_phi = kinematics.wrap_phi(phi0 + sigma["phi"] * noise[:, 2])

    eta_layer, phi_layer = kinematics.calo_eta_phi_at_radius(
        track_pt[:, None], track_eta[:, None], track_phi[:, None], track_charge[:, None],
        geometry.R_MID_MM[None, :])  # (n_tracks, 6) each

    return {
        "pt": track_pt,
        "eta": track_eta,
        "phi": np.asarray(track_phi, dtype=np.float64),
        "charge": track_charge,
        "d0": d0 + sigma["d0"] * noise[:, 3],
        "z0": z0 + sigma["z0"] * noise[:, 4],
        "eta_layer": eta_layer,
        "phi_layer": phi_layer,
        "particle_index": index.astype(np.int64),
    }
