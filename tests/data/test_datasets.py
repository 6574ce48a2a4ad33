"""Datasets and the loader (gnnjets.data): pairing, sharding, order, seeding, bad files.

Tests take the ``jets_file`` fixture (schema file with 2 replicas per jet); files with broken
replica groups or empty jets are written with ``write_synthetic_jets`` on purpose.
"""

from __future__ import annotations

import gnnjets.graphs  # noqa: F401, I001 - first: it imports torch_geometric without its DeprecationWarning

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Batch

from conftest import write_synthetic_jets
from gnnjets.augment import default_augmentations
from gnnjets.data import (JetDataset, JetReplicaDataset, ReplicaBatch, ReplicaGroupError, SkippedJetsWarning,
                          collate_jets, collate_replicas, make_loader)
from gnnjets.graphs import JetGraph
from gnnjets.io import read_all

SMALL = dict(max_cells=20, max_tracks=6)


@pytest.fixture
def bigger_file(tmp_path):
    """Enough jets for several chunks and workers (any schema file with complete pairs would do)."""
    return write_synthetic_jets(tmp_path / "bigger.root", n_jets=40, cells_per_jet=(5, 20), tracks_per_jet=(0, 4))


def file_jets(path):
    ids = read_all(path, branches=("event_id", "jet_index", "replica"))
    return sorted({(int(e), int(j)) for e, j in zip(ids.event_id, ids.jet_index)})


def batch_ids(batch: Batch):
    return list(zip(batch.event_id.tolist(), batch.jet_index.tolist()))


def epoch_ids(loader):
    out = []
    for batch in loader:
        views = batch.views if isinstance(batch, ReplicaBatch) else (batch,)
        out.extend(batch_ids(views[0]))
    return out


# ---------------------------------------------------------------- pairs
def test_replica_dataset_yields_aligned_replicas(jets_file):
    dataset = JetReplicaDataset(jets_file, graph_config=SMALL, shuffle=False)
    items = list(dataset)
    assert len(items) == dataset.num_jets == len(file_jets(jets_file))
    for item in items:
        assert isinstance(item, tuple) and len(item) == 2 and all(isinstance(g, JetGraph) for g in item)
        assert int(item[0].event_id) == int(item[1].event_id)
        assert int(item[0].jet_index) == int(item[1].jet_index)
        assert [int(g.replica) for g in item] == [0, 1]
    assert [int(a.event_id) for a, _ in items] == [e for e, _ in file_jets(jets_file)]  # file order


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_loader_reads_every_jet_once(bigger_file, num_workers):
    dataset = JetReplicaDataset([bigger_file, bigger_file], graph_config=SMALL, chunk_jets=7, shuffle_buffer=10,
                                transform=default_augmentations(), seed=3)
    loader = make_loader(dataset, batch_size=8, num_workers=num_workers)
    seen = []
    for batch in loader:
        assert isinstance(batch, ReplicaBatch) and batch.num_replicas == 2
        a, b = batch
        assert batch_ids(a) == batch_ids(b)
        assert a.replica.tolist() == [0] * a.num_graphs and b.replica.tolist() == [1] * b.num_graphs
        assert a.file_index.tolist() == b.file_index.tolist()
        seen.extend(zip(a.file_index.tolist(), batch_ids(a)))
    expected = [(f, jet) for f in (0, 1) for jet in file_jets(bigger_file)]
    assert sorted(seen) == expected  # none lost, none twice
    assert loader.skipped == 0


@pytest.mark.parametrize("num_workers", [0, 2])
def test_same_seed_same_order_and_augmentations(bigger_file, num_workers):
    def run(seed, epoch=0):
        dataset = JetReplicaDataset(bigger_file, graph_config=SMALL, chunk_jets=6, shuffle_buffer=12, seed=seed,
                                    transform=default_augmentations())
        dataset.set_epoch(epoch)
        return list(make_loader(dataset, batch_size=8, num_workers=num_workers))

    first, second = run(1), run(1)
    assert [batch_ids(b.view_a) for b in first] == [batch_ids(b.view_a) for b in second]
    for x, y in zip(first, second):
        for view_x, view_y in zip(x, y):
            assert torch.equal(view_x.pos, view_y.pos) and torch.equal(view_x.edge_index, view_y.edge_index)
    other_seed = run(2)
    assert [batch_ids(b.view_a) for b in first] != [batch_ids(b.view_a) for b in other_seed]
    other_epoch = run(1, epoch=1)
    assert [batch_ids(b.view_a) for b in first] != [batch_ids(b.view_a) for b in other_epoch]


def test_each_view_gets_its_own_seeded_augmentations(jets_file):
    dataset = JetReplicaDataset(jets_file, graph_config=SMALL, transform=default_augmentations(), seed=0)
    views = dataset._view_transforms()
    seeds = [view.transforms[0].generator.initial_seed() for view in views]
    assert len(set(seeds)) == 2
    assert all(t.scaling is dataset.graph_config.scaling for view in views for t in view.transforms)
    assert seeds == [view.transforms[0].generator.initial_seed() for view in dataset._view_transforms()]
    dataset.set_epoch(1)
    assert seeds != [view.transforms[0].generator.initial_seed() for view in dataset._view_transforms()]


def test_per_jet_iteration_follows_the_batch_order(bigger_file):
    dataset = JetReplicaDataset(bigger_file, graph_config=SMALL, chunk_jets=6, shuffle_buffer=12, seed=4)
    per_jet = [(int(a.event_id), int(a.jet_index)) for a, _ in dataset]
    batches = [batch_ids(batch.view_a) for batch in make_loader(dataset, batch_size=5)]
    # the same jets in the same batches; inside a batch the loader groups them by chunk
    assert [sorted(ids) for ids in batches] == [sorted(per_jet[i:i + 5]) for i in range(0, len(per_jet), 5)]


def test_collate_replicas(jets_file):
    dataset = JetReplicaDataset(jets_file, graph_config=SMALL, transform=default_augmentations())
    loader = DataLoader(dataset, batch_size=3, collate_fn=collate_replicas)
    batch = next(iter(loader))
    assert isinstance(batch, ReplicaBatch) and batch.num_jets == 3
    assert batch_ids(batch.view_a) == batch_ids(batch.view_b)
    moved = batch.to("cpu")
    assert torch.equal(moved.view_a.x, batch.view_a.x)


def test_more_replicas_in_the_file_than_requested(tmp_path):
    path = write_synthetic_jets(tmp_path / "three.root", n_jets=5, n_replicas=3)
    first = list(JetReplicaDataset(path, graph_config=SMALL, shuffle=False))
    assert all([int(g.replica) for g in item] == [0, 1] for item in first)
    chosen = [[int(g.replica) for g in item] for item in
              JetReplicaDataset(path, graph_config=SMALL, shuffle=False, replica_selection="random", seed=2)]
    again = [[int(g.replica) for g in item] for item in
             JetReplicaDataset(path, graph_config=SMALL, shuffle=False, replica_selection="random", seed=2)]
    assert chosen == again
    assert all(len(set(pair)) == 2 and set(pair) <= {0, 1, 2} for pair in chosen)
    assert any(pair != [0, 1] for pair in chosen)
    three = list(JetReplicaDataset(path, replicas=3, graph_config=SMALL, shuffle=False))
    assert all(len(item) == 3 for item in three)
    with pytest.raises(ReplicaGroupError, match="holds 3 replica"):
        JetReplicaDataset(path, replicas=4)


# ---------------------------------------------------------------- bad files
def test_non_adjacent_replicas_are_refused(tmp_path):
    path = write_synthetic_jets(tmp_path / "swapped.root", n_jets=4, swap_entries=(3, 4))
    with pytest.raises(ReplicaGroupError) as error:
        JetReplicaDataset(path)
    message = str(error.value)
    assert str(path) in message and "not adjacent" in message
    assert "event_id 1, jet_index 0" in message and "entries [2, 4]" in message


def test_incomplete_groups_are_refused(tmp_path):
    path = write_synthetic_jets(tmp_path / "dropped.root", n_jets=4, drop_entries=(5,))
    with pytest.raises(ReplicaGroupError, match=r"event_id 2, jet_index 0\) is incomplete: replicas \[0\] at entries "
                                                r"\[4\].*2 replicas per jet"):
        JetReplicaDataset(path)


def test_a_single_replica_file_is_refused_for_pairs(tmp_path):
    path = write_synthetic_jets(tmp_path / "single.root", n_jets=3, n_replicas=1)
    with pytest.raises(ReplicaGroupError, match="holds 1 replica.*--replicas 2"):
        JetReplicaDataset(path)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_empty_jets_are_skipped_and_counted(tmp_path, num_workers):
    path = write_synthetic_jets(tmp_path / "empty.root", n_jets=12, empty_jets=(2, 9))
    dataset = JetReplicaDataset(path, graph_config=SMALL, chunk_jets=4, seed=0)
    loader = make_loader(dataset, batch_size=4, num_workers=num_workers)
    with pytest.warns(SkippedJetsWarning, match="2 jet"):
        ids = epoch_ids(loader)
    assert len(ids) == 10 and {2, 9}.isdisjoint(e for e, _ in ids)
    assert loader.skipped == 2 and dataset.skipped == 2


def test_empty_jets_in_per_jet_iteration(tmp_path):
    path = write_synthetic_jets(tmp_path / "empty.root", n_jets=5, empty_jets=(4,))
    dataset = JetReplicaDataset(path, graph_config=SMALL)
    with pytest.warns(SkippedJetsWarning):
        items = list(dataset)
    assert len(items) == 4 and dataset.skipped == 1


def test_arguments_are_checked(jets_file):
    with pytest.raises(ValueError, match="'replicas' must be an int >= 2"):
        JetReplicaDataset(jets_file, replicas=1)
    with pytest.raises(ValueError, match="replica_selection"):
        JetReplicaDataset(jets_file, replica_selection="best")
    with pytest.raises(TypeError, match="JetReplicaDataset or JetDataset"):
        make_loader([1, 2, 3], batch_size=2)
    with pytest.raises(FileNotFoundError):
        JetDataset(str(jets_file) + ".missing")


# ---------------------------------------------------------------- single jets
@pytest.mark.parametrize("num_workers", [0, 2])
def test_jet_dataset_keeps_file_order(bigger_file, num_workers):
    dataset = JetDataset([bigger_file, bigger_file], graph_config=SMALL, chunk_entries=7)
    batches = list(make_loader(dataset, batch_size=5, num_workers=num_workers))
    assert all(isinstance(b, Batch) for b in batches)
    files = torch.cat([b.file_index for b in batches])
    entries = torch.cat([b.entry for b in batches])
    n = len(read_all(bigger_file, branches=("event_id",)))
    assert files.tolist() == [0] * n + [1] * n
    assert entries.tolist() == list(range(n)) * 2


def test_jet_dataset_carries_labels_and_truth(jets_file):
    records = read_all(jets_file, branches=("label", "truth_e", "event_id", "replica"))
    graphs = list(JetDataset(jets_file, graph_config=SMALL, replica=0))
    first = records[records.replica == 0]
    assert [int(g.event_id) for g in graphs] == first.event_id.tolist()
    assert [int(g.label) for g in graphs] == first.label.tolist()
    np.testing.assert_allclose([float(g.truth_e) for g in graphs], first.truth_e.to_numpy(), rtol=1e-6)
    batch = collate_jets(graphs[:3])
    assert batch.num_graphs == 3


def test_jet_dataset_can_keep_empty_jets(tmp_path):
    path = write_synthetic_jets(tmp_path / "empty.root", n_jets=4, empty_jets=(1,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = list(JetDataset(path, skip_empty=False))
    assert len(kept) == 8 and sorted(g.num_nodes for g in kept)[:2] == [0, 0]
    with pytest.warns(SkippedJetsWarning, match="2 jet"):
        assert len(list(JetDataset(path))) == 6


def test_jet_dataset_shuffles_when_asked(bigger_file):
    ordered = epoch_ids(make_loader(JetDataset(bigger_file, graph_config=SMALL), batch_size=16))
    shuffled = epoch_ids(make_loader(JetDataset(bigger_file, graph_config=SMALL, shuffle=True, seed=1,
                                                chunk_entries=16), batch_size=16))
    assert sorted(shuffled) == sorted(ordered) and shuffled != ordered


@pytest.mark.parametrize("num_workers", [0, 2])
def test_ranks_split_the_files_without_overlap(bigger_file, num_workers):
    """Under torchrun each rank reads its own shards (rank and world size come from torch.distributed)."""
    seen = []
    for rank in (0, 1):
        dataset = JetDataset(bigger_file, graph_config=SMALL, chunk_entries=6)
        dataset.rank, dataset.world_size = rank, 2
        entries = [e for b in make_loader(dataset, batch_size=4, num_workers=num_workers) for e in b.entry.tolist()]
        assert entries == sorted(entries)  # file order within the rank
        seen.extend(entries)
    assert sorted(seen) == list(range(len(read_all(bigger_file, branches=("event_id",)))))


def test_same_pairing_views_one_replica(jets_file):
    """pairing="same": both views read one replica; without augmentation they are identical."""
    plain = JetReplicaDataset(jets_file, replicas=2, pairing="same", graph_config=SMALL, seed=1, shuffle=False)
    batch = next(iter(make_loader(plain, batch_size=4)))
    assert torch.equal(batch.view_a.x, batch.view_b.x) and (batch.view_a.replica == 0).all()
    augmented = JetReplicaDataset(jets_file, replicas=2, pairing="same", graph_config=SMALL, seed=1, shuffle=False,
                                  transform=default_augmentations())
    batch = next(iter(make_loader(augmented, batch_size=4)))
    assert torch.equal(batch.view_a.event_id, batch.view_b.event_id) and (batch.view_b.replica == 0).all()
    assert not torch.equal(batch.view_a.pos, batch.view_b.pos)  # independent augmentations
    with pytest.raises(ValueError, match="'pairing' must be one of replicas, same"):
        JetReplicaDataset(jets_file, pairing="mixed")
