"""Labelled jets held in memory for downstream training: graphs built once, batched by index.

A :class:`JetSet` is one replica of every (non-empty) jet of some files, as flat
:class:`~gnnjets.graphs.GraphChunk` s plus per-jet attributes (``label``, ``truth_e``, ``jet_e``,
``file_index``, ``entry``, ...). Training a head for several epochs, or for several label counts,
then costs no further reading or graph building: a batch is an index gather
(:func:`~gnnjets.graphs.gather_batch`). Subsets (:meth:`JetSet.subset`) share the graphs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from gnnjets.data.jets import JetDataset
from gnnjets.graphs import GraphChunk, GraphConfig, gather_batch
from gnnjets.io.paths import is_remote, split_object_path

if TYPE_CHECKING:  # imported through gnnjets.graphs, which silences torch_geometric's import warnings
    from torch_geometric.data import Batch

#: per-jet attributes a JetSet keeps (from the graphs' per-graph attributes; jet_features is (n, J))
ATTRS = ("file_index", "entry", "event_id", "jet_index", "label", "truth_e", "truth_pt", "jet_e", "jet_pt", "jet_eta",
         "jet_features")


@dataclass
class JetSet:
    """Jets of ``files`` (one replica each) in memory; row ``i`` is graph ``row[i]`` of ``chunks[chunk[i]]``."""

    files: tuple[str, ...]
    chunks: list[GraphChunk]
    chunk: np.ndarray  # (n,) int64
    row: np.ndarray  # (n,) int64
    attrs: dict  # name -> (n,) numpy array
    skipped: int = 0  # jets without cells and tracks left out at loading

    @classmethod
    def load(cls, paths, *, graph_config: GraphConfig | dict | None = None, replica: int | None = 0,
             tree: str | None = None, mapping=None) -> JetSet:
        """Read ``paths`` and build the graphs of replica ``replica`` of every jet (``None``: every entry)."""
        dataset = JetDataset(paths, replica=replica, graph_config=graph_config, shuffle=False, tree=tree,
                             mapping=mapping)
        chunks, chunk_ids, rows = [], [], []
        for graphs, kept in dataset.graph_chunks():
            if len(kept) == 0:
                continue
            chunk_ids.append(np.full(len(kept), len(chunks), dtype=np.int64))
            rows.append(np.asarray(kept, dtype=np.int64))
            chunks.append(graphs)
        if not chunks:
            raise ValueError(f"no usable jets in {', '.join(dataset.files)} (replica {replica}; {dataset.skipped} "
                             f"skipped without cells and tracks)")
        chunk_ids, rows = np.concatenate(chunk_ids), np.concatenate(rows)
        attrs = {name: np.concatenate([chunks[c].graph_attrs[name][rows[chunk_ids == c]].numpy()
                                       for c in range(len(chunks))]) for name in ATTRS}
        return cls(tuple(dataset.files), chunks, chunk_ids, rows, attrs, dataset.skipped)

    def __len__(self) -> int:
        return len(self.row)

    def subset(self, index) -> JetSet:
        """The jets ``index`` (an index array or a boolean mask), sharing the graphs."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return JetSet(self.files, self.chunks, self.chunk[index], self.row[index],
                      {name: values[index] for name, values in self.attrs.items()}, self.skipped)

    def batch(self, index) -> tuple[np.ndarray, Batch]:
        """``(order, batch)``: the jets ``index`` as one PyG batch; graph ``k`` of the batch is jet ``order[k]``.

        Graphs are gathered chunk by chunk, so ``order`` is ``index`` sorted by (chunk, row).
        """
        index = np.asarray(index, dtype=np.int64)
        order = index[np.lexsort((self.row[index], self.chunk[index]))]
        parts = []
        chunk_of = self.chunk[order]
        bounds = np.flatnonzero(np.diff(chunk_of)) + 1
        for piece in np.split(order, bounds):
            if len(piece):
                parts.append((self.chunks[int(self.chunk[piece[0]])], torch.from_numpy(self.row[piece])))
        return order, gather_batch(parts)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[tuple[np.ndarray, object]]:
        """``(order, batch)`` over all jets: in row order, or in a permutation drawn from ``seed``."""
        index = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        for start in range(0, len(index), batch_size):
            yield self.batch(index[start:start + batch_size])

    def signature(self, replica: int | None) -> str:
        """Hash of what the rows depend on besides the graph config: files (path, size, mtime), replica, rows."""
        digest = hashlib.sha256(files_signature(self.files).encode())
        digest.update(json.dumps(replica).encode())
        digest.update(self.attrs["file_index"].tobytes())
        digest.update(self.attrs["entry"].tobytes())
        return digest.hexdigest()[:16]


def files_signature(paths) -> str:
    """Hash of files by absolute path, size and modification time: changes when a file is rewritten."""
    digest = hashlib.sha256()
    for path in paths:
        local, tree = split_object_path(str(path))
        if is_remote(local):  # no stat over the network: the address names it
            digest.update(f"{path}".encode())
            continue
        stat = os.stat(local)
        digest.update(f"{Path(local).resolve()}{':' + tree if tree else ''}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def align_rows(jets: JetSet | dict, ids: dict, files=None) -> np.ndarray:
    """Row of ``ids`` (``file_index``/``entry`` arrays, e.g. of baseline features) for each jet of
    ``jets`` (a JetSet, or a dict with its ``file_index`` and ``entry`` arrays).

    Raises a ``ValueError`` when a jet has no row in ``ids``; ``files`` (default the JetSet's) name
    them in the message.
    """
    attrs = jets if isinstance(jets, dict) else jets.attrs
    files = files if files is not None else getattr(jets, "files", ())
    key = ids["file_index"].astype(np.int64) * (1 << 40) + ids["entry"].astype(np.int64)
    wanted = attrs["file_index"].astype(np.int64) * (1 << 40) + attrs["entry"].astype(np.int64)
    order = np.argsort(key, kind="stable")
    position = np.searchsorted(key[order], wanted)
    position = np.clip(position, 0, len(key) - 1)
    found = key[order][position] == wanted
    if not found.all():
        missing = int((~found).sum())
        raise ValueError(f"{missing} jet(s) of {', '.join(map(str, files))} have no row in the features (first: "
                         f"file {int(attrs['file_index'][~found][0])}, entry {int(attrs['entry'][~found][0])})")
    return order[position]
