"""Arrays computed once and kept on disk: frozen embeddings and baseline features of a set of jets.

A key is a JSON-able description of everything the array depends on (checkpoint hash, files with
their sizes and modification times, settings); its hash names the file, so a changed input gives a
new entry and a rerun reuses what is still valid.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from gnnjets.base.outputs import atomic_output
from gnnjets.data import JetSet, align_rows, files_signature
from gnnjets.tasks.config import DownstreamConfig


class ArrayCache:
    """Arrays on disk keyed by a description; ``get(key, make)`` computes and stores what is missing."""

    def __init__(self, folder: str | None):
        self.folder = Path(folder) if folder else None

    def get(self, key: dict, make) -> np.ndarray:
        if self.folder is None:
            return make()
        name = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
        path = self.folder / f"{key.get('kind', 'array')}-{name}.npy"
        if path.exists():
            return np.load(path)
        array = make()
        with atomic_output(path, keep_suffix=True) as tmp:
            np.save(tmp, array)
        return array


def file_features(cache: ArrayCache, kind: str, jets: JetSet, settings: dict, config: DownstreamConfig, compute) -> np.ndarray:
    """Per-jet features computed from the files of ``jets`` (cached per file set), in the rows of ``jets``."""
    key = {"kind": kind, "files": files_signature(jets.files), "settings": settings, "replica": config.data.replica}
    packed = cache.get(key, lambda: _pack(*compute(list(jets.files))))
    values, ids = packed[:, 2:], {"file_index": packed[:, 0].astype(np.int64), "entry": packed[:, 1].astype(np.int64)}
    return values[align_rows(jets, ids)]


def _pack(values: np.ndarray, ids: dict) -> np.ndarray:
    """Features and their (file_index, entry) in one float64 array, for the cache."""
    values = np.asarray(values, dtype=np.float64).reshape(len(ids["entry"]), -1)
    return np.column_stack([ids["file_index"], ids["entry"], values])
