"""gnnjets.nn: shapes, symmetries (node order, batch mates), infrared safety, gradients, configs, seeds,
and the two message-passing blocks against independent reference implementations."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATv2Conv

from gnnjets.graphs.features import (
    CHARGE, D0, NODE_TYPE_ONEHOT, NUM_NODE_FEATURES, NUM_NODE_TYPES, SIGNIFICANCE, TRACK, Z0, edge_attributes,
)
from gnnjets.nn import (
    IR_SAFE_POOLINGS, KINDS, POOLINGS, Backbone, BackboneConfig, ContrastiveModel, EdgeConvBlock, EdgeEncoder,
    GATv2Block, ModelConfig, ModelConfigError, NodeEncoder, ProjectionHead, build_model, build_pooling,
)
from gnnjets.nn.irsafe import energy_biased_softmax, energy_weighted_mean

# ---- random jet graphs in the layout of gnnjets.graphs.features --------------------------------


def random_jet(generator: torch.Generator, n_cells: int = 14, n_tracks: int = 4, in_degree: int = 4) -> Data:
    """Cells (random layers) then tracks; features ~ N(0, 1) with the node-type one-hot; energies
    ~ U(-0.1, 10) GeV (some negative, as noise cells); ``in_degree`` in-edges per node from random
    other nodes; random edge types."""
    n = n_cells + n_tracks
    node_type = torch.cat([torch.randint(0, TRACK, (n_cells,), generator=generator),
                           torch.full((n_tracks,), TRACK)])
    x = torch.randn(n, NUM_NODE_FEATURES, generator=generator)
    x[:, NODE_TYPE_ONEHOT] = F.one_hot(node_type, NUM_NODE_TYPES).float()
    pos = 0.2 * torch.randn(n, 2, generator=generator)
    energy = 10.1 * torch.rand(n, generator=generator) - 0.1
    target = torch.arange(n).repeat_interleave(in_degree)
    source = (target + torch.randint(1, n, target.shape, generator=generator)) % n
    edge_index = torch.stack([source, target])
    edge_type = torch.randint(0, 4, (edge_index.shape[1],), generator=generator)
    return Data(x=x, pos=pos, energy=energy, node_type=node_type, edge_index=edge_index,
                edge_attr=edge_attributes(pos, edge_index, edge_type))


def random_jets(count: int = 4, seed: int = 0) -> list[Data]:
    generator = torch.Generator().manual_seed(seed)
    return [random_jet(generator, n_cells=10 + 3 * i, n_tracks=i % 3) for i in range(count)]


def permuted(jet: Data, generator: torch.Generator) -> Data:
    """The same jet with its nodes and its edges in another order (edge_index remapped)."""
    node_order = torch.randperm(jet.num_nodes, generator=generator)  # new node k is old node node_order[k]
    new_index = torch.empty_like(node_order)
    new_index[node_order] = torch.arange(jet.num_nodes)
    edge_order = torch.randperm(jet.num_edges, generator=generator)
    return Data(x=jet.x[node_order], pos=jet.pos[node_order], energy=jet.energy[node_order],
                node_type=jet.node_type[node_order], edge_index=new_index[jet.edge_index][:, edge_order],
                edge_attr=jet.edge_attr[edge_order])


def model_for(kind: str, pooling: str = "mean", seed: int = 0, **backbone) -> ContrastiveModel:
    """A small model of ``kind``; without a global context or appended jet scalars unless asked (the
    version-0.1 layout these tests were written for: both break infrared safety by design)."""
    backbone = {"global_context": False, "append_jet_features": False, **backbone}
    config = ModelConfig(backbone=BackboneConfig(kind=kind, pooling=pooling, hidden=16, layers=2, embedding_dim=24,
                                                 heads=4, **backbone), projection_dim=8, projection_hidden=12)
    return build_model(config, seed=seed).eval()


ALL_BACKBONES = [(kind, pooling) for kind in KINDS for pooling in POOLINGS]

# ---- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,pooling", ALL_BACKBONES)
def test_output_shapes(kind, pooling):
    model = model_for(kind, pooling)
    batch = Batch.from_data_list(random_jets(5))
    h, z = model(batch)
    assert h.shape == (5, 24) and z.shape == (5, 8)
    assert torch.isfinite(h).all() and torch.isfinite(z).all()


def test_default_sizes():
    model = build_model(seed=0)
    h, z = model(Batch.from_data_list(random_jets(3)))
    assert h.shape == (3, 128) and z.shape == (3, 128)
    assert model.config == ModelConfig()


def test_single_graph_without_batch_vector():
    jet = random_jets(1)[0]
    model = model_for("edgeconv")
    h_single, _ = model(jet)
    h_batch, _ = model(Batch.from_data_list([jet]))
    assert h_single.shape == (1, 24)
    torch.testing.assert_close(h_single, h_batch)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_shapes_and_empty_graphs(pooling):
    pool = build_pooling(pooling, 6)
    x = torch.randn(7, 6)
    batch = torch.tensor([0, 0, 0, 2, 2, 2, 2])  # graph 1 and graph 3 have no nodes
    energy = torch.rand(7) + 0.1
    out = pool(x, batch, 4, energy)
    assert out.shape == (4, 6)
    assert torch.equal(out[1], torch.zeros(6)) and torch.equal(out[3], torch.zeros(6))
    assert torch.isfinite(out).all()


def test_pooling_values():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    batch = torch.tensor([0, 0, 1])
    energy = torch.tensor([1.0, 3.0, -2.0])  # graph 1: only a negative-energy node
    torch.testing.assert_close(build_pooling("sum", 2)(x, batch, 2), torch.tensor([[4.0, 2.0], [5.0, 4.0]]))
    torch.testing.assert_close(build_pooling("mean", 2)(x, batch, 2), torch.tensor([[2.0, 1.0], [5.0, 4.0]]))
    torch.testing.assert_close(build_pooling("energy", 2)(x, batch, 2, energy),
                               torch.tensor([[2.5, 1.5], [0.0, 0.0]]))
    attention = build_pooling("attention", 2)
    with torch.no_grad():  # constant scores: attention pooling becomes the mean
        attention.gate[-1].weight.zero_()
    torch.testing.assert_close(attention(x, batch, 2), torch.tensor([[2.0, 1.0], [5.0, 4.0]]))


def test_unknown_pooling():
    with pytest.raises(ValueError, match="pooling must be one of sum, mean, attention, energy, not 'avg'"):
        build_pooling("avg", 4)


# ---- symmetries --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,pooling", ALL_BACKBONES)
def test_permutation_invariance(kind, pooling):
    model = model_for(kind, pooling)
    jets = random_jets(4)
    generator = torch.Generator().manual_seed(1)
    h, _ = model(Batch.from_data_list(jets))
    h_permuted, _ = model(Batch.from_data_list([permuted(jet, generator) for jet in jets]))
    torch.testing.assert_close(h_permuted, h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("aggregation", ["sum", "max", "energy"])
def test_permutation_invariance_edgeconv_aggregations(aggregation):
    model = model_for("edgeconv", aggregation=aggregation)
    jets = random_jets(3)
    generator = torch.Generator().manual_seed(2)
    h, _ = model(Batch.from_data_list(jets))
    h_permuted, _ = model(Batch.from_data_list([permuted(jet, generator) for jet in jets]))
    torch.testing.assert_close(h_permuted, h, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind,pooling", ALL_BACKBONES)
def test_batch_independence(kind, pooling):
    """A jet's h is the same alone, among other jets, and at another place in the batch."""
    model = model_for(kind, pooling)
    jets = random_jets(4)
    others = random_jets(3, seed=5)
    alone = torch.cat([model(Batch.from_data_list([jet]))[0] for jet in jets])
    together, _ = model(Batch.from_data_list(jets))
    mixed, _ = model(Batch.from_data_list([others[0], jets[2], others[1], jets[0], jets[3], others[2], jets[1]]))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed[[3, 6, 1, 4]], alone, rtol=1e-5, atol=1e-5)


# ---- infrared safety ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(n_nodes=st.integers(1, 12), extra_energy=st.sampled_from([0.0, -0.05, -3.0]), seed=st.integers(0, 2**16))
def test_energy_pooling_ignores_zero_energy_nodes(n_nodes, extra_energy, seed):
    """The pooling op alone: a node of zero or negative energy, whatever its phi, changes nothing."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_nodes, 5, generator=generator)
    energy = torch.rand(n_nodes, generator=generator) + 0.01
    batch = torch.zeros(n_nodes, dtype=torch.int64)
    pool = build_pooling("energy", 5)
    reference = pool(x, batch, 1, energy)
    extra = 100 * torch.randn(1, 5, generator=generator)
    position = int(torch.randint(0, n_nodes + 1, (), generator=generator))
    x_more = torch.cat([x[:position], extra, x[position:]])
    energy_more = torch.cat([energy[:position], torch.tensor([extra_energy]), energy[position:]])
    torch.testing.assert_close(pool(x_more, torch.zeros(n_nodes + 1, dtype=torch.int64), 1, energy_more), reference)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_which_poolings_are_ir_safe(pooling):
    """Exactly the poolings listed in IR_SAFE_POOLINGS are unchanged by a zero-energy node."""
    torch.manual_seed(0)
    pool = build_pooling(pooling, 4)
    x, energy, batch = torch.randn(5, 4), torch.rand(5) + 0.1, torch.zeros(5, dtype=torch.int64)
    before = pool(x, batch, 1, energy)
    after = pool(torch.cat([x, torch.randn(1, 4)]), torch.zeros(6, dtype=torch.int64), 1,
                 torch.cat([energy, torch.zeros(1)]))
    assert torch.allclose(before, after, atol=1e-6) == (pooling in IR_SAFE_POOLINGS)


def test_energy_pooling_is_continuous_in_a_soft_node():
    x, energy, batch = torch.randn(4, 3), torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.zeros(5, dtype=torch.int64)
    pool = build_pooling("energy", 3)
    reference = pool(x, batch[:4], 1, energy)
    soft = pool(torch.cat([x, torch.full((1, 3), 50.0)]), batch, 1, torch.cat([energy, torch.tensor([1e-6])]))
    assert (soft - reference).abs().max() < 1e-4  # ~ 1e-6 / 10 * 50


def with_soft_node(jet: Data, energy: float, generator: torch.Generator) -> Data:
    """``jet`` plus one node of the given energy, wired to and from existing nodes; old edges kept."""
    n = jet.num_nodes
    x = torch.cat([jet.x, torch.randn(1, NUM_NODE_FEATURES, generator=generator)])
    x[n, NODE_TYPE_ONEHOT] = F.one_hot(torch.tensor(1), NUM_NODE_TYPES).float()
    pos = torch.cat([jet.pos, 0.1 * torch.randn(1, 2, generator=generator)])
    neighbours = torch.randperm(n, generator=generator)[:5]
    new_edges = torch.cat([torch.stack([torch.full((5,), n), neighbours]),
                           torch.stack([neighbours, torch.full((5,), n)])], dim=1)
    edge_index = torch.cat([jet.edge_index, new_edges], dim=1)
    edge_type = torch.cat([jet.edge_attr[:, 3], torch.zeros(10)])
    return Data(x=x, pos=pos, energy=torch.cat([jet.energy, torch.tensor([energy])]),
                node_type=torch.cat([jet.node_type, torch.tensor([1])]), edge_index=edge_index,
                edge_attr=edge_attributes(pos, edge_index, edge_type))


IR_SAFE_BACKBONES = {
    "edgeconv": dict(kind="edgeconv", aggregation="energy", pooling="energy"),
    "gatv2": dict(kind="gatv2", attention_energy_beta=0.5, pooling="energy"),
}


@pytest.mark.parametrize("name", IR_SAFE_BACKBONES)
@pytest.mark.parametrize("energy", [0.0, -0.2])
def test_ir_safe_backbone_on_a_fixed_graph(name, energy):
    """Energy-weighted aggregation / attention + energy pooling: a zero-energy node with edges to and
    from the jet leaves h unchanged; the same backbone with plain mean aggregation does not."""
    generator = torch.Generator().manual_seed(3)
    jets = random_jets(3)
    jets_soft = [with_soft_node(jet, energy, generator) for jet in jets]
    safe = model_for(**IR_SAFE_BACKBONES[name])
    torch.testing.assert_close(safe(Batch.from_data_list(jets_soft))[0], safe(Batch.from_data_list(jets))[0],
                               rtol=1e-5, atol=1e-5)
    unsafe = model_for(name, pooling="energy")
    assert not torch.allclose(unsafe(Batch.from_data_list(jets_soft))[0], unsafe(Batch.from_data_list(jets))[0],
                              atol=1e-4)


def test_energy_biased_softmax_matches_reference():
    torch.manual_seed(0)
    logits, energy = torch.randn(6, 2), torch.tensor([2.0, 0.5, 0.0, 3.0, -1.0, 0.0])
    index = torch.tensor([0, 0, 0, 1, 2, 2])  # group 2: no positive energy
    alpha = energy_biased_softmax(logits, index, energy, 0.5, dim_size=4)
    weights = energy.clamp(min=0)[:, None] ** 0.5 * logits.exp()  # independent formula, group by group
    expected = torch.zeros(6, 2)
    expected[:3] = weights[:3] / weights[:3].sum(0)
    expected[3] = 1.0
    torch.testing.assert_close(alpha, expected)
    logits.requires_grad_(True)
    energy_biased_softmax(logits, index, energy, 0.5, dim_size=4).sum().backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="'beta' must be positive"):
        energy_biased_softmax(logits, index, energy, 0.0, dim_size=4)


def test_energy_weighted_mean_values():
    src = torch.tensor([[1.0], [3.0], [10.0]])
    out = energy_weighted_mean(src, torch.tensor([0, 0, 1]), torch.tensor([1.0, 3.0, 0.0]), dim_size=3)
    torch.testing.assert_close(out, torch.tensor([[2.5], [0.0], [0.0]]))


# ---- the blocks against independent references -------------------------------------------------


def graph_inputs(seed: int = 0, hidden: int = 8):
    batch = Batch.from_data_list(random_jets(3, seed=seed))
    torch.manual_seed(seed)
    return torch.randn(batch.num_nodes, hidden), batch.edge_index, EdgeEncoder()(batch.edge_attr), batch.energy


@pytest.mark.parametrize("aggregation", ["mean", "sum", "max", "energy"])
def test_edgeconv_matches_textbook_per_edge_mlp(aggregation):
    torch.manual_seed(0)
    block = EdgeConvBlock(8, 7, aggregation=aggregation)
    h, edge_index, edge_features, energy = graph_inputs()
    source, target = edge_index
    u = block.norm(h)
    messages = block.lin_out(F.silu(block.lin_message(torch.cat([u[target], u[source] - u[target], edge_features], 1))))
    expected = torch.zeros_like(h)
    for node in range(h.shape[0]):  # plain loop: the reference does not share the vectorised code
        incoming = (target == node).nonzero().squeeze(1)
        if not len(incoming):
            continue
        m = messages[incoming]
        if aggregation == "mean":
            expected[node] = m.mean(0)
        elif aggregation == "sum":
            expected[node] = m.sum(0)
        elif aggregation == "max":
            expected[node] = m.max(0).values
        else:
            w = energy[source[incoming]].clamp(min=0)
            expected[node] = (w[:, None] * m).sum(0) / w.sum() if w.sum() > 0 else 0.0
    torch.testing.assert_close(block(h, edge_index, edge_features, energy), h + expected, rtol=1e-5, atol=1e-5)


def test_gatv2_attention_matches_pyg():
    torch.manual_seed(0)
    block = GATv2Block(8, 7, heads=2)
    reference = GATv2Conv(8, 4, heads=2, edge_dim=7, add_self_loops=False)
    with torch.no_grad():
        reference.lin_l.weight.copy_(block.lin_source.weight)
        reference.lin_l.bias.copy_(block.lin_source.bias)
        reference.lin_r.weight.copy_(block.lin_target.weight)
        reference.lin_r.bias.copy_(block.lin_target.bias)
        reference.lin_edge.weight.copy_(block.lin_edge.weight)
        reference.att.copy_(block.att[None])
        block.bias.copy_(torch.randn(8))
        reference.bias.copy_(block.bias)
    u, edge_index, edge_features, _ = graph_inputs()
    torch.testing.assert_close(block.attention(u, edge_index, edge_features),
                               reference(u, edge_index, edge_features), rtol=1e-5, atol=1e-5)


def test_gatv2_energy_beta_needs_energy():
    block = GATv2Block(8, 7, heads=2, energy_beta=0.5)
    h, edge_index, edge_features, _ = graph_inputs()
    with pytest.raises(ValueError, match="needs the node energies"):
        block(h, edge_index, edge_features)


def test_node_encoder_reads_only_its_type_columns():
    torch.manual_seed(0)
    encoder = NodeEncoder(8)
    jet = random_jets(1)[0]
    out = encoder(jet.x, jet.node_type)
    x = jet.x.clone()
    is_track = jet.node_type == TRACK
    x[:, [CHARGE, D0, Z0]] = torch.where(is_track[:, None], x[:, [CHARGE, D0, Z0]], 7.0)  # cells: not read
    x[:, SIGNIFICANCE] = torch.where(is_track, 7.0, x[:, SIGNIFICANCE])  # tracks: not read
    torch.testing.assert_close(encoder(x, jet.node_type), out)
    x[:, SIGNIFICANCE] = 0.0  # read by cells
    assert not torch.allclose(encoder(x, jet.node_type)[~is_track], out[~is_track])


def test_edge_encoder():
    attr = torch.tensor([[0.01, -0.02, 0.0224, 0.0], [0.1, 0.0, 0.1, 3.0]])
    out = EdgeEncoder(angle_scale=0.1)(attr)
    torch.testing.assert_close(out, torch.tensor([[0.1, -0.2, 0.224, 1, 0, 0, 0], [1.0, 0.0, 1.0, 0, 0, 0, 1]]))
    with pytest.raises(ValueError, match="edge types must lie in 0..3"):
        EdgeEncoder()(torch.tensor([[0.0, 0.0, 0.0, 4.0]]))
    with pytest.raises(ValueError, match=r"edge_attr must have shape \(E, 4\)"):
        EdgeEncoder()(torch.zeros(3, 3))


# ---- gradients, errors, configs, seeds ---------------------------------------------------------


@pytest.mark.parametrize("kind,pooling", ALL_BACKBONES)
def test_gradients_reach_every_parameter(kind, pooling):
    model = model_for(kind, pooling, attention_energy_beta=0.5 if pooling == "energy" else 0.0).train()
    h, z = model(Batch.from_data_list(random_jets(4)))
    (h.square().mean() + z.square().mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().max() > 0, name


def test_wrong_feature_count_is_explained():
    jet = random_jets(1)[0]
    jet.x = jet.x[:, :-1]
    with pytest.raises(ValueError, match=rf"built for {NUM_NODE_FEATURES} feature columns \(BackboneConfig.node_features\)"):
        model_for("edgeconv")(jet)


def test_missing_energy_is_explained():
    jet = random_jets(1)[0]
    del jet.energy
    with pytest.raises(ValueError, match="needs the graph attribute 'energy'; this graph has: edge_attr, edge_index"):
        model_for("edgeconv", pooling="energy")(jet)


def test_config_round_trip_rebuilds_the_same_model():
    config = ModelConfig(backbone=BackboneConfig(kind="gatv2", hidden=16, layers=2, heads=2, pooling="attention",
                                                 attention_energy_beta=0.5, embedding_dim=32), projection_dim=16)
    plain = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(plain) == config
    assert ModelConfig.from_dict({"model": plain}) == config
    assert BackboneConfig.from_dict(config.backbone.to_dict()) == config.backbone
    model = build_model(config, seed=0).eval()
    rebuilt = build_model(plain)
    rebuilt.load_state_dict(model.state_dict())
    batch = Batch.from_data_list(random_jets(2))
    torch.testing.assert_close(rebuilt.eval()(batch)[1], model(batch)[1])
    assert isinstance(Backbone(config.backbone.to_dict()), Backbone)


def test_build_model_accepts_a_backbone_config():
    model = build_model(BackboneConfig(hidden=8, layers=1), seed=0)
    assert model.config.backbone.hidden == 8 and model.config.projection_dim == 128


@pytest.mark.parametrize("values,message", [
    ({"backbone": {"hiden": 32}}, "unknown backbone config key 'hiden'; did you mean 'hidden'?"),
    ({"projection_dims": 32}, "unknown model config key 'projection_dims'; did you mean 'projection_dim'?"),
    ({"backbone": {"kind": "edgconv"}}, "'kind' must be one of edgeconv, gatv2, sage, not 'edgconv'; did you mean"),
    ({"backbone": {"pooling": "max"}}, "'pooling' must be one of sum, mean, attention, energy, not 'max'"),
    ({"backbone": {"kind": "gatv2", "hidden": 30}}, r"'hidden' \(30\) must be a multiple of 'heads' \(4\)"),
    ({"backbone": {"dropout": 1.0}}, r"'dropout' must lie in \[0.0, 1.0\), not 1.0"),
    ({"backbone": {"layers": 0}}, "'layers' must be a positive int, not 0"),
    ({"backbone": {"hidden": True}}, "'hidden' must be a positive int, not True"),
    ({"backbone": {"edge_angle_scale": 0}}, r"'edge_angle_scale' must lie in \(0.0, inf\)"),
    ({"backbone": "big"}, "a backbone config must be a mapping, not 'big'"),
])
def test_config_errors_teach(values, message):
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig.from_dict(values)


def test_presets():
    assert ModelConfig.preset("cpu") == ModelConfig()
    gpu = ModelConfig.preset("gpu", kind="gatv2")
    assert gpu.backbone.hidden > ModelConfig().backbone.hidden and gpu.backbone.kind == "gatv2"
    with pytest.raises(ModelConfigError, match="model preset must be one of cpu, gpu, not 'tpu'"):
        ModelConfig.preset("tpu")
    with pytest.raises(ModelConfigError, match="did you mean 'layers'"):
        ModelConfig.preset("cpu", layer=2)


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_given_a_seed(kind):
    rng_state = torch.random.get_rng_state()
    first, second, other = model_for(kind, seed=7), model_for(kind, seed=7), model_for(kind, seed=8)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the global RNG is left alone
    for (name, a), b, c in zip(first.state_dict().items(), second.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert any(not torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values()))
    batch = Batch.from_data_list(random_jets(3))
    assert torch.equal(first(batch)[0], second(batch)[0])


def test_projection_head():
    head = ProjectionHead(16, 4, layers=3)
    assert head(torch.randn(5, 16)).shape == (5, 4)
    assert len([m for m in head.modules() if isinstance(m, torch.nn.Linear)]) == 3
    assert all(not isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in head.modules())
    with pytest.raises(ValueError, match="layers must be a positive int"):
        ProjectionHead(16, 4, layers=0)


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_autocast_runs(kind):
    """The GPU benchmark path (bf16 autocast), exercised on CPU."""
    model = model_for(kind, pooling="energy", attention_energy_beta=0.5, aggregation="energy").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h, z = model(Batch.from_data_list(random_jets(3)))
    z.float().square().mean().backward()
    assert torch.isfinite(h.float()).all() and h.shape == (3, 24)
    assert not math.isnan(float(model.backbone.blocks[0].norm.weight.grad.sum()))
