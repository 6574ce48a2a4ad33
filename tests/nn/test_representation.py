"""The CPU-cheap representation: mean-neighbour blocks, the global context, concatenated poolings,
and the jet scalars that reach the heads but never the contrastive projector."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from gnnjets.graphs.features import NUM_JET_FEATURES
from gnnjets.nn import BackboneConfig, ModelConfig, build_model
from gnnjets.nn.sage import GlobalContext, MeanNeighbourBlock, NeighbourMean, mean_adjacency, mean_edge_features

from test_nn import permuted, random_jets

VARIANTS = [dict(kind="sage"), dict(kind="sage", global_context=True, pooling="mean+energy"),
            dict(kind="edgeconv", global_context=True, pooling="sum+mean")]


def model_for(**backbone):
    config = ModelConfig(backbone=BackboneConfig(hidden=16, layers=2, embedding_dim=24, **backbone),
                         projection_dim=8, projection_hidden=12)
    return build_model(config, seed=0).eval()


def with_jet_features(jets, seed=0):
    generator = torch.Generator().manual_seed(seed)
    for jet in jets:
        jet.jet_features = torch.randn(1, NUM_JET_FEATURES, generator=generator)
    return jets


@pytest.mark.parametrize("backbone", VARIANTS)
def test_symmetries(backbone):
    """Node order does not matter and a jet's h does not depend on its batch mates."""
    model = model_for(**backbone)
    jets = random_jets(4)
    generator = torch.Generator().manual_seed(3)
    h, _ = model(Batch.from_data_list(jets))
    h_perm, _ = model(Batch.from_data_list([permuted(jet, generator) for jet in jets]))
    alone = torch.cat([model(Batch.from_data_list([jet]))[0] for jet in jets])
    torch.testing.assert_close(h_perm, h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone, h, rtol=1e-5, atol=1e-5)
    assert h.shape == (4, model.backbone.learned_dim)


def test_mean_neighbour_block_matches_a_dense_reference():
    torch.manual_seed(0)
    jet = random_jets(1)[0]
    n, hidden, edge_dim = jet.num_nodes, 8, 3
    block = MeanNeighbourBlock(hidden, edge_dim)
    h, edge_features = torch.randn(n, hidden), torch.randn(jet.num_edges, edge_dim)
    got = block(h, NeighbourMean(jet.edge_index, n), mean_edge_features(jet.edge_index, edge_features, n))
    dense = torch.zeros(n, n).index_put_((jet.edge_index[1], jet.edge_index[0]), torch.ones(jet.num_edges),
                                         accumulate=True)  # random_jet may repeat an edge: it counts twice
    degree = dense.sum(1, keepdim=True).clamp(min=1)
    u = block.norm(h)
    mean_e = torch.zeros(n, edge_dim).index_add_(0, jet.edge_index[1], edge_features) / degree
    want = h + block.lin_out(block.act(block.lin_in(torch.cat([u, dense @ u / degree, mean_e], 1))))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mean_adjacency(jet.edge_index, n).to_dense(), dense / degree)


def test_global_context_broadcasts_the_graph_mean():
    context = GlobalContext(4)
    h = torch.randn(5, 4)
    batch = torch.tensor([0, 0, 1, 1, 1])
    out = context(h, batch, 2)
    mean = torch.stack([context.norm(h)[:2].mean(0), context.norm(h)[2:].mean(0)])
    torch.testing.assert_close(out, h + context.mlp(mean)[batch])


def test_jet_features_reach_h_but_not_the_projector():
    model = model_for(kind="sage", append_jet_features=True, pooling="mean+energy")
    jets = with_jet_features(random_jets(3))
    batch = Batch.from_data_list(jets)
    h_full = model.backbone(batch)
    h_learned, z = model(batch)
    assert model.backbone.embedding_dim == 2 * 24 + NUM_JET_FEATURES == h_full.shape[1]
    torch.testing.assert_close(h_full[:, :48], h_learned)
    torch.testing.assert_close(h_full[:, 48:], batch.jet_features)
    batch.jet_features = batch.jet_features + 100.0  # another energy and other counts: z does not move
    torch.testing.assert_close(model(batch)[1], z)


def test_append_jet_features_needs_them():
    model = model_for(kind="sage", append_jet_features=True)
    with pytest.raises(ValueError, match="carry no jet_features"):
        model.backbone(Batch.from_data_list(random_jets(2)))


def test_bad_pooling_combinations_are_refused():
    with pytest.raises(ValueError, match="repeats a pooling"):
        BackboneConfig(pooling="mean+mean")
    with pytest.raises(ValueError, match="did you mean 'energy'"):
        BackboneConfig(pooling="mean+enrgy")
