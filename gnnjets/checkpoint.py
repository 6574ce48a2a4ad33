"""Checkpoints that describe themselves, written atomically, loaded without running code.

A checkpoint is a dict of tensors and plain data only (numbers, strings, lists, dicts), so it loads
with ``torch.load(..., weights_only=True)``: a checkpoint shared by a colleague cannot execute code
on the reader's machine. It holds:

- ``format``/``format_version``, ``gnnjets_version``, ``schema_version`` (of the ROOT contract);
- ``config``: the resolved pretraining config (data, graph incl. feature scaling, augment, model,
  loss, optim, train) — everything :class:`gnnjets.Embedder` and ``--resume`` need;
- ``model``: the weights; ``optimizer``/``scheduler``: their states; ``step``; ``data_position``
  (epoch and batches consumed in it); ``rng``: the torch RNG state.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gnnjets import __version__
from gnnjets.base.outputs import atomic_output
from gnnjets.io.schema import SCHEMA_VERSION

FORMAT = "gnnjets-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message says why and what to do."""


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (plus format and version fields) to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "gnnjets_version": __version__,
               "schema_version": SCHEMA_VERSION, **payload}
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) and check that it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors come in many types
        raise CheckpointError(f"{path} is not a loadable gnnjets checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gnnjets checkpoint (no 'format: {FORMAT}' field)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload.get('format_version')}, this gnnjets "
                              f"({__version__}) reads format {FORMAT_VERSION}")
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointError(f"{path} was trained on ROOT schema version {payload.get('schema_version')}, "
                              f"this gnnjets reads schema version {SCHEMA_VERSION}")
    return payload


def config_differences(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<missing>"), current.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, now {b!r}")
    return out
