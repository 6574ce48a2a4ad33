"""Jet replicas as PyG graphs: the layout of a graph and how a chunk of jets becomes graphs.

>>> from gnnjets.graphs import build_graphs                         # doctest: +SKIP
>>> graphs = build_graphs(chunk, config)      # GraphChunk: every record of an awkward chunk, flat
>>> batch = gather_batch([(graphs, rows)])    # a PyG Batch of the graphs ``rows``

Datasets and the loader that feed training are in :mod:`gnnjets.data`.

Layout of a graph (node feature columns, edge attributes, per-graph attributes):
:mod:`gnnjets.graphs.features`; configuration (node budget, neighbours per layer, scaling):
:mod:`gnnjets.graphs.config`.
"""

import warnings

with warnings.catch_warnings():
    # torch 2.13 deprecates torch.jit.script, which torch_geometric 2.8 calls while it is imported;
    # nothing a user of gnnjets can act on, and fatal under `-W error` (our pytest configuration)
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning)
    import torch_geometric  # noqa: F401

from gnnjets.graphs import features  # noqa: E402
from gnnjets.graphs.batching import JetGraph, make_batch, refresh_batch_metadata  # noqa: E402
from gnnjets.graphs.build import GRAPH_BRANCHES, GraphChunk, build_graphs, gather_batch, top_k_per_group  # noqa: E402
from gnnjets.graphs.config import GraphConfig, GraphConfigError, load_graph_config  # noqa: E402
from gnnjets.graphs.features import FeatureScaling  # noqa: E402

__all__ = [
    "features", "JetGraph", "GraphChunk", "GraphConfig", "GraphConfigError", "FeatureScaling", "GRAPH_BRANCHES",
    "build_graphs", "gather_batch", "make_batch", "refresh_batch_metadata", "top_k_per_group", "load_graph_config",
]
