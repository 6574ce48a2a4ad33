"""The Embedding API: a trained backbone, restored from its checkpoint alone, turns jets into vectors h.

>>> from gnnjets import Embedder                                         # doctest: +SKIP
>>> embedder = Embedder.from_checkpoint("runs/qg20k/last.pt")            # cuda when available
>>> h, ids = embedder.embed_file("data/qg_small.root")                   # h (n_entries, D) float32
>>> ids["event_id"][7], ids["replica"][7]                                # which jet replica row 7 is
>>> write_embeddings("emb.root", h, ids)                                 # a friend tree of data/qg_small.root:jets

What an output is: ``h`` a numpy float32 array (n, D), one row per record of the input in file
order (for our files and ``layout: jets`` mappings: one row per tree entry, so the rows line up
with the input tree), and ``ids`` a dict of numpy arrays of length n: ``entry`` (int64, the entry
within its file; for ``layout: events`` mappings the event's entry), ``event_id`` (int64),
``jet_index`` (int32), ``replica`` (int32) and, when several files are embedded, ``file_index``
(int32, into the files in reading order, globs sorted). A record without cells and tracks has no
graph nodes: its row is NaN (the backbone would give it zeros, an embedding indistinguishable from
a real one), and :class:`EmptyJetsWarning` says how many there are.

Everything the embedding needs comes from the checkpoint (:mod:`gnnjets.checkpoint`): the graph
config with its feature scaling (``config.graph``), the model config (``config.model``) and the
weights, of which only the backbone's (``backbone.*``) are used, so pretraining checkpoints
(backbone + projector) and downstream ones (backbone + head) both work. Checkpoints are read with
``torch.load(weights_only=True)``: one shared by a colleague cannot run code on the reader's machine.
The file's ROOT schema version (its provenance) must equal the checkpoint's; files without
provenance (foreign files read through a mapping) are not checked.

The forward pass runs in float32 and in eval mode: the same jets give the same rows whatever the
batch size and the order (each jet's h depends on its own graph only; rows agree to float rounding,
~1e-6 relative, since the summation order of the pooling can change with the batch).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import torch
from tqdm import tqdm

from gnnjets.checkpoint import load_backbone
from gnnjets.data import JetDataset, make_loader
from gnnjets.embedding_files import (EMBEDDING_TREE, FORMATS, SUFFIX_FORMATS, output_format, read_embeddings,
                                     write_embeddings)
from gnnjets.graphs import GRAPH_BRANCHES, GraphConfig, build_graphs
from gnnjets.io.mapping import IDENTITY, load_mapping
from gnnjets.io.provenance import check_schema_versions
from gnnjets.io.reader import expand_paths, read_jets
from gnnjets.io.schema import SCHEMA_VERSION
from gnnjets.io.values import check_values
from gnnjets.nn.backbone import graph_index
from gnnjets.nn.config import ModelConfig
from gnnjets.runtime import resolve_device, tune_allocator
from gnnjets.train.inference import NoBatchError, run_batches

__all__ = ["Embedder", "EmptyJetsWarning", "ID_DTYPES", "EMBEDDING_TREE", "FORMATS", "SUFFIX_FORMATS",
           "output_format", "write_embeddings", "read_embeddings"]

#: the ids of every row, and their dtypes (those of the schema branches)
ID_DTYPES = {"entry": np.int64, "event_id": np.int64, "jet_index": np.int32, "replica": np.int32}
#: arrays in memory without a mapping: schema field names, and what a coffea-style record lacks is
#: filled (ids, labels, truth, cell noise, track positions at the layers) as for foreign files
IN_MEMORY = dataclasses.replace(IDENTITY, name="in-memory", fill_missing=True, source="<in-memory array>")


class EmptyJetsWarning(UserWarning):
    """Some records had no cells and no tracks (a graph without nodes); their rows of h are NaN."""


class Embedder:
    """A backbone in eval mode, with the graph config it was trained on: jets -> h (n, D).

    Build it with :meth:`from_checkpoint`; the constructor takes the parts directly (tests, models
    trained in the same process).

    Args:
        backbone: a :class:`~gnnjets.nn.backbone.Backbone` (or any module batch -> (B, D)).
        graph_config: the :class:`~gnnjets.graphs.GraphConfig` (feature scaling included) the
            backbone was trained with; a dict is accepted.
        model_config: the :class:`~gnnjets.nn.config.ModelConfig`, for the record.
        device: ``"auto"`` (cuda when available), ``"cpu"``, ``"cuda"`` or a ``torch.device``.
        checkpoint: the checkpoint path it came from, for the record.
        schema_version: the ROOT schema version of the training files (checked against the inputs).

    Attributes:
        backbone, graph_config, model_config, device, dim (D), checkpoint, schema_version.

    Shapes:
        embed_graphs: batch of B graphs -> (B, D); embed_file: file of n entries -> (n, D)
    """

    def __init__(self, backbone: torch.nn.Module, graph_config: GraphConfig | dict, *,
                 model_config: ModelConfig | None = None, device: str | torch.device = "auto",
                 checkpoint: str | Path | None = None, schema_version: int = SCHEMA_VERSION,
                 signature: str | None = None):
        if not isinstance(backbone, torch.nn.Module):
            raise TypeError(f"'backbone' must be a torch.nn.Module, not {type(backbone).__name__}")
        self.graph_config: GraphConfig = (GraphConfig.from_dict(graph_config) if isinstance(graph_config, dict)
                                          else graph_config)
        if not isinstance(self.graph_config, GraphConfig):
            raise TypeError(f"'graph_config' must be a GraphConfig or a dict, not {graph_config!r}")
        backbone_config = getattr(backbone, "config", None)
        self.model_config = model_config if model_config is not None or backbone_config is None \
            else ModelConfig(backbone=backbone_config)
        self.device = resolve_device(device)
        tune_allocator()  # embedding allocates large per-batch tensors: keep them (see gnnjets.runtime)
        self.backbone = backbone.to(self.device).eval()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.schema_version = schema_version
        #: the checkpoint's content signature (gnnjets.checkpoint.file_hash), recorded in outputs
        self.signature = signature

    @property
    def dim(self) -> int:
        """D, the size of an embedding."""
        return int(self.backbone.embedding_dim)

    def __repr__(self) -> str:
        source = f"{str(self.checkpoint)!r}" if self.checkpoint is not None else "None"
        return f"Embedder(checkpoint={source}, dim={self.dim}, device='{self.device}')"

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "auto") -> Embedder:
        """The backbone of a gnnjets checkpoint (pretraining or downstream), nothing else needed.

        Raises :class:`~gnnjets.checkpoint.CheckpointError` (a ``ValueError``) when the file is no
        gnnjets checkpoint, has another format or schema version, or lacks the graph config, the
        model config or backbone weights that fit it (see :func:`gnnjets.checkpoint.load_backbone`).
        """
        loaded = load_backbone(path)
        return cls(loaded.backbone, loaded.graph_config, model_config=loaded.model_config, device=device,
                   checkpoint=loaded.path, schema_version=loaded.schema_version, signature=loaded.sha256_16)

    @classmethod
    def from_pretrained(cls, name: str, *, device: str | torch.device = "auto") -> Embedder:
        """A backbone shipped with the package (:mod:`gnnjets.pretrained`): ``"qg"`` (quark/gluon
        jets, R = 0.4) or ``"top"`` (top and QCD jets, R = 0.8); no pretraining needed."""
        from gnnjets import pretrained

        return cls.from_checkpoint(pretrained.path(name), device=device)

    # ------------------------------------------------------------------------------ embedding
    @torch.no_grad()  # not inference_mode: its tensors cannot feed a downstream model's autograd
    def embed_graphs(self, batch) -> torch.Tensor:
        """h (B, D) float32 on the CPU of a PyG ``Batch`` (or one graph) built with :attr:`graph_config`.

        Graphs without nodes get a NaN row. The batch is moved to :attr:`device`; it is not modified.
        """
        if not hasattr(batch, "to") or getattr(batch, "x", None) is None:
            raise TypeError(f"embed_graphs takes a PyG Batch or graph of jets (with x, edge_index, ...), "
                            f"not {type(batch).__name__}; build one with gnnjets.graphs.make_loader")
        # PyG's .to() moves the tensors of the object itself: run a shallow copy, not the caller's batch
        h = run_batches(self.backbone, [(None, copy.copy(batch))], device=self.device, transform=_nan_if_empty)
        return torch.from_numpy(h)

    def embed_file(self, path, *, mapping=None, tree: str | None = None, batch_size: int = 512,
                   replica: int | None = None, num_workers: int = 0,
                   progress: bool = False) -> tuple[np.ndarray, dict]:
        """(h, ids) of every record of a ROOT file (or list / glob of files), in file order.

        Args:
            path: a ``.root`` path, a glob or a list of them.
            mapping, tree: for foreign files, see :func:`gnnjets.io.read_jets`.
            batch_size: graphs per forward pass; changes the speed and memory, not the rows.
            replica: keep only that replica's entries (one row per jet); ``None``: every entry.
            num_workers: DataLoader processes building graphs beside the forward pass.
            progress: a tqdm bar over the jets on stderr.

        Returns:
            h, numpy float32 (n, D), and ids, a dict of numpy arrays (see the module docstring).
        """
        files = expand_paths(path)
        self.check_schema(files)
        dataset = JetDataset(files, replica=replica, graph_config=self.graph_config, shuffle=False,
                             skip_empty=False, mapping=mapping, tree=tree)
        loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers,
                             pin_memory=self.device.type == "cuda")
        names = tuple(ID_DTYPES) + (("file_index",) if len(files) > 1 else ())
        columns = {name: [] for name in names}

        def batches():
            for batch in loader:
                for name in names:
                    columns[name].append(getattr(batch, name).view(-1).numpy())
                yield None, batch

        try:
            h = run_batches(self.backbone, batches(), device=self.device, transform=_nan_if_empty, progress=progress)
        except NoBatchError:  # no entries selected (an unreadable file is not that: its error passes)
            h = np.zeros((0, self.dim), np.float32)
        ids = {name: (np.concatenate(parts) if parts else np.zeros(0)).astype(ID_DTYPES.get(name, np.int32))
               for name, parts in columns.items()}
        empty = int(np.isnan(h[:, 0]).sum()) if len(h) else 0
        if empty:
            where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
            warnings.warn(f"{empty} of {len(h)} records of {where} have no cells and no tracks (a graph without "
                          f"nodes): their rows of h are NaN", EmptyJetsWarning, stacklevel=2)
        return h, ids

    def iter_embed(self, path, step_size: int = 10_000, *, mapping=None, tree: str | None = None,
                   batch_size: int = 512, replica: int | None = None,
                   progress: bool = False) -> Iterator[tuple[np.ndarray, dict]]:
        """Yield ``(h, ids)`` chunk by chunk (at most ``step_size`` entries each), with flat memory.

        The rows of all chunks together are those of :meth:`embed_file` (same order, same values);
        only one chunk's jets, graphs and h are held at a time, so files of any size can be
        embedded and written out piece by piece. Arguments as for :meth:`embed_file`; ``ids`` also
        carries ``file_index`` when several files are read.
        """
        files = expand_paths(path)
        self.check_schema(files)
        chunks = read_jets(files, tree=tree, mapping=mapping, branches=GRAPH_BRANCHES, step_size=step_size)
        per_jet = chunks.mapping.layout == "jets"  # else records are jets cut out of events: no known total
        with tqdm(total=chunks.num_entries if per_jet else None, unit="jet", desc="embed", disable=not progress,
                  leave=False) as bar:
            for records in chunks:
                bar.update(len(records))
                if replica is not None:
                    records = records[ak.to_numpy(records["replica"]) == replica]
                if len(records):
                    yield self._embed_records(records, batch_size, with_file_index=len(files) > 1)

    def embed_arrays(self, arrays: ak.Array, mapping=None, *, batch_size: int = 512) -> tuple[np.ndarray, dict]:
        """(h, ids) of jets already in memory: an awkward array of records, one per jet (or per event).

        Args:
            arrays: records with schema field names (``cell_e``, ``cell_eta``, ..., ``jet_pt``,
                ``jet_eta``, ``jet_phi``), as :func:`gnnjets.io.read_jets` yields them or as an
                analysis (a coffea processor) builds them; fields it lacks are filled as for
                foreign files (ids, cell noise from the layer, track positions at the layers).
                Or foreign names with ``mapping``.
            mapping: ``None`` (schema names), a shipped mapping name (``"cocoa"``), a YAML path or a
                :class:`~gnnjets.io.mapping.BranchMapping`; a ``layout: events`` mapping cuts events
                into jets by Delta R.

        Returns:
            h (n, D) float32, one row per jet, and ids (``entry``: the record's position in
            ``arrays``, ``event_id``, ``jet_index``, ``replica``). Values are checked as the reader
            checks them (NaN, inf, physical ranges).
        """
        if not isinstance(arrays, ak.Array) or not arrays.fields:
            raise TypeError(f"embed_arrays takes an awkward Array of records (fields cell_e, cell_eta, ...), "
                            f"not {type(arrays).__name__}")
        mapping = IN_MEMORY if mapping is None else load_mapping(mapping)
        plan = mapping.plan(arrays.fields, GRAPH_BRANCHES, "<in-memory array>")
        columns, entry = plan.convert({name: arrays[name] for name in plan.branches},
                                      np.arange(len(arrays), dtype=np.int64))
        check_values(columns, mapping, lambda record: (f"at record {int(entry[record])} of the array",
                                                       "drop that record"))
        columns["entry"] = entry
        columns["source_file_index"] = np.zeros(len(entry), dtype=np.int32)
        if not len(entry):
            return np.zeros((0, self.dim), np.float32), {name: np.zeros(0, dtype) for name, dtype in ID_DTYPES.items()}
        return self._embed_records(ak.zip(columns, depth_limit=1), batch_size)

    def _embed_records(self, records: ak.Array, batch_size: int, with_file_index: bool = False):
        """(h, ids) of one chunk of schema records, in record order."""
        graphs = build_graphs(records, self.graph_config)
        starts = range(0, len(graphs), batch_size)
        batches = ((None, graphs.batch(torch.arange(start, min(start + batch_size, len(graphs))))) for start in starts)
        h = run_batches(self.backbone, batches, len(graphs), device=self.device, transform=_nan_if_empty)
        ids = {name: ak.to_numpy(records[name]).astype(dtype) for name, dtype in ID_DTYPES.items()}
        if with_file_index:
            ids["file_index"] = ak.to_numpy(records["source_file_index"]).astype(np.int32)
        return h, ids

    def check_schema(self, paths) -> None:
        """Raise :class:`~gnnjets.io.errors.SchemaVersionError` if a file's schema version is not the checkpoint's."""
        source = f"checkpoint {self.checkpoint}" if self.checkpoint is not None else "this embedder"
        check_schema_versions(paths, self.schema_version, source)


def _nan_if_empty(h: torch.Tensor, batch) -> torch.Tensor:
    """h (B, D) with the rows of graphs without nodes set to NaN (the backbone gives them zeros)."""
    graph_of_node, num_graphs = graph_index(batch)
    empty = torch.bincount(graph_of_node, minlength=num_graphs) == 0  # (B,)
    return h.float().masked_fill(empty[:, None], float("nan"))


