"""Seed handling: one independent random stream per (base seed, event, replica), and per shard.

Every random draw of the simulation comes from a ``numpy.random.Generator`` made here; nothing
uses a global random state. ``numpy.random.SeedSequence`` with a spawn key gives streams that are
independent for different keys and identical for equal keys, whatever the process or the order
in which they are made: that is what makes ``--workers`` irrelevant to the output.
"""

from __future__ import annotations

import numpy as np

# first spawn-key element: which kind of stream, so that streams of different roles never collide
_DETECTOR_STREAM = 0
_GENERATOR_STREAM = 1
#: Pythia's Random:seed accepts 1 ... 900,000,000
_PYTHIA_SEED_MAX = 900_000_000


def _check_seed(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return int(value)


def replica_generator(base_seed: int, event_id: int, replica: int) -> np.random.Generator:
    """The generator of all detector draws for one replica of one event."""
    key = (_DETECTOR_STREAM, _check_seed("event_id", event_id), _check_seed("replica", replica))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_check_seed("base_seed", base_seed), spawn_key=key)))


def pythia_seed(base_seed: int, shard: int) -> int:
    """Pythia's integer seed for one shard of events (1 ... 900,000,000)."""
    sequence = np.random.SeedSequence(_check_seed("base_seed", base_seed), spawn_key=(_GENERATOR_STREAM, _check_seed("shard", shard)))
    return 1 + int(sequence.generate_state(1, dtype=np.uint64)[0] % (_PYTHIA_SEED_MAX - 1))
