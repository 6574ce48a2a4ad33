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
import json
import warnings
from pathlib import Path

import awkward as ak
import numpy as np
import torch
import uproot

from gnnjets.base.outputs import OutputPathError, atomic_output
from gnnjets.checkpoint import load_backbone
from gnnjets.data import JetDataset, make_loader
from gnnjets.graphs import GraphConfig
from gnnjets.io.provenance import check_schema_versions
from gnnjets.io.reader import expand_paths
from gnnjets.io.schema import PROVENANCE_KEY, SCHEMA_VERSION
from gnnjets.nn.backbone import graph_index
from gnnjets.nn.config import ModelConfig
from gnnjets.runtime import resolve_device
from gnnjets.train.inference import run_batches

#: the name of the TTree written by :func:`write_embeddings`
EMBEDDING_TREE = "embedding"
#: output formats of :func:`write_embeddings`, and the file suffixes that imply them
FORMATS = ("root", "npz", "parquet")
SUFFIX_FORMATS = {".root": "root", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
#: the ids of every row, and their dtypes (those of the schema branches)
ID_DTYPES = {"entry": np.int64, "event_id": np.int64, "jet_index": np.int32, "replica": np.int32}
#: entries per basket of the embedding tree: ~25 MB of h at D = 128
_BASKET_ENTRIES = 50_000


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
                 checkpoint: str | Path | None = None, schema_version: int = SCHEMA_VERSION):
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
        self.backbone = backbone.to(self.device).eval()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.schema_version = schema_version

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
                   checkpoint=loaded.path, schema_version=loaded.schema_version)

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
                   replica: int | None = None, num_workers: int = 0) -> tuple[np.ndarray, dict]:
        """(h, ids) of every record of a ROOT file (or list / glob of files), in file order.

        Args:
            path: a ``.root`` path, a glob or a list of them.
            mapping, tree: for foreign files, see :func:`gnnjets.io.read_jets`.
            batch_size: graphs per forward pass; changes the speed and memory, not the rows.
            replica: keep only that replica's entries (one row per jet); ``None``: every entry.
            num_workers: DataLoader processes building graphs beside the forward pass.

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
            h = run_batches(self.backbone, batches(), device=self.device, transform=_nan_if_empty)
        except ValueError:  # no batch: no entries selected
            h = np.zeros((0, self.dim), np.float32)
        ids = {name: (np.concatenate(parts) if parts else np.zeros(0)).astype(ID_DTYPES.get(name, np.int32))
               for name, parts in columns.items()}
        empty = int(np.isnan(h[:, 0]).sum()) if len(h) else 0
        if empty:
            where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
            warnings.warn(f"{empty} of {len(h)} records of {where} have no cells and no tracks (a graph without "
                          f"nodes): their rows of h are NaN", EmptyJetsWarning, stacklevel=2)
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


# ---------------------------------------------------------------------------------- output files
def output_format(path: str | Path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else from the suffix.

    A suffix that names no format (``out.csv``) without ``format``, and a ``format`` that
    contradicts a known suffix (``out.npz`` with ``"root"``), are refused: nothing is written in a
    format its name does not say.
    """
    suffix = Path(path).suffix.lower()
    implied = SUFFIX_FORMATS.get(suffix)
    if format is None:
        if implied is None:
            raise OutputPathError(f"output {path}: {'the suffix ' + repr(suffix) if suffix else 'no suffix'} names no "
                                  f"embedding format; use .root (a friend tree), .npz or .parquet "
                                  f"(e.g. {Path(path).with_suffix('.root')}), or give the format explicitly")
        return implied
    if format not in FORMATS:
        raise OutputPathError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if implied is not None and implied != format:
        raise OutputPathError(f"output {path} has the suffix of {implied} but the format asked for is {format}; "
                              f"rename it (e.g. {Path(path).with_suffix('.' + format)}) or drop the format")
    return format


def write_embeddings(path: str | Path, h: np.ndarray, ids: dict, *, format: str | None = None,
                     provenance: dict | None = None) -> Path:
    """Write h and its ids to ``path`` atomically (temp name in the same folder, renamed when complete).

    Formats (``format``, default from the suffix, else ROOT):

    ``root``
        a TTree :data:`EMBEDDING_TREE` with one entry per row: ``h`` (fixed-size ``float[D]``) and
        one branch per id. With one row per input entry it is a friend of the input tree; the JSON
        ``provenance`` is stored as a string next to it.
    ``npz``
        arrays ``h`` and the ids, plus ``provenance`` (a JSON string); ``numpy.load`` reads it
        without pickle.
    ``parquet``
        one record per row (``h``: a fixed-size list) via ``awkward.to_parquet``; the provenance
        is the array parameter ``gnnjets_provenance``.
    """
    path = Path(path)
    format = output_format(path, format)
    h = np.ascontiguousarray(h, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"h must be a 2-D array (rows, D), not of shape {h.shape}")
    ids = {name: np.asarray(values) for name, values in ids.items()}
    for name, values in ids.items():
        if values.shape != (len(h),):
            raise ValueError(f"ids[{name!r}] has shape {values.shape}, h has {len(h)} rows")
    text = json.dumps(provenance or {}, sort_keys=True)
    with atomic_output(path) as tmp:
        if format == "root":
            with uproot.recreate(tmp) as file:
                types = {"h": np.dtype((np.float32, (h.shape[1],))), **{k: v.dtype for k, v in ids.items()}}
                file.mktree(EMBEDDING_TREE, types, title=f"gnnjets embedding h (D = {h.shape[1]})")
                for start in range(0, len(h), _BASKET_ENTRIES):
                    stop = start + _BASKET_ENTRIES
                    file[EMBEDDING_TREE].extend({"h": h[start:stop], **{k: v[start:stop] for k, v in ids.items()}})
                file[PROVENANCE_KEY] = text
        elif format == "npz":
            with open(tmp, "wb") as handle:  # a handle: savez would append .npz to a name
                np.savez(handle, h=h, **ids, provenance=np.array(text))
        else:
            records = ak.zip({"h": ak.from_numpy(h), **ids}, depth_limit=1)
            ak.to_parquet(ak.with_parameter(records, "gnnjets_provenance", text), tmp)
    return path


def read_embeddings(path: str | Path, *, format: str | None = None) -> tuple[np.ndarray, dict]:
    """(h, ids) from a file written by :func:`write_embeddings` (format from the suffix unless given)."""
    path = Path(path)
    format = output_format(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"no such embedding file: {path}")
    if format == "root":
        with uproot.open(path) as file:
            if EMBEDDING_TREE not in file:
                raise ValueError(f"{path} holds no TTree {EMBEDDING_TREE!r}; was it written by gnnjets-embed?")
            columns = file[EMBEDDING_TREE].arrays(library="np")
    elif format == "npz":
        with np.load(path, allow_pickle=False) as data:
            columns = {name: data[name] for name in data.files if name != "provenance"}
    else:
        records = ak.from_parquet(path)
        columns = {name: ak.to_numpy(records[name]) for name in records.fields}
    h = np.asarray(columns.pop("h"), dtype=np.float32)
    return h, columns
