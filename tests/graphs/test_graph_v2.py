"""Jet-relative energies, per-layer remainder nodes and the jet scalars of the graphs."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
from torch_geometric.utils import scatter

from gnnjets.augment import ScaleJetEnergy
from gnnjets.graphs import GRAPH_BRANCHES, GraphConfig, build_graphs
from gnnjets.graphs import features as F
from gnnjets.io import read_all

RELATIVE = {"energy_reference": "jet"}


@pytest.fixture(scope="module")
def chunk():
    return read_all("data/qg_small.root", branches=GRAPH_BRANCHES, entry_stop=40)


def scaled(chunk, factor):
    """The same jets with every energy and momentum multiplied by ``factor``."""
    out = chunk
    for name in ("cell_e", "cell_sigma", "track_pt", "jet_e", "jet_pt"):
        out = ak.with_field(out, out[name] * factor, name)
    return out


def test_remainder_nodes_keep_all_energy_and_every_cell(chunk):
    graphs = build_graphs(chunk, GraphConfig(max_cells=16, remainder_nodes=True)).batch()
    is_cell = graphs.node_type < F.TRACK
    energy = scatter(graphs.energy * is_cell, graphs.batch, reduce="sum").numpy()
    np.testing.assert_allclose(energy, ak.to_numpy(ak.sum(chunk.cell_e, axis=1)), rtol=1e-4, atol=1e-3)
    counts = torch.exp(graphs.x[:, F.LOG_COUNT] * 2.0) * is_cell  # log_count = log(n) / count_scale (2)
    cells = scatter(counts, graphs.batch, reduce="sum").numpy()
    np.testing.assert_allclose(cells, ak.to_numpy(ak.num(chunk.cell_e, axis=1)), rtol=1e-4)
    plain = build_graphs(chunk, GraphConfig(max_cells=16, remainder_nodes=False)).batch()
    assert (plain.x[:, F.LOG_COUNT] == 0).all()
    extra = torch.diff(graphs.ptr) - torch.diff(plain.ptr)  # one remainder node per layer with dropped cells
    assert ((extra >= 0) & (extra <= 6)).all() and extra.sum() > 0


def test_relative_energies_do_not_see_the_energy_scale(chunk):
    config = GraphConfig(scaling=RELATIVE, remainder_nodes=True, max_cells=32)
    a = build_graphs(chunk, config).batch()
    b = build_graphs(scaled(chunk, 3.0), config).batch()
    torch.testing.assert_close(a.x[:, F.LOG_ENERGY], b.x[:, F.LOG_ENERGY], rtol=1e-5, atol=1e-5)
    absolute = GraphConfig(max_cells=32, scaling={"energy_reference": "absolute"})
    a = build_graphs(chunk, absolute).batch()
    b = build_graphs(scaled(chunk, 3.0), absolute).batch()
    positive = a.energy > 0.01
    shift = (b.x[positive, F.LOG_ENERGY] - a.x[positive, F.LOG_ENERGY]) * absolute.scaling.log_energy_scale
    torch.testing.assert_close(shift, torch.full_like(shift, float(np.log(3.0))), rtol=1e-4, atol=1e-4)


def test_jet_features_describe_the_whole_jet(chunk):
    graphs = build_graphs(chunk, GraphConfig(max_cells=8, max_tracks=2)).batch()
    features = graphs.jet_features.numpy()
    assert features.shape == (len(chunk), F.NUM_JET_FEATURES)
    np.testing.assert_allclose(features[:, 0], np.log(ak.to_numpy(chunk.jet_e)), rtol=1e-5)
    np.testing.assert_allclose(features[:, 3], np.log1p(ak.to_numpy(ak.num(chunk.cell_e, axis=1))), rtol=1e-5)
    np.testing.assert_allclose(features[:, 4], np.log1p(ak.to_numpy(ak.num(chunk.track_pt, axis=1))), rtol=1e-5)
    topoclusters = [len(set(row)) for row in ak.to_list(chunk.cell_topo_idx)]
    np.testing.assert_allclose(features[:, 5], np.log1p(topoclusters), rtol=1e-5)


@pytest.mark.parametrize("reference", ["absolute", "jet"])
def test_energy_scale_augmentation(chunk, reference):
    config = GraphConfig(scaling={"energy_reference": reference}, max_cells=32)
    batch = build_graphs(chunk, config).batch()
    transform = ScaleJetEnergy(max_log_scale=0.2, scaling=config.scaling, generator=torch.Generator().manual_seed(1))
    out = transform(batch)
    factor = out.energy_ref / batch.energy_ref
    assert ((factor > np.exp(-0.2) - 1e-6) & (factor < np.exp(0.2) + 1e-6)).all() and factor.std() > 0
    torch.testing.assert_close(out.energy, batch.energy * factor[batch.batch])
    moved = (out.x[:, F.LOG_ENERGY] - batch.x[:, F.LOG_ENERGY]).abs().max()
    assert (moved < 1e-5) if reference == "jet" else (moved > 0.01)
    assert torch.equal(batch.x, build_graphs(chunk, config).batch().x)  # the input is untouched
