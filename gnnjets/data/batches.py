"""What the loaders yield: a :class:`ReplicaBatch` of views for pretraining, PyG batches downstream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch_geometric.data import Batch


@dataclass
class ReplicaBatch:
    """The replica views of a batch of jets: ``views[r]`` is a PyG ``Batch`` of replica ``r`` of every jet.

    Graph ``i`` of every view belongs to the same jet (same ``event_id``, ``jet_index``).
    ``a, b = batch`` unpacks the views.
    """

    views: tuple

    @property
    def view_a(self) -> Batch:
        return self.views[0]

    @property
    def view_b(self) -> Batch:
        return self.views[1]

    @property
    def num_jets(self) -> int:
        return self.views[0].num_graphs

    @property
    def num_replicas(self) -> int:
        return len(self.views)

    def __iter__(self):
        return iter(self.views)

    def to(self, device, non_blocking: bool = False) -> ReplicaBatch:
        return ReplicaBatch(tuple(view.to(device, non_blocking=non_blocking) for view in self.views))

    def pin_memory(self) -> ReplicaBatch:
        return ReplicaBatch(tuple(view.pin_memory() for view in self.views))


def collate_replicas(items: Sequence[tuple]) -> ReplicaBatch:
    """Per-jet tuples of replica graphs (as a JetReplicaDataset yields them) -> a :class:`ReplicaBatch`."""
    return ReplicaBatch(tuple(Batch.from_data_list(list(view)) for view in zip(*items)))


def collate_jets(items: Sequence) -> Batch:
    """Single graphs (as a JetDataset yields them) -> a PyG ``Batch``."""
    return Batch.from_data_list(list(items))
