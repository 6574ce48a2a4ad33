"""Parametric calorimeter: particles -> energy spots -> cells with noise, at the EM scale.

Conventions: ``particles`` is a dict of 1-d arrays (``pt, eta, phi, e`` in GeV/rad, ``pdgid``,
``charge`` in e); energies in GeV, depths along the particle's path in X0 (EM) or lambda_int
(hadronic), lateral distances in mm. Cell energies are at the electromagnetic scale: an electron
of energy E gives on average E, a pion less (non-compensation).

Physics per stable particle that reaches the calorimeter (charged ones must reach r = 1500 mm in
the 3.8 T field, :func:`detector_sim.kinematics.reaches_radius`):

Showers develop along the particle's direction where it enters the calorimeter (the field
fills the tracker volume only, :func:`gnnjets.base.kinematics.calo_eta_phi_at_radius`).

* e+-, gamma — electromagnetic shower (:func:`_em_spots`). Deposited energy: Poisson-sampled
  quanta of ``EM_STOCHASTIC**2`` GeV (sampling fluctuations, sigma/E = 10%/sqrt(E)) times a
  Gaussian calibration factor (constant term 0.7%). Longitudinal profile: Gamma distribution in X0
  with the Grindhammer–Peters (GFlash) parameters ``T = ln y - 0.858``, ``alpha = 0.21 + (0.492 +
  2.38/Z) ln y`` (``y = E / E_c``), drawn per shower with their correlated log-normal
  fluctuations. Radial profile: core + tail, ``f(r) ~ 2 r R^2 / (r^2 + R^2)^2`` with radii in
  Moliere-radius units widening with depth. The energy is carried by spots whose count grows with
  E and whose energies fluctuate (Gamma-distributed shares), each placed at its depth's layer.
* hadrons — first interaction at a depth ~ Exp(1) lambda along the path (a charged hadron deposits
  MIP energy before it; one that interacts beyond the calorimeter punches through). The shower's
  electromagnetic fraction f_em (the energy carried off by pi0 and eta photons) follows Groom's
  power law for its mean, ``<f_em> = 1 - (E / E0)^(m - 1)`` with E0 = 1 GeV and m = 0.83 for
  pions (D. E. Groom, Nucl. Instrum. Meth. A 572 (2007) 633), and fluctuates from shower to shower
  with a Beta distribution (bounded to [0, 1], skewed towards large f_em at low energy as the
  pi0 content of a cascade is) of standard deviation ``sigma(f_em) = 0.11 (E / 10 GeV)^-0.15``:
  0.13 at 3 GeV, 0.11 at 10 GeV, 0.08 at 100 GeV, 0.065 at 500 GeV (:func:`em_fraction_spread`).
  These fluctuations are what makes the hadronic constant term and what shower shapes can
  calibrate. The hadronic part is seen at ``HAD_OVER_EM`` = 0.55 of the EM scale
  (non-compensation, invisible nuclear binding energy). Deposited energy: Poisson quanta of
  ``HAD_STOCHASTIC**2`` GeV and a constant term. The EM part develops as an EM shower from the
  interaction point, the hadronic part with a Gamma profile in lambda and a wider lateral spread.
* muons — minimum ionising: per layer a Moyal(Landau)-fluctuated MIP energy proportional to the
  path length in the layer.

Leakage beyond the last layer and spots outside |eta| < 3 are lost. :func:`mean_response` gives
the expected deposit / energy for each kind (used by the tests' energy bookkeeping).
"""

from __future__ import annotations

import numba
import numpy as np

from detector_sim import geometry as geo
from detector_sim.cells import CellWindow, Spots, digitise, spot_cell_ids, window_cells  # noqa: F401  (the calorimeter's API)
from gnnjets.base import kinematics

# --- electromagnetic showers -----------------------------------------------------------------
EM_STOCHASTIC = 0.085  # sampling term; with topocluster losses and noise the reconstructed electron gets ~10%/sqrt(E)
EM_CONSTANT = 0.007
CRITICAL_ENERGY_GEV = 0.0107  # Pb/LAr effective E_c
Z_EFF = 82.0  # lead absorber
MOLIERE_MM = 30.0  # effective Moliere radius of the Pb/LAr mixture
EM_CORE_FRACTION = 0.85  # energy fraction in the radial core
# --- hadronic showers --------------------------------------------------------------------------
HAD_OVER_EM = 0.55  # h/e: response to the non-EM part of a hadronic shower
GROOM_E0_GEV, GROOM_M = 1.0, 0.83  # <f_em> = 1 - (E / E0)^(m - 1) for pions (Groom, NIM A 572 (2007) 633)
EM_FRACTION_SPREAD_10GEV, EM_FRACTION_SPREAD_SLOPE = 0.11, 0.15  # sigma(f_em) = 0.11 (E / 10 GeV)^-0.15
HAD_STOCHASTIC = 0.36  # sampling term of the hadronic deposit; with the f_em spread a pion gets ~50%/sqrt(E) (+) 3.5%
HAD_CONSTANT = 0.015
HAD_CORE_MM, HAD_TAIL_MM, HAD_CORE_FRACTION = 40.0, 150.0, 0.6  # lateral profile of the hadronic part
# --- minimum ionising deposits (EM scale, per layer at eta = 0) --------------------------------
# ~7.5 MeV per X0 in Pb/LAr and ~190 MeV per lambda in Fe/scintillator
MIP_GEV_PER_LAYER = np.array([layer.depth_x0 * 0.0075 if layer.is_ecal else layer.depth_lambda * 0.19
                              for layer in geo.LAYERS])
# --- spots -------------------------------------------------------------------------------------
SPOT_ENERGY_GEV = 0.4  # a shower gets ~E / 0.4 GeV spots ...
MAX_SPOTS = 300  # ... at most this many (lateral detail beyond this is invisible at cell size)
SPOT_SHAPE = 4.0  # Gamma shape of the spots' energy shares (larger = more even)

EM_PDGIDS = (11, 22)
MUON_PDGID = 13


def particle_kind(pdgid) -> np.ndarray:
    """0 = electromagnetic (e, gamma), 1 = muon, 2 = hadron."""
    absid = np.abs(np.asarray(pdgid))
    return np.where((absid == EM_PDGIDS[0]) | (absid == EM_PDGIDS[1]), 0, np.where(absid == MUON_PDGID, 1, 2))


def mean_em_fraction(energy) -> np.ndarray:
    """Groom's mean electromagnetic fraction of a hadronic shower of ``energy`` [GeV] (0 below E0)."""
    scaled = np.maximum(np.asarray(energy, dtype=float) / GROOM_E0_GEV, 1.0)
    return np.clip(1.0 - scaled ** (GROOM_M - 1.0), 0.0, 1.0)


def em_fraction_spread(energy) -> np.ndarray:
    """Shower-to-shower standard deviation of f_em at ``energy`` [GeV] (before the [0, 1] bound applies)."""
    return EM_FRACTION_SPREAD_10GEV * (np.maximum(np.asarray(energy, dtype=float), 0.1) / 10.0) ** -EM_FRACTION_SPREAD_SLOPE


def sample_em_fraction(energy, rng: np.random.Generator) -> np.ndarray:
    """One f_em per shower: Beta-distributed with Groom's mean and :func:`em_fraction_spread`.

    Where the mean is so close to 0 or 1 that the spread does not fit (variance >= mean (1 -
    mean)), the variance is capped at half that bound. One Beta draw per shower, in input order.
    """
    mean = mean_em_fraction(energy)
    bound = mean * (1.0 - mean)
    variance = np.minimum(em_fraction_spread(energy) ** 2, 0.5 * bound)
    usable = bound > 1e-9
    concentration = np.where(usable, bound / np.where(usable, variance, 1.0) - 1.0, 1.0)
    alpha = np.where(usable, mean * concentration, 1.0)
    beta = np.where(usable, (1.0 - mean) * concentration, 1.0)
    return np.where(usable, rng.beta(alpha, beta), mean)


def mean_response(pdgid, energy) -> np.ndarray:
    """Expected deposited (EM-scale) energy / true energy for a shower that starts in the calorimeter."""
    kind = particle_kind(pdgid)
    f_em = mean_em_fraction(energy)
    hadron = f_em + (1.0 - f_em) * HAD_OVER_EM
    return np.where(kind == 0, 1.0, np.where(kind == 2, hadron, np.nan))


def impact_points(particles: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, phi) of every particle at the middle of every layer, shape (n, 6), and whether it reaches the calorimeter."""
    pt, eta, phi, charge = (np.asarray(particles[k], dtype=float) for k in ("pt", "eta", "phi", "charge"))
    reaches = kinematics.reaches_radius(pt, charge, geo.CALO_FRONT_MM) & (np.abs(eta) < geo.ETA_MAX + 0.5)
    eta_l, phi_l = kinematics.calo_eta_phi_at_radius(pt[:, None], eta[:, None], phi[:, None], charge[:, None], geo.R_MID_MM[None, :])
    return eta_l, phi_l, reaches


def _spot_counts(energy) -> np.ndarray:
    return np.clip(np.ceil(np.asarray(energy) / SPOT_ENERGY_GEV), 1, MAX_SPOTS).astype(np.int64)


def _em_profile(rng, energy):
    """Per shower GFlash (alpha, beta): Gamma(alpha, 1/beta) in X0, with correlated fluctuations."""
    log_y = np.log(np.maximum(energy / CRITICAL_ENERGY_GEV, 3.0))
    mean_t = np.maximum(log_y - 0.858, 0.5)
    mean_alpha = 0.21 + (0.492 + 2.38 / Z_EFF) * log_y
    fluct_y = np.maximum(log_y, 2.5)  # keep the fluctuation formulas finite at low energy
    sigma_log_t = 1.0 / (-1.4 + 1.26 * fluct_y)
    sigma_log_alpha = 1.0 / (-0.58 + 0.86 * fluct_y)
    rho = np.clip(0.705 - 0.023 * fluct_y, -1.0, 1.0)
    z1, z2 = rng.standard_normal((2, energy.size))
    log_t = np.log(mean_t) + sigma_log_t * z1
    log_alpha = np.log(np.maximum(mean_alpha, 1.05)) + sigma_log_alpha * (rho * z1 + np.sqrt(1 - rho**2) * z2)
    t_max = np.exp(log_t)
    alpha = np.maximum(np.exp(log_alpha), 1.05)
    beta = (alpha - 1.0) / t_max
    return alpha, beta, t_max


def _mip_energy(rng, stop_lambda, cosh_eta):
    """MIP deposits (n, 6) of charged particles that traverse the calorimeter up to ``stop_lambda``."""
    edges = geo.DEPTH_LAMBDA_EDGES[None, :] * cosh_eta[:, None]  # (n, 7)
    traversed = np.clip(stop_lambda[:, None], edges[:, :-1], edges[:, 1:]) - edges[:, :-1]
    fraction = traversed / (edges[:, 1:] - edges[:, :-1])
    gauss = rng.standard_normal(fraction.shape)
    landau = np.clip(1.0 + 0.1 * (-np.log(gauss**2 + 1e-12) - 1.27), 0.5, 5.0)  # Moyal: -ln(chi2_1), mean 1.27
    return MIP_GEV_PER_LAYER[None, :] * cosh_eta[:, None] * fraction * landau


def _sampled(rng, visible, stochastic, constant):
    """Visible energy with sampling (Poisson quanta of stochastic^2 GeV) and constant-term fluctuations."""
    quantum = stochastic**2
    return rng.poisson(np.maximum(visible, 0.0) / quantum) * quantum * np.maximum(1.0 + constant * rng.standard_normal(visible.size), 0.0)


def shower_spots(particles: dict, rng: np.random.Generator, select: np.ndarray | None = None,
                 impacts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[Spots, np.ndarray]:
    """Energy spots of all ``particles`` (or those where ``select``) that reach the calorimeter.

    ``impacts`` may pass :func:`impact_points` computed beforehand. Returns the spots and the
    deposited energy per particle (sum of its spots, before the |eta| < 3 acceptance), the
    bookkeeping the tests check.
    """
    n = len(particles["e"])
    energy_all = np.asarray(particles["e"], dtype=float)
    eta_l, phi_l, reaches = impacts if impacts is not None else impact_points(particles)
    use = reaches if select is None else reaches & select
    index = np.flatnonzero(use)
    kind = particle_kind(np.asarray(particles["pdgid"])[index])
    energy = energy_all[index]
    cosh_eta = np.cosh(np.asarray(particles["eta"], dtype=float)[index])
    charged = np.asarray(particles["charge"], dtype=float)[index] != 0
    # showers: EM particles, then the EM and the hadronic part of each interacting hadron
    showers = []  # (owner, energy, start depth along the path, cosh eta, is EM)
    mips = []  # (MIP deposits (n, 6), owner)
    em = kind == 0
    if em.any():
        e_dep = _sampled(rng, energy[em], EM_STOCHASTIC, EM_CONSTANT)
        showers.append((index[em], e_dep, np.zeros(e_dep.size), cosh_eta[em], np.ones(e_dep.size, dtype=bool)))

    # hadrons: interaction depth, MIP before it, EM and hadronic parts after it
    had = kind == 2
    if had.any():
        e_had, c_had, q_had = energy[had], cosh_eta[had], charged[had]
        start = rng.exponential(1.0, e_had.size)
        total_lambda = geo.DEPTH_LAMBDA_EDGES[-1] * c_had
        interacts = start < total_lambda
        mip = _mip_energy(rng, np.where(interacts, start, np.inf), c_had) * q_had[:, None]
        f_em = sample_em_fraction(e_had, rng)
        shower = np.where(interacts, np.maximum(e_had - mip.sum(axis=1), 0.0), 0.0)
        visible = _sampled(rng, shower * (f_em + (1.0 - f_em) * HAD_OVER_EM), HAD_STOCHASTIC, HAD_CONSTANT)
        em_part = visible * f_em / (f_em + (1.0 - f_em) * HAD_OVER_EM)
        start_x0 = np.interp(start / c_had, geo.DEPTH_LAMBDA_EDGES, geo.DEPTH_X0_EDGES) * c_had
        owner = index[had]
        keep = em_part > 0
        showers.append((owner[keep], em_part[keep], start_x0[keep], c_had[keep], np.ones(int(keep.sum()), dtype=bool)))
        keep = visible - em_part > 0
        showers.append((owner[keep], (visible - em_part)[keep], start[keep], c_had[keep], np.zeros(int(keep.sum()), dtype=bool)))
        mips.append((mip, owner))

    # muons: MIP through everything
    mu = kind == 1
    if mu.any():
        mips.append((_mip_energy(rng, np.full(mu.sum(), np.inf), cosh_eta[mu]), index[mu]))

    pieces = []
    if showers:
        owner, shower_e, start, cosh, is_em = (np.concatenate(arrays) for arrays in zip(*showers))
        pieces.append(_spots_of_showers(rng, owner, shower_e, start, cosh, is_em, eta_l, phi_l))
    for mip, owner in mips:
        row, layer = np.nonzero(mip > 0)
        pieces.append((owner[row], layer, mip[row, layer], eta_l[owner[row], layer], phi_l[owner[row], layer]))
    if not pieces:
        empty = np.zeros(0)
        return Spots(empty.astype(np.int64), empty, empty, empty, empty.astype(np.int64)), np.zeros(n)
    owner, layer, spot_energy, spot_eta, spot_phi = (np.concatenate(arrays) for arrays in zip(*pieces))
    deposited = np.bincount(owner, weights=spot_energy, minlength=n)
    return Spots(layer.astype(np.int64), spot_eta, spot_phi, spot_energy, owner.astype(np.int64)), deposited


def _spots_of_showers(rng, owner, energy, start, cosh_eta, is_em, eta_l, phi_l):
    """The contained spots of showers (EM: ``start`` in X0, hadronic: in lambda along the path).

    Draws, in this order: the EM showers' profile fluctuations (2 normals each), the spots'
    energy shares (Gamma(SPOT_SHAPE)), their depths (Gamma of the shower's profile shape), three
    uniforms per spot (radius, core or tail, azimuth). The arithmetic runs in :func:`_spot_kernel`.
    """
    n_showers = energy.size
    shape = np.full(n_showers, 2.0)  # hadronic part: Gamma(2) in lambda with scale 0.4 + 0.05 ln E
    scale = 0.4 + 0.05 * np.log(np.maximum(energy, 1.0))
    t_max = np.ones(n_showers)
    if is_em.any():
        alpha, beta, t_max_em = _em_profile(rng, energy[is_em])
        shape[is_em], scale[is_em], t_max[is_em] = alpha, 1.0 / beta, t_max_em
    counts = _spot_counts(energy)
    n_spots = int(counts.sum())
    share = rng.gamma(SPOT_SHAPE, 1.0, n_spots)
    depth = rng.gamma(np.repeat(shape, counts), 1.0, n_spots)
    uniforms = rng.random((3, n_spots))
    return _spot_kernel(owner.astype(np.int64), energy, start, cosh_eta, is_em, scale, t_max, counts, share, depth,
                        uniforms, eta_l, phi_l, geo.DEPTH_X0_EDGES, geo.DEPTH_LAMBDA_EDGES, _R_MID_MM,
                        0.25 * MOLIERE_MM, MOLIERE_MM, EM_CORE_FRACTION, HAD_CORE_MM, HAD_TAIL_MM, HAD_CORE_FRACTION)


_R_MID_MM = np.asarray(geo.R_MID_MM, dtype=np.float64)


@numba.njit(cache=True)
def _spot_kernel(owner, energy, start, cosh_eta, is_em, scale, t_max, counts, share, depth_draw, uniforms, eta_l,
                 phi_l, x0_edges, lambda_edges, r_mid, em_core_mm, em_tail_mm, em_core_fraction, had_core_mm,
                 had_tail_mm, had_core_fraction):
    """Spot energies, layers and positions of all showers; spots behind the last layer are dropped.

    A shower's energy is split in proportion to its spots' Gamma shares; a spot lies at depth
    ``start + scale * draw`` (its layer from the depth at eta = 0, ``depth / cosh eta``); EM spots
    spread wider with depth (``1 + 0.5 clip(depth / t_max, 0, 4)``); lateral offsets follow
    ``f(r) ~ 2 r R^2 / (r^2 + R^2)^2`` with the core or tail radius R, at a uniform azimuth, and
    move the spot by ``offset / r_layer`` in eta and phi (projective cells).
    """
    n_spots = share.size
    n_layers = r_mid.size
    out_owner = np.empty(n_spots, dtype=np.int64)
    out_layer = np.empty(n_spots, dtype=np.int64)
    out_energy = np.empty(n_spots)
    out_eta = np.empty(n_spots)
    out_phi = np.empty(n_spots)
    kept = 0
    first = 0
    for s in range(energy.size):
        total = 0.0
        for k in range(first, first + counts[s]):
            total += share[k]
        edges = x0_edges if is_em[s] else lambda_edges
        core_mm, tail_mm, core_fraction = (em_core_mm, em_tail_mm, em_core_fraction) if is_em[s] \
            else (had_core_mm, had_tail_mm, had_core_fraction)
        p = owner[s]
        for k in range(first, first + counts[s]):
            travelled = scale[s] * depth_draw[k]
            radial_depth = (start[s] + travelled) / cosh_eta[s]
            layer = 0
            while layer < n_layers and radial_depth >= edges[layer + 1]:
                layer += 1
            if layer >= n_layers:  # longitudinal leakage is lost
                continue
            widen = 1.0 + 0.5 * min(max(travelled / t_max[s], 0.0), 4.0) if is_em[s] else 1.0
            u = 0.995 * uniforms[0, k]
            radius = (core_mm if uniforms[1, k] < core_fraction else tail_mm) * np.sqrt(u / (1.0 - u)) * widen
            angle = 2 * np.pi * uniforms[2, k]
            phi = phi_l[p, layer] + radius * np.sin(angle) / r_mid[layer]
            out_owner[kept] = p
            out_layer[kept] = layer
            out_energy[kept] = energy[s] * share[k] / total
            out_eta[kept] = eta_l[p, layer] + radius * np.cos(angle) / r_mid[layer]
            out_phi[kept] = phi - 2 * np.pi * np.floor((phi + np.pi) / (2 * np.pi))
            if out_phi[kept] <= -np.pi:  # (-pi, pi], as wrap_phi
                out_phi[kept] += 2 * np.pi
            kept += 1
        first += counts[s]
    return out_owner[:kept], out_layer[:kept], out_energy[:kept], out_eta[:kept], out_phi[:kept]
