"""In-time pile-up: minimum-bias interactions overlaid on each replica before the detector (off by default).

At the LHC every bunch crossing holds ~``mu`` further proton-proton interactions besides the hard
one. With ``pileup.mu > 0`` each shard generates a pool of ``pileup.pool_events`` minimum-bias
events (Pythia ``SoftQCD:nonDiffractive`` with the config's tune and energy, MPI always on as
minimum bias needs it; seed ``replicas.pileup_pool_seed(seed, shard)``). Diffractive
interactions, about a third of the inelastic cross section, put little energy into |eta| < 3 and
are left out (their initialisation alone takes ~10 s), so ``mu`` counts non-diffractive
interactions: ~0.7 of the inelastic mu the LHC quotes. Pythia's initialisation is done once per
process with a fixed seed and reused, re-seeded per shard, so that the pool depends on (seed,
shard) alone, in whichever process it is made. Every replica of every
event draws, from its own generator ``replicas.pileup_generator(seed, event, replica)``, a
Poisson number ``n ~ Poisson(mu)`` of pool events (uniformly, with replacement) whose visible
particles are added to the event's before showers, noise, clustering and tracking. So the two
replicas of a jet see independent pile-up, as two crossings would.

In time only: the overlaid interactions belong to the same bunch crossing (no out-of-time signal
shapes). Each overlaid interaction gets its own vertex, displaced along the beam by
``N(0, vertex_sigma_z_mm)``, which moves its tracks' z0; the calorimeter impact points are
computed from the nominal vertex (a displacement of 45 mm changes a shower's eta at the
calorimeter by at most ~0.03). Pile-up particles are never truth-jet constituents: truth jets
stay those of the hard event, as in the experiments' particle-level definition.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pythia8mc

from detector_sim import calorimeter
from detector_sim.config import SimConfig
from detector_sim.replicas import pileup_pool_seed
from detector_sim.truth import COL, charge_table, final_state, pt_eta_phi, visible

_MINIMUM_BIAS = ("SoftQCD:nonDiffractive = on",)
#: the seed of the one-off initialisation (its tables must not depend on the shard that comes first)
_INIT_SEED = 1
_CACHE = threading.local()


@dataclass
class PileupPool:
    """The minimum-bias events of one shard, each as a particles dict with its calorimeter impacts."""

    particles: list[dict[str, np.ndarray]]
    impacts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per event: eta (n, 6), phi (n, 6), reaches (n,)


def _minimum_bias_pythia(config: SimConfig) -> pythia8mc.Pythia:
    """An initialised minimum-bias Pythia for the config's tune and energy, one per thread and setting."""
    generator = config.generator
    key = (generator.tune_pp, generator.ecm_gev)
    cache = _CACHE.__dict__.setdefault("pythia", {})
    if key not in cache:
        pythia = pythia8mc.Pythia("", False)
        settings = ["Print:quiet = on", "Next:numberCount = 0", f"Tune:pp = {generator.tune_pp}",
                    f"Beams:eCM = {generator.ecm_gev:.6f}", *_MINIMUM_BIAS, "PartonLevel:MPI = on",
                    "Random:setSeed = on", f"Random:seed = {_INIT_SEED}"]
        for line in settings:
            if not pythia.readString(line, False):
                raise RuntimeError(f"Pythia rejected its own setting {line!r}; is pythia8mc too old/new?")
        if not pythia.init():
            raise RuntimeError("Pythia initialisation failed for the minimum-bias pile-up pool")
        cache[key] = pythia
    return cache[key]


def make_pool(config: SimConfig, base_seed: int, shard: int) -> PileupPool | None:
    """The shard's minimum-bias pool, or None when pile-up is off (``pileup.mu == 0``)."""
    if config.pileup.mu <= 0:
        return None
    pythia = _minimum_bias_pythia(config)
    pythia.rndm.init(pileup_pool_seed(base_seed, shard))
    charges: dict[int, float] = {}
    particles, impacts = [], []
    while len(particles) < config.pileup.pool_events:
        if not pythia.next():
            continue
        final = visible(final_state(pythia.event))
        charge_table(pythia.particleData, final, charges)
        pt, eta, phi = pt_eta_phi(final[:, COL["px"]], final[:, COL["py"]], final[:, COL["pz"]])
        keep = np.abs(eta) < 4.0  # the calorimeter ends at |eta| = 3
        pdgid = final[keep, COL["pdgid"]].astype(np.int64)
        event = {"pt": pt[keep], "eta": eta[keep], "phi": phi[keep], "e": final[keep, COL["e"]],
                 "m": final[keep, COL["m"]], "pdgid": pdgid.astype(np.int32),
                 "charge": np.array([charges[int(i)] for i in pdgid], dtype=np.float64),
                 "vx": final[keep, COL["vx"]], "vy": final[keep, COL["vy"]], "vz": final[keep, COL["vz"]]}
        particles.append(event)
        impacts.append(calorimeter.impact_points(event))
    return PileupPool(particles, impacts)


def overlay(pool: PileupPool, mu: float, vertex_sigma_z_mm: float, rng: np.random.Generator):
    """The pile-up of one replica: (particles dict, impacts) of ``Poisson(mu)`` pool events, or None if none.

    Draws, in this order: the number of interactions, the pool events, their vertex z offsets.
    """
    n = int(rng.poisson(mu))
    if n == 0:
        return None
    chosen = rng.integers(0, len(pool.particles), n)
    z_offset = rng.normal(0.0, vertex_sigma_z_mm, n)
    events = [pool.particles[k] for k in chosen]
    particles = {key: np.concatenate([event[key] for event in events]) for key in events[0]}
    particles["vz"] = particles["vz"] + np.repeat(z_offset, [len(event["pt"]) for event in events])
    impacts = tuple(np.concatenate([pool.impacts[k][i] for k in chosen]) for i in range(3))
    return particles, impacts
