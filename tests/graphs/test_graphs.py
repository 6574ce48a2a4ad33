"""Graph building: layout, node budget, edges, batching, configuration (gnnjets.graphs).

Tests take a jet file through the ``jets_file`` fixture (now the synthetic file; the simulation's
``sim_qg_file`` can be swapped in) and compare against independent numpy references. Only the
bad-input tests build hand-made chunks.
"""

from __future__ import annotations

import gnnjets.graphs  # noqa: F401, I001 - first: it imports torch_geometric without its DeprecationWarning

import math

import awkward as ak
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from gnnjets.graphs import (FeatureScaling, GraphConfig, GraphConfigError, JetGraph, build_graphs,
                            gather_batch, load_graph_config, top_k_per_group)
from gnnjets.graphs import features as F
from gnnjets.graphs.features import edge_attributes, edge_attributes_torch
from gnnjets.graphs.node_counts import format_report, node_count_report
from gnnjets.io import schema


def wrap(phi):
    return np.mod(phi + np.pi, 2 * np.pi) - np.pi


def make_chunk(jets: list[dict]) -> ak.Array:
    """Hand-made records with every field build_graphs reads; unspecified fields get neutral values."""
    rows = []
    for i, jet in enumerate(jets):
        n_cells = len(jet.get("cell_e", []))
        n_tracks = len(jet.get("track_pt", []))
        row = dict(event_id=i, jet_index=0, replica=0, label=1, jet_pt=100.0, jet_eta=0.0, jet_phi=0.0, jet_e=100.0,
                   truth_e=120.0, truth_pt=110.0, cell_e=[], cell_eta=[], cell_phi=[], cell_layer=[],
                   cell_sigma=[0.05] * n_cells, cell_topo_idx=[0] * n_cells, track_pt=[], track_eta=[], track_phi=[],
                   track_charge=[1] * n_tracks,
                   track_d0=[0.0] * n_tracks, track_z0=[0.0] * n_tracks)
        row.update(jet)
        for layer in range(schema.N_CALO_LAYERS):
            row.setdefault(f"track_eta_layer{layer}", row["track_eta"])
            row.setdefault(f"track_phi_layer{layer}", row["track_phi"])
        rows.append(row)
    return ak.Array(rows)


# ---------------------------------------------------------------- layout
def test_layout_matches_the_records(records):
    config = GraphConfig(max_cells=None, max_tracks=None, scaling={"energy_reference": "absolute"})
    graphs = build_graphs(records, config)
    assert len(graphs) == len(records)
    scaling = config.scaling
    for i in range(len(records)):
        graph = graphs.graph(i)
        record = records[i]
        n_cells, n_tracks = len(record.cell_e), len(record.track_pt)
        assert isinstance(graph, JetGraph)
        assert graph.x.shape == (n_cells + n_tracks, F.NUM_NODE_FEATURES) and graph.x.dtype == torch.float32
        assert graph.pos.shape == (n_cells + n_tracks, 2)
        assert graph.node_type.dtype == torch.int64 and graph.edge_index.dtype == torch.int64
        # cells first (by decreasing energy), then tracks (by decreasing pT)
        cell_e = np.sort(np.asarray(record.cell_e))[::-1]
        np.testing.assert_allclose(graph.energy[:n_cells].numpy(), cell_e, rtol=1e-6)
        track_pt = np.asarray(record.track_pt)
        order = np.argsort(-track_pt, kind="stable")
        track_p = track_pt[order] * np.cosh(np.asarray(record.track_eta)[order])
        np.testing.assert_allclose(graph.energy[n_cells:].numpy(), track_p, rtol=1e-5)
        assert (graph.node_type[n_cells:] == F.TRACK).all() and (graph.node_type[:n_cells] < F.TRACK).all()
        onehot = graph.x[:, F.NODE_TYPE_ONEHOT]
        assert torch.equal(onehot.argmax(1), graph.node_type) and torch.equal(onehot.sum(1), torch.ones(len(onehot)))
        np.testing.assert_allclose(graph.x[:, F.DELTA_ETA].numpy(), graph.pos[:, 0].numpy() / scaling.angle_scale)
        np.testing.assert_allclose(graph.x[:, F.DELTA_PHI].numpy(), graph.pos[:, 1].numpy() / scaling.angle_scale)
        np.testing.assert_allclose(graph.x[:n_cells, F.LOG_ENERGY].numpy(),
                                   (np.log(np.maximum(cell_e, scaling.energy_floor_gev)) - scaling.log_energy_shift)
                                   / scaling.log_energy_scale, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(graph.x[n_cells:, F.LOG_ENERGY].numpy(),
                                   (np.log(track_pt[order]) - scaling.log_energy_shift) / scaling.log_energy_scale,
                                   rtol=1e-5, atol=1e-6)
        cell_columns = graph.x[:n_cells][:, [F.CHARGE, F.D0, F.Z0]]
        assert (cell_columns == 0).all() and (graph.x[n_cells:, F.SIGNIFICANCE] == 0).all()
        assert set(graph.x[n_cells:, F.CHARGE].tolist()) <= {-1.0, 1.0}
        # positions relative to the jet axis, phi wrapped
        d_eta = np.sort(np.asarray(record.cell_eta) - record.jet_eta)
        np.testing.assert_allclose(np.sort(graph.pos[:n_cells, 0].numpy()), d_eta, atol=1e-5)
        assert (graph.pos[:, 1].abs() <= math.pi).all()
        for key in F.GRAPH_FLOAT_ATTRS + F.GRAPH_INT_ATTRS:
            assert graph[key].shape == (1,)
        assert graph.jet_features.shape == (1, F.NUM_JET_FEATURES)
        np.testing.assert_allclose(graph.jet_features[0, 3].item(), np.log1p(len(record.cell_e)), rtol=1e-6)
        np.testing.assert_allclose(graph.jet_features[0, 4].item(), np.log1p(len(record.track_pt)), rtol=1e-6)
        np.testing.assert_allclose(float(graph.energy_ref), record.jet_e, rtol=1e-6)
        assert int(graph.event_id) == record.event_id and int(graph.replica) == record.replica
        assert int(graph.entry) == record.entry
        np.testing.assert_allclose(float(graph.truth_e), record.truth_e, rtol=1e-6)


def test_significance_and_impact_parameters_follow_the_scaling():
    chunk = make_chunk([dict(cell_e=[2.0, -0.1], cell_eta=[0.0, 0.1], cell_phi=[0.0, 0.1], cell_layer=[0, 3],
                             cell_sigma=[0.02, 0.05], track_pt=[5.0], track_eta=[0.05], track_phi=[0.0],
                             track_d0=[0.1], track_z0=[-0.2], track_charge=[-1])])
    scaling = FeatureScaling(significance_scale=4.0, d0_scale_mm=0.5, z0_scale_mm=0.25, energy_floor_gev=0.01,
                             energy_reference="absolute")
    graph = build_graphs(chunk, GraphConfig(scaling=scaling)).graph(0)
    np.testing.assert_allclose(graph.x[:2, F.SIGNIFICANCE].numpy(), np.arcsinh([100 / 4, -2 / 4]), rtol=1e-6)
    assert graph.x[1, F.LOG_ENERGY] == pytest.approx(np.log(0.01) / scaling.log_energy_scale)  # negative: floored
    assert graph.x[2, F.D0] == pytest.approx(np.arcsinh(0.2)) and graph.x[2, F.Z0] == pytest.approx(np.arcsinh(-0.8))
    assert graph.x[2, F.CHARGE] == -1
    assert graph.energy[1] == pytest.approx(-0.1)  # energies stay physical, sign included


def test_phi_is_wrapped_around_the_jet_axis():
    # a jet at phi = 3.1 whose cells sit across the boundary at -3.1
    chunk = make_chunk([dict(jet_phi=3.1, cell_e=[5.0, 4.0, 3.0], cell_eta=[0.0, 0.02, 0.0],
                             cell_phi=[3.12, -3.13, -3.1], cell_layer=[1, 1, 1])])
    graph = build_graphs(chunk).graph(0)
    expected = wrap(np.array([3.12, -3.13, -3.1]) - 3.1)
    np.testing.assert_allclose(graph.pos[:, 1].numpy(), expected, atol=1e-6)
    assert (graph.edge_attr[:, F.EDGE_DELTA_R] < 0.2).all()


def test_node_budget_keeps_the_most_energetic(records):
    config = GraphConfig(max_cells=5, max_tracks=2, remainder_nodes=False, scaling={"energy_reference": "absolute"})
    graphs = build_graphs(records, config)
    for i in range(len(records)):
        graph = graphs.graph(i)
        cells = np.asarray(records[i].cell_e)
        tracks = np.asarray(records[i].track_pt)
        n_cells, n_tracks = min(len(cells), 5), min(len(tracks), 2)
        assert graph.num_nodes == n_cells + n_tracks
        np.testing.assert_allclose(graph.energy[:n_cells].numpy(), np.sort(cells)[::-1][:n_cells], rtol=1e-6)
        kept_pt = np.exp(graph.x[n_cells:, F.LOG_ENERGY].numpy() * config.scaling.log_energy_scale)
        np.testing.assert_allclose(kept_pt, np.sort(tracks)[::-1][:n_tracks], rtol=1e-5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 3), max_size=12), max_size=8), st.one_of(st.none(), st.integers(1, 6)))
def test_top_k_per_group_matches_a_sort(groups, k):
    values = np.array([v for group in groups for v in group], dtype=np.float64)
    counts = np.array([len(group) for group in groups], dtype=np.int64)
    index, kept = top_k_per_group(values, counts, k)
    expected, start = [], 0
    for count in counts:
        order = sorted(range(count), key=lambda i: (-values[start + i], i))
        expected.extend(start + i for i in order[:count if k is None else k])
        start += count
    assert index.tolist() == expected
    assert kept.tolist() == [c if k is None else min(c, k) for c in counts]


# ---------------------------------------------------------------- edges
def _edges_of(graph):
    return list(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist(),
                    graph.edge_attr[:, F.EDGE_TYPE].long().tolist()))


def test_edges_are_valid_and_typed(records):
    config = GraphConfig()
    graphs = build_graphs(records, config)
    for i in range(len(records)):
        graph = graphs.graph(i)
        n = graph.num_nodes
        edges = _edges_of(graph)
        assert all(0 <= s < n and 0 <= t < n for s, t, _ in edges)
        assert all(s != t for s, t, _ in edges), "self loop"
        assert len(set(edges)) == len(edges), "duplicate edge"
        node_type = graph.node_type.tolist()
        for s, t, kind in edges:
            if kind == F.SAME_LAYER:
                assert node_type[s] == node_type[t] < F.TRACK
            elif kind == F.ADJACENT_LAYER:
                assert abs(node_type[s] - node_type[t]) == 1 and max(node_type[s], node_type[t]) < F.TRACK
            elif kind == F.TRACK_TO_CELL:
                assert node_type[s] == F.TRACK and node_type[t] < F.TRACK
            else:
                assert kind == F.CELL_TO_TRACK and node_type[s] < F.TRACK and node_type[t] == F.TRACK
        # both track directions come in pairs
        forward = {(s, t) for s, t, kind in edges if kind == F.TRACK_TO_CELL}
        assert forward == {(t, s) for s, t, kind in edges if kind == F.CELL_TO_TRACK}


def test_edge_attributes_follow_positions(records):
    graphs = build_graphs(records)
    batch = graphs.batch()
    source, target = batch.edge_index
    delta = (batch.pos[source] - batch.pos[target]).double()
    d_phi = torch.from_numpy(wrap(delta[:, 1].numpy()))
    torch.testing.assert_close(batch.edge_attr[:, F.EDGE_DELTA_ETA].double(), delta[:, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(batch.edge_attr[:, F.EDGE_DELTA_PHI].double(), d_phi, atol=1e-6, rtol=0)
    torch.testing.assert_close(batch.edge_attr[:, F.EDGE_DELTA_R].double(), torch.hypot(delta[:, 0], d_phi),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(edge_attributes_torch(batch.pos, batch.edge_index, batch.edge_attr[:, F.EDGE_TYPE]),
                               batch.edge_attr)


def test_edge_attributes_wrap_phi_differences():
    pos = torch.tensor([[0.0, 3.1], [0.1, -3.1]])
    edge_index = torch.tensor([[0, 1], [1, 0]])
    for function in (edge_attributes, edge_attributes_torch):
        attr = function(pos, edge_index, torch.zeros(2))
        torch.testing.assert_close(attr[:, F.EDGE_DELTA_PHI], torch.tensor([6.2 - 2 * math.pi, 2 * math.pi - 6.2]))


def test_same_layer_edges_are_the_nearest_neighbours(records):
    config = GraphConfig(max_cells=200, max_tracks=None)  # a brute-force check: a few jets of 200 cells
    graphs = build_graphs(records, config)
    for i in range(min(len(records), 4)):
        graph = graphs.graph(i)
        pos = graph.pos.double().numpy()
        node_type = graph.node_type.numpy()
        edges = _edges_of(graph)
        for layer in range(schema.N_CALO_LAYERS):
            cells = np.flatnonzero(node_type == layer)
            k = config.k_same_layer[layer]
            for cell in cells:
                chosen = [s for s, t, kind in edges if t == cell and kind == F.SAME_LAYER]
                assert len(chosen) == min(k, len(cells) - 1)
                others = [c for c in cells if c != cell and c not in chosen]
                distance = lambda c: np.hypot(*(pos[c] - pos[cell]))  # noqa: E731
                if chosen and others:  # ties allowed: nothing left out is nearer than what was taken
                    assert max(map(distance, chosen)) <= min(map(distance, others)) + 1e-6
            # adjacent layers: k_adjacent nearest of each neighbouring layer
            for other in (layer - 1, layer + 1):
                if 0 <= other < schema.N_CALO_LAYERS:
                    n_other = int((node_type == other).sum())
                    for cell in cells:
                        incoming = [s for s, t, kind in edges if t == cell and kind == F.ADJACENT_LAYER
                                    and node_type[s] == other]
                        assert len(incoming) == min(config.k_adjacent_layer[layer], n_other)


def test_tracks_link_to_the_cells_nearest_their_extrapolation():
    chunk = make_chunk([dict(cell_e=[3.0, 2.0, 1.0, 1.0], cell_eta=[0.0, 0.3, 0.0, 0.3], cell_phi=[0.0, 0.0, 0.0, 0.0],
                             cell_layer=[0, 0, 3, 3], track_pt=[10.0], track_eta=[0.0], track_phi=[0.0],
                             track_eta_layer0=[0.29], track_phi_layer0=[0.0],
                             **{f"track_eta_layer{layer}": [float("nan")] for layer in (1, 2, 4, 5)},
                             track_eta_layer3=[0.01], track_phi_layer3=[0.0])])
    graph = build_graphs(chunk, GraphConfig(k_track=1)).graph(0)
    linked = sorted(t for s, t, kind in _edges_of(graph) if kind == F.TRACK_TO_CELL)
    assert linked == [1, 2]  # layer 0: the cell at eta 0.3; layer 3: the one at 0; NaN layers: none


def test_empty_and_cell_free_jets_build():
    chunk = make_chunk([dict(), dict(track_pt=[3.0, 2.0], track_eta=[0.0, 0.1], track_phi=[0.0, 0.1]),
                        dict(cell_e=[1.0], cell_eta=[0.0], cell_phi=[0.0], cell_layer=[5])])
    graphs = build_graphs(chunk)
    assert graphs.node_counts.tolist() == [0, 2, 1]
    assert graphs.edge_counts.tolist() == [0, 0, 0]
    batch = graphs.batch()
    assert batch.num_graphs == 3 and batch.x.shape == (3, F.NUM_NODE_FEATURES)
    assert [g.num_nodes for g in batch.to_data_list()] == [0, 2, 1]


def test_bad_layer_is_refused():
    chunk = make_chunk([dict(cell_e=[1.0], cell_eta=[0.0], cell_phi=[0.0], cell_layer=[6])])
    with pytest.raises(ValueError, match="cell_layer 6 outside 0..5"):
        build_graphs(chunk)


def test_missing_fields_are_named(records):
    with pytest.raises(KeyError, match="cell_sigma"):
        build_graphs(records[[name for name in ak.fields(records) if name != "cell_sigma"]])


# ---------------------------------------------------------------- batching
def test_fast_batch_equals_pyg_collate(records):
    graphs = build_graphs(records)
    order = torch.tensor([3, 0, 5, 1])
    fast = graphs.batch(order)
    reference = Batch.from_data_list([graphs.graph(i) for i in order.tolist()])
    assert set(fast.keys()) == set(reference.keys())
    for key in reference.keys():
        torch.testing.assert_close(fast[key], reference[key], msg=key)
    assert fast.num_graphs == 4
    for got, index in zip(fast.to_data_list(), order.tolist()):
        expected = graphs.graph(index)
        for key in expected.keys():
            torch.testing.assert_close(got[key], expected[key], msg=key)
    assert fast.jet_index.tolist() == reference.jet_index.tolist()  # ids are not shifted by node counts


def test_gather_batch_mixes_chunks(records):
    first, second = build_graphs(records[:6]), build_graphs(records[6:])
    batch = gather_batch([(first, torch.tensor([1, 0])), (second, torch.tensor([2]))])
    assert batch.event_id.tolist() == [records[1].event_id, records[0].event_id, records[8].event_id]
    for got, expected in zip(batch.to_data_list(), [first.graph(1), first.graph(0), second.graph(2)]):
        torch.testing.assert_close(got.edge_index, expected.edge_index)
        torch.testing.assert_close(got.x, expected.x)


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_shipped_configs_load_and_round_trip(name):
    config = load_graph_config(f"configs/graphs/{name}.yaml")
    assert GraphConfig.from_dict(config.to_dict()) == config
    assert (config.max_cells is None) == (name == "gpu")


def test_config_errors_teach():
    with pytest.raises(GraphConfigError, match="did you mean 'max_cells'"):
        GraphConfig.from_dict({"max_cell": 10})
    with pytest.raises(GraphConfigError, match="one per layer"):
        GraphConfig(k_same_layer=[8, 8])
    with pytest.raises(GraphConfigError, match="positive int or null"):
        GraphConfig(max_cells=0)
    with pytest.raises(GraphConfigError, match="did you mean 'd0_scale_mm'"):
        GraphConfig.from_dict({"scaling": {"d0_scale": 1.0}})
    with pytest.raises(FileNotFoundError, match="give a path or a shipped one: cpu, gpu"):
        load_graph_config("no/such/config.yaml")
    assert GraphConfig(k_track=2).k_track == (2,) * 6
    assert GraphConfig.from_dict({"graph": {"max_cells": 10}}).max_cells == 10


def test_feature_scaling_is_plain_data():
    scaling = FeatureScaling(log_energy_scale=3.0)
    assert FeatureScaling.from_dict(scaling.to_dict()) == scaling
    assert all(isinstance(value, float) for key, value in scaling.to_dict().items() if key != "energy_reference")
    assert FeatureScaling.from_dict({"energy_reference": "jet"}).relative
    with pytest.raises(ValueError, match="energy_reference must be one of absolute, jet"):
        FeatureScaling(energy_reference="event")
    with pytest.raises(ValueError, match="positive"):
        FeatureScaling(angle_scale=0.0)
    column = scaling.significance_column(torch.tensor([-50.0, 0.0, 1e4]))
    torch.testing.assert_close(scaling.significance_from_column(column), torch.tensor([-50.0, 0.0, 1e4]))


def test_layout_constants_are_consistent():
    assert F.NUM_NODE_FEATURES == len(F.NODE_FEATURE_NAMES) == 15
    assert F.NODE_FEATURE_NAMES[F.LOG_COUNT] == "log_count" and len(F.JET_FEATURE_NAMES) == F.NUM_JET_FEATURES
    assert F.NODE_FEATURE_NAMES[F.SIGNIFICANCE] == "significance"
    assert F.NODE_FEATURE_NAMES[F.NODE_TYPE_OFFSET + F.TRACK] == "is_track"
    assert F.EDGE_FEATURE_NAMES[F.EDGE_TYPE] == "edge_type" and len(F.EDGE_TYPE_NAMES) == 4


# ---------------------------------------------------------------- node counts
def test_node_count_report(jets_file):
    report = node_count_report(jets_file, {"max_cells": 10, "max_tracks": 3, "remainder_nodes": False})
    assert report["entries"] > 0
    for name in ("cells", "tracks", "nodes"):
        before, after = report[f"{name}_before"], report[f"{name}_after"]
        quantiles = [before[f"q{q:g}"] for q in report["quantiles"]]
        assert quantiles == sorted(quantiles)
        assert all(after[key] <= before[key] for key in before)
    assert report["nodes_after"]["q1"] <= 13
    assert "nodes_after" in format_report(report)
