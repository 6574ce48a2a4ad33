"""Datasets of jet graphs read from ROOT files, and the loader that batches them.

``JetReplicaDataset`` yields, per jet, the graphs of R >= 2 detector replicas of that jet (the
positive pairs of contrastive pretraining), each passed through the augmentations with its own
generator. ``JetDataset`` yields single jet graphs with their labels, truth energy and ids, in
file order unless shuffled. Both are ``torch.utils.data.IterableDataset``:

>>> dataset = JetReplicaDataset("data/qg_train.root", replicas=2, transform=default_augmentations(),
...                             graph_config="configs/graphs/cpu.yaml", seed=1)     # doctest: +SKIP
>>> loader = make_loader(dataset, batch_size=256, num_workers=2)                   # doctest: +SKIP
>>> for batch in loader:                   # ReplicaBatch: batch.view_a, batch.view_b (PyG Batches)
...     loss = criterion(model(batch.view_a), model(batch.view_b))

The engine (chunks, sharding over workers and ranks, shuffling, seeding, batching) is
:mod:`gnnjets.data.stream`; the datasets are :mod:`gnnjets.data.replicas` and
:mod:`gnnjets.data.jets`; :mod:`gnnjets.data.loader` makes the batches in worker processes;
:mod:`gnnjets.data.jetset` keeps a labelled sample in memory for downstream training.
"""

from gnnjets.data.batches import ReplicaBatch, collate_jets, collate_replicas
from gnnjets.data.jets import JetDataset
from gnnjets.data.jetset import JetSet, align_rows, files_signature
from gnnjets.data.loader import JetLoader, make_loader
from gnnjets.data.replicas import JetReplicaDataset, ReplicaGroupError
from gnnjets.data.stream import JetGraphDataset, SkippedJetsWarning

__all__ = [
    "JetReplicaDataset", "JetDataset", "JetGraphDataset", "ReplicaBatch", "ReplicaGroupError", "SkippedJetsWarning",
    "JetLoader", "make_loader", "collate_replicas", "collate_jets", "JetSet", "align_rows", "files_signature",
]
