"""The jet graph type and fast batching: PyG ``Batch`` objects built straight from flat arrays.

``Batch.from_data_list`` costs a Python call per graph and attribute; the loader instead gathers
the nodes and edges of a whole batch with a few index operations (:func:`make_batch`) and fills in
the bookkeeping PyG needs to split the batch again (``_slice_dict``, ``_inc_dict``), so
``batch.to_data_list()``, ``batch[i]`` and ``batch.num_graphs`` work as on a collated batch.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from gnnjets.graphs.features import GRAPH_ATTRS

#: node-level attributes of a JetGraph (first dimension = nodes)
NODE_ATTRS = ("x", "pos", "energy", "node_type")
#: edge-level attributes (edge_index: second dimension = edges)
EDGE_ATTRS = ("edge_index", "edge_attr")


class JetGraph(Data):
    """One jet replica as a graph (layout: :mod:`gnnjets.graphs.features`).

    A ``Data`` whose per-graph ids (``jet_index``, ``file_index``, ...) are never shifted when
    batched: PyG increments every attribute whose name contains ``"index"`` by the node count.
    """

    def __inc__(self, key, value, *args, **kwargs):
        if key in GRAPH_ATTRS:
            return 0
        return super().__inc__(key, value, *args, **kwargs)


def _offsets(counts: Tensor) -> Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def set_batch_metadata(batch: Batch, node_counts: Tensor, edge_counts: Tensor) -> Batch:
    """Write ``batch``, ``ptr`` and PyG's slice/increment bookkeeping for the given per-graph counts.

    Nodes and edges of graph ``g`` must be contiguous and in graph order.
    """
    num_graphs = int(node_counts.numel())
    node_ptr = _offsets(node_counts)
    edge_ptr = _offsets(edge_counts)
    graph_ptr = torch.arange(num_graphs + 1, device=node_counts.device)
    batch.batch = torch.repeat_interleave(torch.arange(num_graphs, device=node_counts.device), node_counts)
    batch.ptr = node_ptr
    slices, incs = {}, {}
    for key in batch.keys():
        if key in ("batch", "ptr"):
            continue
        if key in NODE_ATTRS:
            slices[key], incs[key] = node_ptr, None
        elif key == "edge_index":
            slices[key], incs[key] = edge_ptr, node_ptr[:-1]
        elif key in EDGE_ATTRS:
            slices[key], incs[key] = edge_ptr, None
        else:  # per-graph attributes, shape (B,)
            slices[key], incs[key] = graph_ptr, None
    batch._num_graphs = num_graphs
    batch._slice_dict = slices
    batch._inc_dict = incs
    return batch


def make_batch(nodes: dict[str, Tensor], edge_index: Tensor, edge_attr: Tensor, graph_attrs: dict[str, Tensor],
               node_counts: Tensor, edge_counts: Tensor) -> Batch:
    """A ``Batch`` of :class:`JetGraph` from concatenated arrays.

    Args:
        nodes: :data:`NODE_ATTRS` -> tensors whose first dimension is the total node count.
        edge_index: (2, E) int64, already offset to batch-global node numbers.
        edge_attr: (E, 4).
        graph_attrs: per-graph attribute -> (B,) tensor.
        node_counts, edge_counts: (B,) int64, nodes and edges of each graph (in order).
    """
    batch = Batch(_base_cls=JetGraph)
    for key, value in nodes.items():
        batch[key] = value
    batch.edge_index = edge_index
    batch.edge_attr = edge_attr
    for key, value in graph_attrs.items():
        batch[key] = value
    return set_batch_metadata(batch, node_counts, edge_counts)


def refresh_batch_metadata(batch: Batch) -> Batch:
    """Recompute the bookkeeping of a batch whose node/edge counts changed (e.g. collinear splitting).

    Requires ``batch.batch`` sorted and the edges grouped by graph in graph order.
    """
    num_graphs = batch.num_graphs
    node_counts = torch.bincount(batch.batch, minlength=num_graphs)
    edge_counts = torch.bincount(batch.batch[batch.edge_index[0]], minlength=num_graphs)
    return set_batch_metadata(batch, node_counts, edge_counts)
