"""Event generation: pythia8mc events per shard, and the truth each replica of an event sees.

One Pythia instance generates one *shard* of events (:func:`generate_shard`); its seed comes from
``replicas.pythia_seed(base_seed, shard)``, its pT-hat slice and subprocess set from
:func:`shard_settings`, so a shard's events depend on (config, base seed, shard) only, whatever
the worker, process or machine that makes them. Event ids are ``shard * events_per_shard + i``.

Processes, 14 TeV by default, MPI on: ``qg`` Z(->nu nu) + jet (``qqbar -> Z g``
gives gluon jets, ``q g -> Z q`` quark jets; ``generator.subprocesses`` picks them per shard),
``top`` t tbar with hadronic W decays, ``qcd`` ``HardQCD:all``. Truth jets, selection and labels:
:mod:`detector_sim.truth`.

What the replicas of an event share (:func:`generate_replicas`, ``replicas.mode``):

- ``detector``: everything; replicas differ by the detector's random draws only.
- ``hadronization``: the hard process and the parton shower; each replica hadronises the
  parton-level event again with its own seed (:mod:`detector_sim.hadronization`, arXiv:2503.11632).
- ``particle-augmented``: the event, with each replica's jet particles augmented before the
  detector (:mod:`detector_sim.augment`).

Everything here is silent: Pythia and FastJet banners and listings are switched off.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pythia8mc

from detector_sim.augment import augment_event
from detector_sim.config import PROCESSES, ConfigError, SimConfig, subprocess_sets, validate
from detector_sim.replicas import augmentation_generator, pythia_seed
from detector_sim.truth import (  # noqa: F401  (re-exported: the names tests and benchmarks know)
    NEUTRINO_PDGIDS, PARTICLE_ABS_ETA_MAX, TruthEvent, build_truth_event, charge_table, cluster_antikt,
    cluster_antikt_many, final_state, hard_partons, jet_definition, kinematic_candidates, label_jets, match_closest,
    momenta_of, pt_eta_phi, visible,
)

#: ``pythia.next()`` failures in a row after which generation is given up (Pythia fails rarely,
#: ~1e-4 per event; a long run of failures means broken settings, not bad luck)
MAX_CONSECUTIVE_FAILURES = 100
#: events whose truth jets are clustered in one FastJet call
CHUNK_EVENTS = 50
#: Pythia's Random:seed range
_PYTHIA_SEED_RANGE = (1, 900_000_000)

#: Pythia decay settings of each process (the subprocess switches come from the config)
PROCESS_DECAYS: dict[str, tuple[str, ...]] = {
    "qg": (
        "WeakZ0:gmZmode = 2",  # pure Z, no photon: the boson must be invisible
        "23:onMode = off",
        "23:onIfAny = 12 14 16",  # Z -> nu nu only, so the jet recoils against nothing visible
    ),
    "top": (
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",  # hadronic W decays: fully hadronic top jets
    ),
    "qcd": (),
}


def shard_settings(config: SimConfig, shard: int) -> tuple[float, float, list[str]]:
    """(pT-hat min, pT-hat max, subprocess switches) of shard ``shard``: slice ``shard % n_slices``,
    subprocess set ``(shard // n_slices) % n_sets``, so that every combination recurs."""
    slices, sets = config.generator.pthat_slices, subprocess_sets(config)
    pthat_min, pthat_max = slices[shard % len(slices)]
    return float(pthat_min), float(pthat_max), list(sets[(shard // len(slices)) % len(sets)])


def make_pythia(config: SimConfig, pthat_min: float, pthat_max: float, seed: int, subprocesses: list[str] | None = None,
                hadron_level: bool = True) -> pythia8mc.Pythia:
    """A silent, initialised Pythia for ``config.process`` in one pT-hat slice.

    Settings are applied in this order: tune, beams, subprocesses and decays, pT-hat slice, MPI,
    hadron level, seed, then ``config.generator.extra`` (last, so that it can override anything).

    Args:
        config: the simulation config (``process`` and ``generator`` are used).
        pthat_min, pthat_max: the hard process's pT-hat range [GeV], ``0 <= min < max``.
        seed: Pythia's ``Random:seed``, 1 ... 900,000,000 (see ``replicas.pythia_seed``).
        subprocesses: the subprocess switches to turn on (default: the first set of the config).
        hadron_level: False stops each event before hadronisation (``HadronLevel:all = off``).

    Raises:
        ConfigError: unknown process, bad pT-hat range, or a setting Pythia does not accept.
        ValueError: seed out of range.
        RuntimeError: Pythia's initialisation fails.
    """
    if config.process not in PROCESS_DECAYS:
        raise ConfigError(f"config.process: unknown process {config.process!r}; choose one of {', '.join(PROCESSES)}")
    if not 0 <= pthat_min < pthat_max:
        raise ConfigError(f"pT-hat slice must satisfy 0 <= min < max, not [{pthat_min}, {pthat_max}]")
    low, high = _PYTHIA_SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not low <= seed <= high:
        raise ValueError(f"seed must be an integer in [{low}, {high}], not {seed!r}")
    generator = config.generator
    settings = [
        # silence first: banner (constructor argument), init listings, event counter, error echo
        "Print:quiet = on",
        "Next:numberCount = 0",
        f"Tune:pp = {generator.tune_pp}",  # before anything a tune could reset
        f"Beams:eCM = {generator.ecm_gev:.6f}",
        *(f"{name} = on" for name in (subprocesses if subprocesses is not None else subprocess_sets(config)[0])),
        *PROCESS_DECAYS[config.process],
        f"PhaseSpace:pTHatMin = {pthat_min:.6f}",
        f"PhaseSpace:pTHatMax = {pthat_max:.6f}",
        f"PartonLevel:MPI = {'on' if generator.mpi else 'off'}",
        f"HadronLevel:all = {'on' if hadron_level else 'off'}",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
    ]
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line, False):
            raise RuntimeError(f"Pythia rejected its own setting {line!r}; is pythia8mc too old/new?")
    for i, line in enumerate(generator.extra):
        if not pythia.readString(line, False):
            raise ConfigError(f"config.generator.extra[{i}]: Pythia does not accept {line!r}; "
                              "check the setting name (e.g. 'PartonLevel:ISR = off')")
    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for process {config.process!r} with "
                           f"pT-hat [{pthat_min}, {pthat_max}] and extra settings {generator.extra}")
    return pythia


def check_shard_request(config: SimConfig, base_seed: int, shard: int, n_events: int) -> int:
    """Validate a shard request; return its Pythia seed."""
    validate(config)
    per_shard = config.sharding.events_per_shard
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or not 0 <= n_events <= per_shard:
        raise ValueError(f"n_events must be an integer in [0, events_per_shard={per_shard}], not {n_events!r}")
    return pythia_seed(base_seed, shard)  # checks base_seed and shard


def next_event(pythia: pythia8mc.Pythia, config: SimConfig, shard: int) -> None:
    """``pythia.next()`` until it succeeds; failures consume no event id."""
    failures = 0
    while not pythia.next():
        failures += 1
        if failures >= MAX_CONSECUTIVE_FAILURES:
            pthat_min, pthat_max, _ = shard_settings(config, shard)
            raise RuntimeError(f"pythia.next() failed {failures} times in a row in shard {shard} "
                               f"(process {config.process!r}, pT-hat [{pthat_min}, {pthat_max}])")


def generate_shard(config: SimConfig, base_seed: int, shard: int, n_events: int) -> Iterator[TruthEvent]:
    """Generate the first ``n_events`` events of shard ``shard``, one ``TruthEvent`` each.

    Every generated event is yielded, also those without a selected jet (empty ``jets`` arrays
    and ``constituents``), so that the caller can count the selection efficiency. Failed
    ``pythia.next()`` calls are retried and consume no event id.

    Raises:
        ConfigError: ``config`` fails ``config.validate``.
        ValueError: negative ``shard`` / ``base_seed``, or ``n_events`` outside
            [0, config.sharding.events_per_shard] (more would reuse the next shard's event ids).
        RuntimeError: Pythia fails ``MAX_CONSECUTIVE_FAILURES`` times in a row.
    """
    seed = check_shard_request(config, base_seed, shard, n_events)
    pthat_min, pthat_max, subprocesses = shard_settings(config, shard)
    pythia = make_pythia(config, pthat_min, pthat_max, seed, subprocesses)
    definition = jet_definition(config.jets.radius)
    charges: dict[int, float] = {}
    chunk = []
    for i in range(n_events):
        next_event(pythia, config, shard)
        final = visible(final_state(pythia.event))
        charge_table(pythia.particleData, final, charges)
        chunk.append((shard * config.sharding.events_per_shard + i, final, hard_partons(config.process, pythia.event)))
        if len(chunk) == CHUNK_EVENTS or i == n_events - 1:
            yield from _truth_events(chunk, config, definition, charges)
            chunk = []


def _truth_events(chunk, config: SimConfig, definition, charges) -> Iterator[TruthEvent]:
    """Truth events of a chunk of (event id, visible final state, hard partons), clustered in one call."""
    clustered = cluster_antikt_many([momenta_of(final) for _, final, _ in chunk], definition, config.jets.pt_min_gev)
    for (event_id, final, partons), (jets, constituents) in zip(chunk, clustered):
        candidates = kinematic_candidates(jets, config.jets)
        _, jet_eta, jet_phi = pt_eta_phi(*jets[candidates, :3].T)
        keep, label, parton_pdgid = label_jets(config.process, partons, jet_eta, jet_phi, config.jets.match_dr)
        yield build_truth_event(event_id, final, charges, jets, constituents, candidates[keep], label, parton_pdgid)


def generate_replicas(config: SimConfig, base_seed: int, shard: int, n_events: int,
                      n_replicas: int) -> Iterator[list[TruthEvent]]:
    """The truth of each of ``n_replicas`` replicas of every event of a shard (``replicas.mode``).

    Yields one list of ``n_replicas`` TruthEvents per generated event, whose selected jets
    correspond one to one (same order, labels and ``jet_index``). ``detector`` mode repeats one
    object; the other modes give each replica its own particles and truth jets.
    """
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, (int, np.integer)) or n_replicas < 1:
        raise ValueError(f"n_replicas must be a positive integer, not {n_replicas!r}")
    mode = config.replicas.mode
    if mode == "hadronization":
        from detector_sim.hadronization import generate_hadronization_replicas

        yield from generate_hadronization_replicas(config, base_seed, shard, n_events, n_replicas)
        return
    for event in generate_shard(config, base_seed, shard, n_events):
        if mode == "particle-augmented" and event.constituents:
            yield [augment_event(event, augmentation_generator(base_seed, event.event_id, r), config)
                   for r in range(n_replicas)]
        else:
            yield [event] * n_replicas
