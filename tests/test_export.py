"""gnnjets-export: the ONNX model gives torch's embeddings (and head scores) on real jet graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnnjets import Embedder
from gnnjets.checkpoint import save_checkpoint
from gnnjets.cli import export as export_cli
from gnnjets.config import config_from_dict
from gnnjets.data import JetSet
from gnnjets.export import ExportError, export_onnx, flat_inputs
from gnnjets.nn.heads import BackboneWithHead, Head, HeadConfig
from gnnjets.nn.model import build_model

ort = pytest.importorskip("onnxruntime")


V2_GRAPH = {"max_cells": 32, "remainder_nodes": True, "scaling": {"energy_reference": "jet"}}
V2_BACKBONE = {"kind": "sage", "pooling": "mean+energy", "global_context": True, "append_jet_features": True}


@pytest.fixture(scope="module", params=[({}, {"kind": "edgeconv", "pooling": "mean"}),
                                        ({}, {"kind": "edgeconv", "pooling": "energy", "aggregation": "energy"}),
                                        (V2_GRAPH, V2_BACKBONE)])
def checkpoint(tmp_path_factory, request):
    graph, extra = request.param
    backbone = {"hidden": 16, "layers": 2, "embedding_dim": 8, **extra}
    config = config_from_dict({"data": {"train": ["data/qg_small.root"]}, "graph": graph,
                               "model": {"backbone": backbone, "projection_dim": 8, "projection_hidden": 8}})
    return save_checkpoint(tmp_path_factory.mktemp("export") / "last.pt",
                           {"config": config.to_dict(), "model": build_model(config.model, seed=1).state_dict()})


def run_onnx(path, batch, backbone):
    session = ort.InferenceSession(str(path))
    inputs = flat_inputs(batch, uses_energy=backbone._uses_energy(),
                         uses_jet_features=backbone.config.append_jet_features)
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {name: tensor.numpy() for name, tensor in zip(names, inputs)})[0], names


def test_onnx_backbone_matches_torch_on_real_jets(checkpoint, sim_qg_file, tmp_path):
    out = tmp_path / "backbone.onnx"
    assert export_cli.main([str(checkpoint), "--out", str(out)]) == 0
    embedder = Embedder.from_checkpoint(checkpoint, device="cpu")
    jets = JetSet.load(sim_qg_file, graph_config=embedder.graph_config)
    for size in (len(jets), 3, 1):  # dynamic numbers of jets, nodes and edges
        _, batch = jets.batch(np.arange(size))
        onnx_h, names = run_onnx(out, batch, embedder.backbone)
        np.testing.assert_allclose(onnx_h, embedder.embed_graphs(batch).numpy(), atol=1e-4, rtol=1e-4)
    assert names[:4] == ["x", "node_type", "edge_index", "edge_attr"] and "graph_nodes" in names
    assert ("jet_features" in names) == embedder.backbone.config.append_jet_features


def test_onnx_with_a_head_gives_its_score(checkpoint, sim_qg_file, tmp_path):
    from gnnjets.checkpoint import load_backbone

    loaded = load_backbone(checkpoint)
    head = Head(loaded.backbone.embedding_dim, HeadConfig(kind="mlp", hidden=4, layers=1))
    model = BackboneWithHead(loaded.backbone, head).eval()
    downstream = save_checkpoint(tmp_path / "head.pt", {"config": {**loaded.config, "head": {"kind": "mlp", "hidden": 4,
                                                                                             "layers": 1}},
                                                        "model": model.state_dict()})
    out = export_onnx(downstream, tmp_path / "qg.onnx", head=True)
    jets = JetSet.load(sim_qg_file, graph_config=loaded.graph_config)
    _, batch = jets.batch(np.arange(len(jets)))
    score, _ = run_onnx(out, batch, loaded.backbone)
    with torch.no_grad():
        np.testing.assert_allclose(score, model(batch).numpy(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ExportError, match="holds no head"):
        export_onnx(checkpoint, tmp_path / "x.onnx", head=True)
