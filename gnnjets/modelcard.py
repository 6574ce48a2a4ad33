"""A model card inside every checkpoint: what made the weights, so a shared file explains itself.

``model_card(config, training_files)`` records the package versions (gnnjets, torch, PyG, numpy,
awkward, uproot, Python), the code version (the git commit of a gnnjets clone, with ``-dirty``
when it has uncommitted changes; ``None`` for an installed package), the training files with
their content signatures, and the resolved config. Pretraining and downstream checkpoints carry
it under ``"model_card"``; ``gnnjets-embed --info CKPT`` prints it (:func:`describe`).

A content signature (:func:`content_signature`) is the SHA-256 of a file's size, first and last
MiB: cheap for files of many GB, and it changes when a file is rewritten with other content
(unlike a modification time, it survives a copy).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from gnnjets import __version__
from gnnjets.io.paths import is_remote, split_object_path

PACKAGES = ("torch", "torch_geometric", "numpy", "awkward", "uproot")
_BLOCK = 1 << 20


def package_versions() -> dict:
    """Versions of gnnjets, its main dependencies and Python (``None`` for a package not installed)."""
    versions = {"gnnjets": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the gnnjets clone this code runs from (``<sha>-dirty`` with local changes), else ``None``."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None  # an installed package, not a clone
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def content_signature(path: str | Path) -> str | None:
    """The first 16 hex digits of SHA-256(size, first MiB, last MiB) of a local file; ``None`` for a URL."""
    local = split_object_path(str(path))[0]
    if is_remote(local):
        return None
    digest = hashlib.sha256()
    with open(local, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        digest.update(str(size).encode())
        handle.seek(0)
        digest.update(handle.read(_BLOCK))
        if size > _BLOCK:
            handle.seek(max(size - _BLOCK, _BLOCK))
            digest.update(handle.read(_BLOCK))
    return digest.hexdigest()[:16]


def model_card(config: dict, training_files, *, kind: str) -> dict:
    """The card of a model trained on ``training_files`` with ``config`` (plain data, for a checkpoint).

    Args:
        kind: what made it, e.g. ``"pretraining"`` or ``"downstream qg"``.
    """
    files = [str(f) for f in training_files]
    return {"kind": kind, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": package_versions(), "git_commit": git_commit(),
            "training_files": [{"path": f, "signature": content_signature(f)} for f in files],
            "config": config}


def describe(payload: dict, path: str | Path, signature: str) -> str:
    """A checkpoint's card as text (what ``gnnjets-embed --info`` prints)."""
    card = payload.get("model_card") or {}
    config = payload.get("config") or {}
    backbone = (config.get("model") or {}).get("backbone") or {}
    lines = [f"checkpoint   {path} (signature {signature})",
             f"made by      {card.get('kind', 'unknown (no model card: written before gnnjets recorded one)')}"
             + (f", {card['created']}" if card.get("created") else ""),
             f"format       {payload.get('format')} v{payload.get('format_version')}, gnnjets "
             f"{payload.get('gnnjets_version')}, ROOT schema {payload.get('schema_version')}",
             f"step         {payload.get('step')}"]
    if backbone:
        lines.append("backbone     " + ", ".join(f"{k}={v}" for k, v in backbone.items() if not isinstance(v, dict)))
    if card.get("versions"):
        lines.append("versions     " + ", ".join(f"{k} {v}" for k, v in card["versions"].items()))
    lines.append(f"code         git {card.get('git_commit') or 'unknown (installed package)'}")
    for item in card.get("training_files", []):
        lines.append(f"trained on   {item['path']} (signature {item.get('signature')})")
    return "\n".join(lines)
