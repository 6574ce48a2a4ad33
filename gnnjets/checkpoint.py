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

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from gnnjets import __version__
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.outputs import atomic_output
from gnnjets.graphs.config import GraphConfig
from gnnjets.io.schema import SCHEMA_VERSION
from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import ModelConfig

FORMAT = "gnnjets-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(GnnjetsError, ValueError):
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
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.is_dir() else
                              f"checkpoint {path} is a folder; give the .pt file in it (e.g. {path / 'last.pt'})")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip and torch errors come in many types
        raise CheckpointError(f"{path} is not a gnnjets checkpoint: {_why_unloadable(path, err)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gnnjets checkpoint (no 'format: {FORMAT}' field)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {payload.get('format_version')}, this gnnjets "
                              f"({__version__}) reads format {FORMAT_VERSION}")
    if payload.get("schema_version") != SCHEMA_VERSION:
        raise CheckpointError(f"{path} was trained on ROOT schema version {payload.get('schema_version')}, "
                              f"this gnnjets reads schema version {SCHEMA_VERSION}")
    return payload


def _why_unloadable(path: Path, error: BaseException) -> str:
    """One line on why ``torch.load(weights_only=True)`` refused a file, without torch's advice to
    retry with ``weights_only=False`` (that option runs whatever code the file holds)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == b"root":
        return "it is a ROOT file (a checkpoint is the .pt file a training writes; check the order of the arguments)"
    if head[:2] != b"PK" and head[:1] != b"\x80":
        return "it is not a PyTorch file at all (a text file, or another format)"
    if "Weights only load failed" in str(error):
        return ("it holds Python objects besides tensors and plain data, which gnnjets never loads (loading them "
                "could run code); it was not written by gnnjets")
    if head[:2] == b"PK" and ("zip" in str(error) or "central directory" in str(error)):
        return "the file is truncated or damaged (an interrupted copy?); copy it again or re-run the training"
    return f"torch cannot read it ({type(error).__name__}: {' '.join(str(error).split())[:120]})"


def training_state(model, optimizer, scheduler, **extra) -> dict:
    """What a resumable training saves: weights, optimiser and scheduler states, the torch RNG, ``extra``."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()}, **extra}


def restore_training_state(payload: dict, model, optimizer, scheduler) -> None:
    """Put a :func:`training_state` back: weights, optimiser, scheduler and the torch RNG."""
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["rng"]["torch"])


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


def file_hash(path: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of a file: names a checkpoint in caches and records."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass
class LoadedBackbone:
    """A trained backbone restored from a checkpoint, with what it was trained with."""

    backbone: Backbone  # weights loaded, on the CPU, in train mode as built
    graph_config: GraphConfig  # graph building and feature scaling the backbone expects
    model_config: ModelConfig
    path: Path
    sha256_16: str  # file_hash of the checkpoint
    step: int | None  # pretraining step (None for checkpoints that do not record one)
    schema_version: int  # ROOT schema version of the training files
    config: dict  # the whole resolved config stored in the checkpoint


def load_backbone(path: str | Path) -> LoadedBackbone:
    """The backbone of a gnnjets checkpoint (pretraining or downstream), nothing else needed.

    Only the ``backbone.*`` weights are used, so pretraining checkpoints (backbone + projector)
    and downstream ones (backbone + head) both work. Raises :class:`CheckpointError` when the file
    is no gnnjets checkpoint, has another format or schema version, or lacks the graph config, the
    model config or backbone weights that fit it.
    """
    path = Path(path)
    payload = load_checkpoint(path)  # weights_only=True; checks format and schema version
    config = payload.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} stores no config (the graph and model settings); a backbone needs "
                              f"a checkpoint written by gnnjets-pretrain or a downstream trainer")
    for section, what in (("graph", "graph building and feature scaling"), ("model", "network sizes")):
        if not isinstance(config.get(section), dict):
            raise CheckpointError(f"{path} stores no config.{section} ({what}); its config has sections "
                                  f"{', '.join(sorted(config)) or 'none'}. Re-save it with the resolved config")
    try:
        graph_config = GraphConfig.from_dict(config["graph"])
    except (TypeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: config.graph is not a valid graph config for gnnjets {__version__}: "
                              f"{err}") from None
    try:
        model_config = ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: config.model is not a valid model config for gnnjets {__version__}: "
                              f"{err}") from None
    backbone = Backbone(model_config.backbone)
    backbone.load_state_dict(_backbone_weights(path, payload.get("model"), backbone))
    return LoadedBackbone(backbone, graph_config, model_config, path, file_hash(path), payload.get("step"),
                          payload["schema_version"], config)


def _backbone_weights(path: Path, state, backbone: Backbone) -> dict:
    """The ``backbone.*`` tensors of a checkpoint's state dict, prefix removed, checked against ``backbone``."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} stores no model weights ('model' must be a state dict, not "
                              f"{type(state).__name__})")
    prefix = "backbone."
    weights = {key[len(prefix):]: value for key, value in state.items()
               if isinstance(key, str) and key.startswith(prefix)}
    if not weights:
        shown = ", ".join(sorted({str(key).split(".")[0] for key in state})) or "none"
        raise CheckpointError(f"{path} holds no backbone weights (keys 'backbone.*'); its weights belong to: {shown}")
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong_shape = sorted(key for key in set(expected) & set(weights)
                         if not isinstance(weights[key], torch.Tensor) or weights[key].shape != expected[key].shape)
    if missing or unexpected or wrong_shape:
        problems = [f"{what}: {', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}"
                    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
                    if keys]
        raise CheckpointError(f"{path}: the backbone weights do not fit config.model.backbone ("
                              + "; ".join(problems) + "); the checkpoint's config and weights disagree")
    return weights
