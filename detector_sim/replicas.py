"""Seed handling: independent random streams per (base seed, event, replica) and per shard.

Every random draw of the simulation comes from a ``numpy.random.Generator`` or a Pythia seed
made here; nothing uses a global random state. ``numpy.random.SeedSequence`` with a spawn key
gives streams that are independent for different keys and identical for equal keys, whatever the
process or the order in which they are made: that is what makes ``--workers``, ``--shard`` and
the Dask backend irrelevant to the output.

The first spawn-key element names the role of a stream, so that streams of different roles never
collide:

====  ===============================  ==========================================================
key   stream                           drawn for
====  ===============================  ==========================================================
0     (event, replica)                 the detector: showers, noise, tracks
1     (shard,)                         the Pythia seed of the shard's hard events
2     (event, replica)                 the Pythia seed re-hadronising the event (``hadronization``)
3     (event, replica)                 the particle-level augmentations (``particle-augmented``)
4     (event, replica)                 which pile-up events are overlaid
5     (shard,)                         the Pythia seed of the shard's minimum-bias pool
====  ===============================  ==========================================================
"""

from __future__ import annotations

import numpy as np

_DETECTOR_STREAM = 0
_GENERATOR_STREAM = 1
_HADRONIZATION_STREAM = 2
_AUGMENTATION_STREAM = 3
_PILEUP_STREAM = 4
_PILEUP_POOL_STREAM = 5
#: Pythia's Random:seed accepts 1 ... 900,000,000
_PYTHIA_SEED_MAX = 900_000_000


def _check_seed(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def _sequence(base_seed: int, stream: int, *key: tuple[str, int]) -> np.random.SeedSequence:
    spawn_key = (stream, *(_check_seed(name, value) for name, value in key))
    return np.random.SeedSequence(_check_seed("base_seed", base_seed), spawn_key=spawn_key)


def _generator(sequence: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(sequence))


def _pythia_seed(sequence: np.random.SeedSequence) -> int:
    return 1 + int(sequence.generate_state(1, dtype=np.uint64)[0] % (_PYTHIA_SEED_MAX - 1))


def replica_generator(base_seed: int, event_id: int, replica: int) -> np.random.Generator:
    """The generator of all detector draws for one replica of one event."""
    return _generator(_sequence(base_seed, _DETECTOR_STREAM, ("event_id", event_id), ("replica", replica)))


def augmentation_generator(base_seed: int, event_id: int, replica: int) -> np.random.Generator:
    """The generator of the particle-level augmentations of one replica (``particle-augmented`` mode)."""
    return _generator(_sequence(base_seed, _AUGMENTATION_STREAM, ("event_id", event_id), ("replica", replica)))


def pileup_generator(base_seed: int, event_id: int, replica: int) -> np.random.Generator:
    """The generator choosing the pile-up overlaid on one replica."""
    return _generator(_sequence(base_seed, _PILEUP_STREAM, ("event_id", event_id), ("replica", replica)))


def pythia_seed(base_seed: int, shard: int) -> int:
    """Pythia's integer seed for one shard of events (1 ... 900,000,000)."""
    return _pythia_seed(_sequence(base_seed, _GENERATOR_STREAM, ("shard", shard)))


def hadronization_seed(base_seed: int, event_id: int, replica: int, attempt: int = 0) -> int:
    """Pythia's seed for hadronising replica ``replica`` of event ``event_id`` (1 ... 900,000,000).

    ``attempt`` > 0 gives the seeds of the retries after a failed hadronisation.
    """
    key = [("event_id", event_id), ("replica", replica)] + ([("attempt", attempt)] if attempt else [])
    return _pythia_seed(_sequence(base_seed, _HADRONIZATION_STREAM, *key))


def pileup_pool_seed(base_seed: int, shard: int) -> int:
    """Pythia's seed for the minimum-bias pool of one shard (1 ... 900,000,000)."""
    return _pythia_seed(_sequence(base_seed, _PILEUP_POOL_STREAM, ("shard", shard)))
