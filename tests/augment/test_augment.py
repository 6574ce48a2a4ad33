"""Augmentations (gnnjets.augment): physics invariants, graph consistency, seeding, no mutation.

Each property is checked on single graphs and on batches of graphs built from the ``jets_file``
fixture (the synthetic file now; the simulation's files later).
"""

from __future__ import annotations

import gnnjets.graphs  # noqa: F401, I001 - first: it imports torch_geometric without its DeprecationWarning

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch_geometric.transforms import Compose

from gnnjets.augment import (CollinearSplit, JetCompose, RotateJet, SoftSmear, TranslateJet, augmentations_from_config,
                             configure_transform, default_augmentations, energy_weighted_axis, jetclr_augmentations,
                             rotate_jet, split_nodes, translate_jet)
from gnnjets.augment.collinear import inherited_edges, inherited_edges_torch
from gnnjets.graphs import FeatureScaling, GraphConfig, build_graphs
from gnnjets.graphs import features as F
from gnnjets.graphs.features import edge_attributes


CONFIG = GraphConfig(max_cells=30, max_tracks=8)
#: hypothesis reruns a test body with the same fixture value; the fixtures here are never modified
REUSE_FIXTURE = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def graphs(records):
    return build_graphs(records, CONFIG)


@pytest.fixture
def batch(graphs):
    return graphs.batch()


@pytest.fixture
def graph(graphs):
    return graphs.graph(int(torch.argmax(graphs.node_counts)))


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


ALL_TRANSFORMS = [
    lambda g: RotateJet(generator=g),
    lambda g: TranslateJet(generator=g),
    lambda g: SoftSmear(generator=g),
    lambda g: CollinearSplit(probability=0.3, generator=g),
    lambda g: CollinearSplit(probability=0.5, split_tracks=True, generator=g),
    lambda g: jetclr_augmentations(generator=g),
]


def per_graph_energy(data):
    if hasattr(data, "ptr") and data.ptr is not None:
        return torch.stack([data.energy[a:b].double().sum() for a, b in zip(data.ptr[:-1], data.ptr[1:])])
    return data.energy.double().sum()[None]


def pairwise_delta_r(pos):
    delta = pos.double()[:, None, :] - pos.double()[None, :, :]
    d_phi = torch.remainder(delta[..., 1] + math.pi, 2 * math.pi) - math.pi
    return torch.hypot(delta[..., 0], d_phi)


def assert_consistent(data, scaling=FeatureScaling()):
    """Everything derived from pos / energy agrees with them, edges are valid, a batch splits again."""
    n = data.num_nodes
    assert data.edge_index.dtype == torch.int64
    assert data.edge_index.numel() == 0 or (0 <= int(data.edge_index.min()) and int(data.edge_index.max()) < n)
    assert not (data.edge_index[0] == data.edge_index[1]).any()
    expected = edge_attributes(data.pos, data.edge_index, data.edge_attr[:, F.EDGE_TYPE])
    torch.testing.assert_close(data.edge_attr, expected, atol=2e-6, rtol=0)
    torch.testing.assert_close(data.x[:, F.DELTA_ETA], scaling.angle_column(data.pos[:, 0]))
    torch.testing.assert_close(data.x[:, F.DELTA_PHI], scaling.angle_column(data.pos[:, 1]))
    cells = data.node_type != F.TRACK
    reference = F.node_energy_reference(data)
    reference = None if reference is None else reference[cells]
    torch.testing.assert_close(data.x[cells, F.LOG_ENERGY], scaling.log_energy_column(data.energy[cells], reference),
                               atol=1e-5, rtol=1e-5)
    assert torch.equal(data.x[:, F.NODE_TYPE_ONEHOT].argmax(1), data.node_type)
    if hasattr(data, "ptr") and data.ptr is not None:
        assert torch.equal(data.batch, torch.sort(data.batch).values)
        parts = data.to_data_list()
        assert sum(part.num_nodes for part in parts) == n
        assert sum(part.edge_index.shape[1] for part in parts) == data.edge_index.shape[1]
        for part in parts:
            assert part.edge_index.numel() == 0 or int(part.edge_index.max()) < part.num_nodes


def snapshot(data):
    return {key: value.clone() for key, value in data.items() if isinstance(value, torch.Tensor)}


@pytest.mark.parametrize("make", ALL_TRANSFORMS)
@pytest.mark.parametrize("on", ["graph", "batch"])
def test_transform_conserves_energy_keeps_graph_valid_and_input_untouched(make, on, request):
    data = request.getfixturevalue(on)
    before = snapshot(data)
    out = make(generator(1))(data)
    torch.testing.assert_close(per_graph_energy(out), per_graph_energy(data), rtol=1e-6, atol=1e-4)
    assert_consistent(out)
    after = snapshot(data)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), f"input {key} modified"
    assert out is not data


@pytest.mark.parametrize("make", ALL_TRANSFORMS)
def test_same_generator_seed_same_result(make, batch):
    first, second, other = (make(generator(seed))(batch) for seed in (5, 5, 6))
    assert torch.equal(first.pos, second.pos) and torch.equal(first.energy, second.energy)
    assert not (first.pos.shape == other.pos.shape and torch.equal(first.pos, other.pos))


def test_rotation_by_two_pi_is_the_identity(batch):
    out = rotate_jet(copy.copy(batch), torch.full((batch.num_graphs,), 2 * math.pi))
    torch.testing.assert_close(out.pos, batch.pos, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.edge_attr, batch.edge_attr, atol=1e-6, rtol=0)


def test_rotation_turns_about_the_energy_weighted_axis(graph):
    axis = energy_weighted_axis(graph.pos, graph.energy, torch.zeros(graph.num_nodes, dtype=torch.int64), 1)[0]
    out = rotate_jet(copy.copy(graph), torch.tensor([math.pi / 2]))
    relative, turned = graph.pos.double() - axis, out.pos.double() - axis
    torch.testing.assert_close(turned, torch.stack([-relative[:, 1], relative[:, 0]], 1), atol=1e-5, rtol=0)
    new_axis = energy_weighted_axis(out.pos, out.energy, torch.zeros(graph.num_nodes, dtype=torch.int64), 1)[0]
    torch.testing.assert_close(new_axis, axis, atol=1e-6, rtol=0)


@settings(max_examples=25, **REUSE_FIXTURE)
@given(angle=st.floats(-10, 10), d_eta=st.floats(-1, 1), d_phi=st.floats(-1, 1))
def test_rotation_and_translation_keep_pairwise_distances(graphs, angle, d_eta, d_phi):
    graph = graphs.graph(0)
    distances = pairwise_delta_r(graph.pos)
    rotated = rotate_jet(copy.copy(graph), torch.tensor([angle]))
    torch.testing.assert_close(pairwise_delta_r(rotated.pos), distances, atol=2e-6, rtol=0)
    moved = translate_jet(copy.copy(graph), torch.tensor([[d_eta, d_phi]]))
    torch.testing.assert_close(pairwise_delta_r(moved.pos), distances, atol=2e-6, rtol=0)
    assert (moved.pos[:, 1].abs() <= math.pi).all()
    assert_consistent(rotated)
    assert_consistent(moved)


def test_translation_wraps_phi_and_keeps_edges(graph):
    out = translate_jet(copy.copy(graph), torch.tensor([[0.0, math.pi - 0.01]]))
    assert (out.pos[:, 1].abs() <= math.pi).all()
    torch.testing.assert_close(out.edge_attr, graph.edge_attr, atol=2e-6, rtol=0)


@settings(max_examples=25, **REUSE_FIXTURE)
@given(st.data())
def test_split_halves_sum_to_the_original(graphs, data):
    graph = graphs.graph(data.draw(st.integers(0, len(graphs) - 1)))
    if graph.num_nodes == 0:
        return
    nodes = sorted(data.draw(st.sets(st.integers(0, graph.num_nodes - 1), min_size=1)))
    fraction = torch.tensor(data.draw(st.lists(st.floats(0, 1), min_size=len(nodes), max_size=len(nodes))))
    out = split_nodes(copy.copy(graph), torch.tensor(nodes), fraction)
    assert out.num_nodes == graph.num_nodes + len(nodes)
    # the new half follows its parent: parent p ends at p + (splits before it), its child right after
    shift = {p: i for i, p in enumerate(nodes)}
    for node in range(graph.num_nodes):
        new = node + sum(1 for p in nodes if p < node)
        if node in shift:
            halves = out.energy[new] + out.energy[new + 1]  # exact, float32
            assert halves == graph.energy[node]
            assert torch.equal(out.pos[new], graph.pos[node]) and torch.equal(out.pos[new + 1], graph.pos[node])
            assert out.node_type[new] == out.node_type[new + 1] == graph.node_type[node]
        else:
            assert out.energy[new] == graph.energy[node]
    assert_consistent(out)


def test_split_node_inherits_its_edges(graph):
    parent = int(graph.edge_index[1, 0])
    out = split_nodes(copy.copy(graph), torch.tensor([parent]), torch.tensor([0.3]))
    child = parent + 1

    def renumber(node):
        return node + (node > parent)

    def neighbours(edge_index, node, column):
        other = 1 - column
        return sorted(edge_index[other, edge_index[column] == node].tolist())

    for column in (0, 1):  # out-edges and in-edges
        expected = [renumber(n) for n in neighbours(graph.edge_index, parent, column)]
        assert neighbours(out.edge_index, renumber(parent), column) == expected
        assert neighbours(out.edge_index, child, column) == expected
    assert not ((out.edge_index[0] == parent) & (out.edge_index[1] == child)).any()  # halves not linked


def test_split_on_a_batch_equals_split_per_graph(graphs):
    indices = [0, 2, 3]
    batch = graphs.batch(indices)
    nodes = torch.tensor([0, 1, int(batch.ptr[1]) + 2, int(batch.ptr[2])])
    fraction = torch.tensor([0.2, 0.7, 0.5, 0.9])
    out = split_nodes(copy.copy(batch), nodes, fraction)
    for g, part in enumerate(out.to_data_list()):
        start = int(batch.ptr[g])
        mine = (nodes >= start) & (nodes < int(batch.ptr[g + 1]))
        expected = split_nodes(graphs.graph(indices[g]), nodes[mine] - start, fraction[mine])
        for key in ("x", "pos", "energy", "node_type", "edge_index", "edge_attr"):
            torch.testing.assert_close(part[key], expected[key], msg=key)


def test_split_torch_path_equals_compiled_path(batch):
    num_nodes = batch.num_nodes
    is_split = (torch.arange(num_nodes) % 3 == 0).long()
    new_number = torch.arange(num_nodes) + torch.cumsum(is_split, 0) - is_split
    child_number = torch.where(is_split.bool(), new_number + 1, -1)
    edge_ptr = batch._slice_dict["edge_index"]
    compiled = inherited_edges(batch.edge_index, batch.edge_attr, new_number, child_number, edge_ptr)
    reference = inherited_edges_torch(batch.edge_index, batch.edge_attr, new_number, child_number, edge_ptr)
    for got, expected in zip(compiled, reference):
        torch.testing.assert_close(got, expected)


def test_split_probability_and_eligibility(batch):
    assert CollinearSplit(probability=0.0)(batch).num_nodes == batch.num_nodes
    everything = CollinearSplit(probability=1.0, generator=generator())(batch)
    eligible = (batch.energy > 0) & (batch.node_type != F.TRACK)
    assert everything.num_nodes == batch.num_nodes + int(eligible.sum())
    assert (everything.node_type == F.TRACK).sum() == (batch.node_type == F.TRACK).sum()
    with_tracks = CollinearSplit(probability=1.0, split_tracks=True, generator=generator())(batch)
    assert with_tracks.num_nodes == batch.num_nodes + int((batch.energy > 0).sum())


def test_soft_smearing_moves_soft_nodes_more(batch):
    out = SoftSmear(lambda_soft_gev=0.1, energy_floor_gev=0.1, generator=generator())(batch)
    shift = (out.pos - batch.pos).norm(dim=1)
    hard = batch.energy > 50
    soft = (batch.energy > 0.1) & (batch.energy < 1)
    assert shift[hard].mean() < 0.01 and shift[soft].mean() > 0.05
    assert torch.equal(out.edge_index, batch.edge_index)


def test_configure_transform_sets_generator_and_scaling_on_copies():
    recipe = default_augmentations()
    scaling = FeatureScaling(angle_scale=0.4)
    configured = configure_transform(recipe, generator=generator(3), scaling=scaling)
    assert all(t.scaling is scaling for t in configured.transforms)
    assert all(t.scaling == FeatureScaling() for t in recipe.transforms)  # original untouched
    assert configure_transform(None) is None


def test_transforms_use_the_scaling_they_are_given(records):
    scaling = FeatureScaling(angle_scale=0.4, log_energy_scale=3.0, significance_scale=2.0)
    graphs = build_graphs(records, GraphConfig(max_cells=30, max_tracks=8, scaling=scaling))
    recipe = configure_transform(jetclr_augmentations(), generator=generator(), scaling=scaling)
    assert_consistent(recipe(graphs.batch()), scaling)


def test_composed_repr_reads_as_a_recipe():
    assert repr(default_augmentations()).splitlines() == [
        "JetCompose([", "  RotateJet(max_angle=6.283),", "  ScaleJetEnergy(max_log_scale=0.1)", "])"]
    text = repr(jetclr_augmentations())
    assert text.splitlines() == ["JetCompose([", "  CollinearSplit(probability=0.1, split_tracks=False),",
                                 "  SoftSmear(lambda_soft_gev=0.1, energy_floor_gev=0.1),",
                                 "  RotateJet(max_angle=6.283),", "  TranslateJet(max_shift=1.000)", "])"]
    assert repr(RotateJet(max_angle=math.pi)) == "RotateJet(max_angle=3.142)"


@pytest.mark.parametrize("steps", [
    lambda g: [CollinearSplit(probability=0.3, generator=g), SoftSmear(generator=g), RotateJet(generator=g),
               TranslateJet(generator=g)],
    lambda g: [RotateJet(generator=g), CollinearSplit(probability=0.5, split_tracks=True, generator=g)],
    lambda g: [TranslateJet(generator=g), SoftSmear(generator=g), CollinearSplit(probability=0.3, generator=g),
               RotateJet(generator=g)],
    lambda g: [SoftSmear(generator=g, scaling=FeatureScaling(angle_scale=0.4)), copy.copy, RotateJet(generator=g)],
])
@pytest.mark.parametrize("on", ["graph", "batch"])
def test_jet_compose_equals_the_steps_one_by_one(steps, on, request):
    data = request.getfixturevalue(on)
    before = snapshot(data)
    expected = data
    for step in steps(generator(5)):
        expected = step(expected)
    composed = JetCompose(steps(generator(5)))(data)
    assert set(composed.keys()) == set(expected.keys())
    for key, value in expected.items():
        assert torch.equal(composed[key], value) if isinstance(value, torch.Tensor) else composed[key] == value, key
    assert all(torch.equal(before[key], value) for key, value in snapshot(data).items())  # input untouched


def test_jet_compose_output_is_consistent(batch):
    assert_consistent(jetclr_augmentations(generator=generator(2))(batch))
    assert_consistent(default_augmentations(generator=generator(2))(batch))
    with pytest.raises(TypeError, match="list of transforms"):
        JetCompose(RotateJet())


def test_augmentations_from_config():
    recipe = augmentations_from_config([{"name": "RotateJet", "max_angle": 1.0}, {"name": "SoftSmear"}])
    assert isinstance(recipe, Compose) and repr(recipe.transforms[0]) == "RotateJet(max_angle=1.000)"
    assert augmentations_from_config(None) is None
    with pytest.raises(KeyError, match="did you mean 'RotateJet'"):
        augmentations_from_config([{"name": "RotateJets"}])
    with pytest.raises(TypeError, match="RotateJet"):
        augmentations_from_config([{"name": "RotateJet", "angle": 1.0}])


@pytest.mark.parametrize("make, message", [
    (lambda: RotateJet(max_angle=7), "max_angle"), (lambda: TranslateJet(max_shift=-1), "max_shift"),
    (lambda: CollinearSplit(probability=1.5), "probability"), (lambda: SoftSmear(energy_floor_gev=0), "positive"),
    (lambda: RotateJet(generator=np.random.default_rng()), "torch.Generator"),
])
def test_bad_arguments_are_refused(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_transforms_pickle_with_their_generator_state(batch):
    import pickle

    for transform in jetclr_augmentations(generator=generator(7)).transforms:
        transform(batch)  # advance the generator
        clone = pickle.loads(pickle.dumps(transform))
        assert repr(clone) == repr(transform)
        first, second = transform(batch), clone(batch)
        assert torch.equal(first.pos, second.pos) and torch.equal(first.energy, second.energy)
