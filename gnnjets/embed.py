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

from gnnjets import __version__
from gnnjets.base.outputs import atomic_output
from gnnjets.checkpoint import CheckpointError, load_checkpoint
from gnnjets.data import JetDataset, make_loader
from gnnjets.graphs import GraphConfig
from gnnjets.io.reader import expand_paths
from gnnjets.io.schema import PROVENANCE_KEY, SCHEMA_VERSION
from gnnjets.nn.backbone import Backbone, graph_index
from gnnjets.nn.config import ModelConfig

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


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"'device' must be 'auto', 'cpu', 'cuda' (or 'cuda:N') or a torch.device, "
                         f"not {device!r}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no GPU is usable here (torch {torch.__version__}, "
                         f"torch.cuda.is_available() is False); use device 'cpu' or 'auto'")
    return resolved


def file_schema_version(path: str | Path) -> int | None:
    """The ROOT schema version recorded in a file's provenance; ``None`` if it records none (foreign files).

    A file uproot cannot open also gives ``None``: the reader reports that with its own message.
    """
    try:
        with uproot.open(path) as file:
            if PROVENANCE_KEY not in file:
                return None
            text = str(file[PROVENANCE_KEY])
    except Exception:  # uproot raises many types for non-ROOT content; read_jets explains it
        return None
    try:
        provenance = json.loads(text)
    except ValueError:
        return None
    return provenance.get("schema_version") if isinstance(provenance, dict) else None


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
        model config or backbone weights that fit it.
        """
        path = Path(path)
        payload = load_checkpoint(path)  # weights_only=True; checks format and schema version
        config = payload.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"{path} stores no config (the graph and model settings); an Embedder needs "
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
        return cls(backbone, graph_config, model_config=model_config, device=device, checkpoint=path,
                   schema_version=payload["schema_version"])

    # ------------------------------------------------------------------------------ embedding
    @torch.no_grad()  # not inference_mode: its tensors cannot feed a downstream model's autograd
    def embed_graphs(self, batch) -> torch.Tensor:
        """h (B, D) float32 on the CPU of a PyG ``Batch`` (or one graph) built with :attr:`graph_config`.

        Graphs without nodes get a NaN row. The batch is moved to :attr:`device`; it is not modified.
        """
        if not hasattr(batch, "to") or getattr(batch, "x", None) is None:
            raise TypeError(f"embed_graphs takes a PyG Batch or graph of jets (with x, edge_index, ...), "
                            f"not {type(batch).__name__}; build one with gnnjets.graphs.make_loader")
        # PyG's .to() moves the tensors of the object itself: move a shallow copy, not the caller's batch
        batch = copy.copy(batch).to(self.device, non_blocking=True)
        h = self.backbone(batch).float()  # (B, D)
        graph_of_node, num_graphs = graph_index(batch)
        empty = torch.bincount(graph_of_node, minlength=num_graphs) == 0  # (B,)
        h = h.masked_fill(empty[:, None], float("nan"))
        return h.cpu()

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
        rows, columns = [], {name: [] for name in names}
        for batch in loader:
            for name in names:
                columns[name].append(getattr(batch, name).view(-1).numpy())
            rows.append(self.embed_graphs(batch).numpy())
        h = np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)
        ids = {name: (np.concatenate(parts) if parts else np.zeros(0)).astype(ID_DTYPES.get(name, np.int32))
               for name, parts in columns.items()}
        empty = int(np.isnan(h[:, 0]).sum()) if len(h) else 0
        if empty:
            where = files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"
            warnings.warn(f"{empty} of {len(h)} records of {where} have no cells and no tracks (a graph without "
                          f"nodes): their rows of h are NaN", EmptyJetsWarning, stacklevel=2)
        return h, ids

    def check_schema(self, paths) -> None:
        """Raise :class:`~gnnjets.checkpoint.CheckpointError` if a file's schema version is not the checkpoint's."""
        source = f"checkpoint {self.checkpoint}" if self.checkpoint is not None else "this embedder"
        check_schema_versions(paths, self.schema_version, source)


def check_schema_versions(paths, schema_version: int, source: str) -> None:
    """Raise :class:`~gnnjets.checkpoint.CheckpointError` if a file's ROOT schema version (from its
    provenance; files without one are not checked) differs from ``schema_version``, that of ``source``."""
    for file in expand_paths(paths):
        version = file_schema_version(file)
        if version is not None and version != schema_version:
            raise CheckpointError(
                f"{file} was written with ROOT schema version {version}, but {source} was trained on schema "
                f"version {schema_version}: its branches may not mean what the backbone learned. Use a "
                f"checkpoint trained on schema-{version} files, or regenerate the file with "
                f"detector-sim of gnnjets {__version__} (schema {SCHEMA_VERSION})")


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


# ---------------------------------------------------------------------------------- output files
def output_format(path: str | Path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else from the suffix, else ``"root"``.

    A ``format`` that contradicts a known suffix (``out.npz`` with ``"root"``) is refused.
    """
    implied = SUFFIX_FORMATS.get(Path(path).suffix.lower())
    if format is None:
        return implied or "root"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if implied is not None and implied != format:
        raise ValueError(f"output {path} has the suffix of {implied} but the format asked for is {format}; "
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
