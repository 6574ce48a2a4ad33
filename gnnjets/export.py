"""ONNX export of a trained backbone (optionally with its downstream head), for ONNX Runtime in CMSSW,
Athena or any other C++ or Python program.

The exported graph takes a batch of jet graphs as flat tensors, in this order (names as in the
file; N nodes, E edges, B jets; build them with :mod:`gnnjets.graphs` from the checkpoint's graph
config, or read them off a PyG batch: ``batch.x``, ``batch.node_type``, ...):

==============  ========  ==========  ====================================================
input           dtype     shape       meaning
==============  ========  ==========  ====================================================
``x``           float32   (N, F)      node features (:mod:`gnnjets.graphs.features`)
``node_type``   int64     (N,)        0..5 calorimeter layer, 6 track
``edge_index``  int64     (2, E)      source and target node of each edge
``edge_attr``   float32   (E, 4)      Delta eta, Delta phi, Delta R, edge type
``energy``      float32   (N,)        node energy [GeV]; only for backbones that weight by it
``batch``       int64     (N,)        the jet (0..B-1) of each node, nodes of a jet adjacent
``graph_nodes`` int64     (B,)        nodes per jet (its length gives B)
``jet_features`` float32  (B, J)      the jet scalars (``jet_features`` of the graphs); only
                                      for backbones that append them to h
==============  ========  ==========  ====================================================

Output ``h`` (B, D) float32, the embedding; with ``head=True`` the output is ``score`` (B,), the
head's raw output (a logit for taggers: sigmoid gives the probability; log(E_true/E_EM) or log
E_true for the energy task). ``energy`` is an input only when the backbone uses it (``pooling:
energy``, energy aggregation or attention); the names of a file's inputs are also in
``onnxruntime.InferenceSession(path).get_inputs()``. The export uses torch's TorchScript-based
exporter (opset 18) with dynamic N, E and B.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from torch import nn

from gnnjets.base.errors import GnnjetsError
from gnnjets.base.outputs import atomic_output
from gnnjets.checkpoint import CheckpointError, load_backbone, load_checkpoint
from gnnjets.nn.heads import Head, HeadConfig

OPSET = 18
NODE_INPUTS = ("x", "node_type", "edge_index", "edge_attr", "energy", "batch", "graph_nodes", "jet_features")


class ExportError(GnnjetsError, ValueError):
    """The model cannot be exported as asked (no head in the checkpoint, onnx missing, ...)."""


class _Graphs:
    """The attributes the backbone reads from a PyG batch, as plain tensors."""

    def __init__(self, x, node_type, edge_index, edge_attr, energy, batch, num_graphs):
        self.x, self.node_type, self.edge_index, self.edge_attr = x, node_type, edge_index, edge_attr
        self.energy, self.batch, self.num_graphs = energy, batch, num_graphs
        self.num_nodes = x.shape[0]

    def keys(self):
        return ["x", "node_type", "edge_index", "edge_attr", "energy", "batch"]


class FlatInputs(nn.Module):
    """backbone (+ head) on flat tensors, in the order of :data:`NODE_INPUTS` (``energy`` only if used)."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.uses_energy = backbone._uses_energy()
        self.uses_jet_features = bool(backbone.config.append_jet_features)

    def input_names(self) -> list[str]:
        return [name for name in NODE_INPUTS if (name != "energy" or self.uses_energy)
                and (name != "jet_features" or self.uses_jet_features)]

    def forward(self, x, node_type, edge_index, edge_attr, *rest):
        named = dict(zip(self.input_names()[4:], rest))  # energy (if used), batch, graph_nodes, jet_features (if used)
        energy, batch, graph_nodes = named.get("energy"), named["batch"], named["graph_nodes"]
        graphs = _Graphs(x, node_type, edge_index, edge_attr, energy, batch, graph_nodes.shape[0])
        h = self.backbone.pool(self.backbone.node_embeddings(graphs), batch, graph_nodes.shape[0], energy)  # (B, D)
        if self.uses_jet_features:
            h = torch.cat([h, named["jet_features"].to(h.dtype)], dim=1)  # (B, D + J)
        return h if self.head is None else self.head(h)


def flat_inputs(batch, *, uses_energy: bool, uses_jet_features: bool = False) -> tuple[torch.Tensor, ...]:
    """The input tensors of an exported model for a PyG batch of jet graphs, in input order."""
    graph_nodes = torch.bincount(batch.batch, minlength=batch.num_graphs)
    energy = (batch.energy,) if uses_energy else ()
    jet_features = (batch.jet_features,) if uses_jet_features else ()
    return (batch.x, batch.node_type, batch.edge_index, batch.edge_attr, *energy, batch.batch, graph_nodes,
            *jet_features)


def _head_of(path: Path, payload: dict, dim: int) -> Head:
    state = payload.get("model") or {}
    weights = {key[len("head."):]: value for key, value in state.items() if key.startswith("head.")}
    if not weights:
        raise ExportError(f"{path} holds no head (it is a pretraining checkpoint?); export the backbone alone, or "
                          f"give a downstream model from <run>/models/*.pt")
    config = (payload.get("config") or {}).get("head") or {}
    try:
        head = Head(dim, HeadConfig(**config))
        head.load_state_dict(weights)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ExportError(f"{path}: the head weights do not fit its config.head ({' '.join(str(err).split())[:160]})")
    return head


def export_onnx(checkpoint: str | Path, out: str | Path, *, head: bool = False, opset: int = OPSET) -> Path:
    """Write the backbone of ``checkpoint`` (with its head if ``head``) to ``out`` as ONNX; returns ``out``.

    The file is written atomically; see the module docstring for the inputs and outputs. Needs the
    ``onnx`` package (``pip install 'gnnjets[onnx]'``).
    """
    if importlib.util.find_spec("onnx") is None:  # torch's exporter needs it
        raise ExportError("ONNX export needs the onnx package: pip install 'gnnjets[onnx]'")
    loaded = load_backbone(checkpoint)
    model = FlatInputs(loaded.backbone, _head_of(loaded.path, load_checkpoint(loaded.path), loaded.backbone.embedding_dim)
                       if head else None).eval()
    example = _example_batch(loaded)
    args = flat_inputs(example, uses_energy=model.uses_energy, uses_jet_features=model.uses_jet_features)
    names = model.input_names()
    output = "score" if head else "h"
    axes = {"x": {0: "nodes"}, "node_type": {0: "nodes"}, "energy": {0: "nodes"}, "batch": {0: "nodes"},
            "edge_index": {1: "edges"}, "edge_attr": {0: "edges"}, "graph_nodes": {0: "jets"}, "jet_features": {0: "jets"},
            output: {0: "jets"}}
    out = Path(out)
    with atomic_output(out, keep_suffix=True) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices: nothing to act on here
        torch.onnx.export(model, args, str(tmp), input_names=names, output_names=[output], opset_version=opset,
                          dynamic_axes={k: v for k, v in axes.items() if k in names or k == output}, dynamo=False)
    return out


def _example_batch(loaded):
    """A small batch of synthetic jets built with the checkpoint's graph config (traced by the exporter)."""
    import awkward as ak
    import numpy as np

    from gnnjets.graphs import build_graphs
    from gnnjets.io import schema

    rng = np.random.default_rng(0)
    columns = {}
    counts = {"cell": np.array([12, 7]), "track": np.array([3, 0]), "particle": np.array([0, 0])}
    for field in schema.ALL_FIELDS:
        prefix = schema.collection_of(field.name)
        n = 2 if prefix is None else int(counts[prefix].sum())
        values = rng.uniform(0.1, 1.0, n)
        if field.name == "cell_layer":
            values = rng.integers(0, schema.N_CALO_LAYERS, n)
        elif field.name == "track_charge":
            values = rng.choice([-1, 1], n)
        values = values.astype(field.dtype)
        columns[field.name] = values if prefix is None else ak.unflatten(values, counts[prefix])
    graphs = build_graphs(ak.zip(columns, depth_limit=1), loaded.graph_config)
    if int(graphs.node_counts.min()) == 0:  # pragma: no cover - the jets above always have nodes
        raise CheckpointError("could not build example graphs for the export")
    return graphs.batch(torch.arange(len(graphs)))
