"""From a chunk of jet-replica records to graphs: node budget, node features, edges, batching.

Input: an awkward chunk as :func:`gnnjets.io.read_jets` yields it, one record per jet replica with
fields named as the schema branches (``cell_e`` [GeV], ``cell_eta``, ``cell_phi`` [rad],
``cell_layer``, ``cell_sigma`` [GeV], ``track_pt`` [GeV], ``track_eta``, ``track_phi``,
``track_charge``, ``track_d0``/``track_z0`` [mm], ``track_eta_layer{L}``/``track_phi_layer{L}``,
the jet and truth scalars, ids); :data:`GRAPH_BRANCHES` lists what is read.

Output: a :class:`GraphChunk`, the graphs of all records in flat arrays (nodes of graph ``g`` at
``node_ptr[g]:node_ptr[g+1]``, cells first, each block ordered by decreasing energy / pT). It
hands out single :class:`~gnnjets.graphs.batching.JetGraph` objects (:meth:`GraphChunk.graph`)
and, fast, whole PyG batches (:func:`gather_batch`). Everything is vectorised over the chunk; the
only per-jet loop is the compiled neighbour search of :mod:`gnnjets.graphs.edges`.
"""

from __future__ import annotations


import awkward as ak
import numba
import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch

from gnnjets.graphs import features as F
from gnnjets.graphs.batching import JetGraph, make_batch
from gnnjets.graphs.config import GraphConfig
from gnnjets.graphs.edges import build_edges
from gnnjets.base.kinematics import wrap_phi
from gnnjets.io.arrays import flat_values
from gnnjets.io.schema import N_CALO_LAYERS

CELL_BRANCHES = ("cell_e", "cell_eta", "cell_phi", "cell_layer", "cell_sigma", "cell_topo_idx")
TRACK_BRANCHES = (("track_pt", "track_eta", "track_phi", "track_charge", "track_d0", "track_z0")
                  + tuple(f"track_{coord}_layer{layer}" for layer in range(N_CALO_LAYERS) for coord in ("eta", "phi")))
SCALAR_BRANCHES = ("event_id", "jet_index", "replica", "label", "jet_pt", "jet_eta", "jet_phi", "jet_e",
                   "truth_e", "truth_pt")
#: the schema branches :func:`build_graphs` reads
GRAPH_BRANCHES = SCALAR_BRANCHES + CELL_BRANCHES + TRACK_BRANCHES


def _flat(values) -> np.ndarray:
    """The contents of a jagged awkward array as one numpy array (a view where possible: do not write)."""
    return flat_values(values)


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _top_k_kernel(values, starts, counts, k, kept_counts, out):  # pragma: no cover
    written = 0
    for g in range(counts.shape[0]):
        start, n = starts[g], counts[g]
        group = values[start:start + n]
        if n > k:  # the k-th largest value, then everything above it and the first ties at it
            threshold = np.partition(group, n - k)[n - k]
            chosen = np.empty(k, np.int64)
            above = 0
            for i in range(n):
                if group[i] > threshold:
                    chosen[above] = i
                    above += 1
            for i in range(n):
                if above == k:
                    break
                if group[i] == threshold:
                    chosen[above] = i
                    above += 1
        else:
            chosen = np.arange(n)
        order = np.argsort(-group[chosen], kind="mergesort")  # decreasing, ties in input order
        for j in range(chosen.shape[0]):
            out[written + j] = start + chosen[order[j]]
        written += chosen.shape[0]
        kept_counts[g] = chosen.shape[0]
    return written


def top_k_per_group(values: np.ndarray, counts: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The largest ``k`` values of each group, in decreasing order.

    Args:
        values: (n,) flat finite values, groups contiguous (group ``g`` has ``counts[g]`` of them).
        counts: (G,) group sizes.
        k: how many to keep per group; ``None`` keeps all (still sorted).

    Returns:
        ``index`` into ``values`` of the kept ones (grouped, each group in decreasing order,
        ties in input order) and the kept ``counts``.
    """
    values = np.ascontiguousarray(values)  # float32 from files: no float64 copy of every cell
    counts = np.ascontiguousarray(counts, np.int64)
    k = int(counts.max(initial=0)) if k is None else int(k)
    kept_counts = np.zeros(len(counts), np.int64)
    out = np.empty(int(np.minimum(counts, k).sum()), np.int64)
    _top_k_kernel(values, _offsets(counts)[:-1], counts, k, kept_counts, out)
    return out, kept_counts


class GraphChunk:
    """The graphs of one chunk of records, stored flat (see the module docstring).

    Attributes (torch tensors): ``node_ptr`` (G+1,), ``x`` (N, F), ``pos`` (N, 2), ``energy`` (N,),
    ``node_type`` (N,), ``edge_ptr`` (G+1,), ``edge_index`` (2, E) int32 *local* node numbers within
    each graph, ``edge_type`` (E,) int8, ``graph_attrs`` name -> (G,) tensor.
    """

    def __init__(self, node_ptr, x, pos, energy, node_type, edge_ptr, edge_index, edge_type, graph_attrs):
        self.node_ptr = node_ptr
        self.x = x
        self.pos = pos
        self.energy = energy
        self.node_type = node_type
        self.edge_ptr = edge_ptr
        self.edge_index = edge_index
        self.edge_type = edge_type
        self.graph_attrs = graph_attrs

    def __len__(self) -> int:
        return int(self.node_ptr.numel()) - 1

    def __repr__(self) -> str:
        return f"GraphChunk(graphs={len(self)}, nodes={int(self.node_ptr[-1])}, edges={int(self.edge_ptr[-1])})"

    @property
    def node_counts(self) -> Tensor:
        return self.node_ptr[1:] - self.node_ptr[:-1]

    @property
    def edge_counts(self) -> Tensor:
        return self.edge_ptr[1:] - self.edge_ptr[:-1]

    def graph(self, index: int) -> JetGraph:
        """Graph ``index`` as a :class:`JetGraph` (its own tensors, safe to modify)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"graph {index} out of range for a chunk of {len(self)} graphs")
        index = index % len(self)
        nodes = slice(int(self.node_ptr[index]), int(self.node_ptr[index + 1]))
        edges = slice(int(self.edge_ptr[index]), int(self.edge_ptr[index + 1]))
        pos = self.pos[nodes].clone()
        edge_index = self.edge_index[:, edges].long()
        edge_type = self.edge_type[edges]
        return JetGraph(x=self.x[nodes].clone(), pos=pos, energy=self.energy[nodes].clone(),
                        node_type=self.node_type[nodes].clone(), edge_index=edge_index,
                        edge_attr=F.edge_attributes(pos, edge_index, edge_type),
                        **{key: value[index:index + 1].clone() for key, value in self.graph_attrs.items()})

    def batch(self, indices=None) -> Batch:
        """The graphs ``indices`` (default all) as one PyG ``Batch``, in the order given."""
        indices = torch.arange(len(self)) if indices is None else torch.as_tensor(indices, dtype=torch.int64)
        return gather_batch([(self, indices)])


def _ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenated ``arange(start, start + count)`` for each pair, vectorised."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - offsets, counts, output_size=total) + torch.arange(total)


def _cat(tensors: list[Tensor], dim: int = 0) -> Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=dim)


def gather_batch(parts) -> Batch:
    """One ``Batch`` from graphs of one or more chunks: ``parts`` = [(GraphChunk, indices), ...].

    The graphs appear in the order of ``parts``, then of ``indices``. No per-graph Python work:
    nodes and edges are gathered with index arrays and ``edge_attr`` is computed from ``pos``.
    """
    keys = ("x", "pos", "energy", "node_type")
    nodes = {key: [] for key in keys}
    edge_index, edge_type, node_counts, edge_counts = [], [], [], []
    graph_attrs = {key: [] for key in F.GRAPH_ATTRS}
    node_offset = 0
    for chunk, indices in parts:
        indices = torch.as_tensor(indices, dtype=torch.int64)
        n_nodes = chunk.node_counts[indices]
        n_edges = chunk.edge_counts[indices]
        node_rows = _ranges(chunk.node_ptr[indices], n_nodes)
        edge_rows = _ranges(chunk.edge_ptr[indices], n_edges)
        for key in keys:
            nodes[key].append(getattr(chunk, key).index_select(0, node_rows))
        new_starts = node_offset + torch.cumsum(n_nodes, 0) - n_nodes
        shift = torch.repeat_interleave(new_starts, n_edges, output_size=int(n_edges.sum()))
        edge_index.append(chunk.edge_index.index_select(1, edge_rows).long() + shift)
        edge_type.append(chunk.edge_type.index_select(0, edge_rows))
        node_counts.append(n_nodes)
        edge_counts.append(n_edges)
        for key in F.GRAPH_ATTRS:
            graph_attrs[key].append(chunk.graph_attrs[key][indices])
        node_offset += int(n_nodes.sum())
    nodes = {key: _cat(values) for key, values in nodes.items()}
    edge_index = _cat(edge_index, dim=1)
    edge_attr = F.edge_attributes(nodes["pos"], edge_index, _cat(edge_type))
    return make_batch(nodes, edge_index, edge_attr, {key: _cat(values) for key, values in graph_attrs.items()},
                      _cat(node_counts), _cat(edge_counts))


class _CellBlock:
    """The cell nodes of a chunk, grouped by graph: flat arrays plus per-graph counts."""

    def __init__(self, graph, energy, eta, phi, layer, sigma, count, num_graphs):
        self.graph, self.energy, self.eta, self.phi = graph, energy, eta, phi
        self.layer, self.sigma, self.count = layer, sigma, count  # count: cells a node stands for
        self.counts = np.bincount(graph, minlength=num_graphs).astype(np.int64)

    @classmethod
    def of(cls, chunk, keep, kept_counts, jet_eta, jet_phi) -> _CellBlock:
        """The kept cells ``keep`` (flat indices, grouped by graph), positions relative to the jet axis."""
        graph = np.repeat(np.arange(len(kept_counts)), kept_counts)
        return cls(graph, _flat(chunk["cell_e"])[keep].astype(np.float64),
                   _flat(chunk["cell_eta"])[keep] - jet_eta[graph],
                   wrap_phi(_flat(chunk["cell_phi"])[keep] - jet_phi[graph]),
                   _flat(chunk["cell_layer"])[keep].astype(np.int64),
                   _flat(chunk["cell_sigma"])[keep].astype(np.float64), np.ones(len(keep)), len(kept_counts))

    def with_remainders(self, extra: _CellBlock) -> _CellBlock:
        """These cells followed, within each graph, by the nodes of ``extra`` (stable by graph)."""
        order = np.argsort(np.concatenate([self.graph, extra.graph]), kind="stable")
        parts = [np.concatenate([getattr(self, name), getattr(extra, name)])[order]
                 for name in ("graph", "energy", "eta", "phi", "layer", "sigma", "count")]
        return _CellBlock(*parts, len(self.counts))


def _remainders(chunk, keep, all_counts, jet_eta, jet_phi) -> _CellBlock:
    """One node per graph and layer for the cells beyond the budget: their summed energy, their
    energy-weighted centroid (plain centroid if none is positive), sigma = the quadrature sum of
    theirs, and their number (``count``), so that a graph keeps all of the jet's energy and cells."""
    num_graphs = len(all_counts)
    dropped = np.ones(int(all_counts.sum()), bool)
    dropped[keep] = False
    graph = np.repeat(np.arange(num_graphs), all_counts)[dropped]
    layer = _flat(chunk["cell_layer"])[dropped].astype(np.int64)
    energy = _flat(chunk["cell_e"])[dropped].astype(np.float64)
    eta = _flat(chunk["cell_eta"])[dropped] - jet_eta[graph]
    phi = wrap_phi(_flat(chunk["cell_phi"])[dropped] - jet_phi[graph])
    sigma2 = _flat(chunk["cell_sigma"])[dropped].astype(np.float64) ** 2
    layer = np.clip(layer, 0, N_CALO_LAYERS - 1)  # out-of-range layers are reported on the kept cells
    key = graph * N_CALO_LAYERS + layer
    size = num_graphs * N_CALO_LAYERS
    count = np.bincount(key, minlength=size)
    weight = np.maximum(energy, 0.0)
    total_weight = np.bincount(key, weights=weight, minlength=size)
    use_weight = total_weight > 0
    present = np.flatnonzero(count)

    def centroid(values):
        weighted = np.bincount(key, weights=weight * values, minlength=size)
        plain = np.bincount(key, weights=values, minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(use_weight, weighted / total_weight, plain / np.maximum(count, 1))[present]

    return _CellBlock(present // N_CALO_LAYERS, np.bincount(key, weights=energy, minlength=size)[present],
                      centroid(eta), centroid(phi), present % N_CALO_LAYERS,
                      np.sqrt(np.bincount(key, weights=sigma2, minlength=size)[present]),
                      count[present].astype(np.float64), num_graphs)


def _energy_reference(chunk, cell_e_all, all_cell_counts) -> np.ndarray:
    """E_jet [GeV] of each graph for relative log-energies: ``jet_e``, or the positive cell sum if
    ``jet_e`` is not positive (foreign files), or 1 GeV for a jet without energy."""
    jet_e = ak.to_numpy(chunk["jet_e"]).astype(np.float64)
    record = np.repeat(np.arange(len(all_cell_counts)), all_cell_counts)
    positive_sum = np.bincount(record, weights=np.maximum(cell_e_all, 0.0), minlength=len(all_cell_counts))
    return np.where(jet_e > 0, jet_e, np.where(positive_sum > 0, positive_sum, 1.0))


def jet_features(chunk, all_cell_counts: np.ndarray) -> np.ndarray:
    """The jet-level scalars :data:`~gnnjets.graphs.features.JET_FEATURE_NAMES` (n, J) float32 of a chunk."""
    n = len(all_cell_counts)
    topo = _flat(chunk["cell_topo_idx"]).astype(np.int64)
    n_topo = np.zeros(n)
    if len(topo):
        record = np.repeat(np.arange(n), all_cell_counts)
        stride = int(topo.max()) + 2
        n_topo = np.bincount(np.unique(record * stride + topo + 1) // stride, minlength=n)
    jet_e = ak.to_numpy(chunk["jet_e"]).astype(np.float64)
    jet_pt = ak.to_numpy(chunk["jet_pt"]).astype(np.float64)
    return np.stack([np.log(np.maximum(jet_e, 1e-3)), np.log(np.maximum(jet_pt, 1e-3)),
                     np.abs(ak.to_numpy(chunk["jet_eta"]).astype(np.float64)), np.log1p(all_cell_counts),
                     np.log1p(ak.to_numpy(ak.num(chunk["track_pt"], axis=1))), np.log1p(n_topo)],
                    axis=1).astype(np.float32)


def build_graphs(chunk: ak.Array, config: GraphConfig | None = None, *, file_index: int | None = None) -> GraphChunk:
    """All graphs of ``chunk`` (one per record, empty records give empty graphs).

    Args:
        chunk: awkward records with at least the fields :data:`GRAPH_BRANCHES`; ``entry`` and
            ``source_file_index`` are used for the ids when present.
        config: node budget, edge parameters, feature scaling (default :class:`GraphConfig`).
        file_index: stored as each graph's ``file_index`` (default: the chunk's ``source_file_index``, or 0).
    """
    config = config if config is not None else GraphConfig()
    scaling = config.scaling
    fields = set(ak.fields(chunk))
    missing = [name for name in GRAPH_BRANCHES if name not in fields]
    if missing:
        raise KeyError(f"build_graphs needs the schema fields {', '.join(missing)}; read them with "
                       f"read_jets(..., branches=gnnjets.graphs.GRAPH_BRANCHES)")
    num_graphs = len(chunk)
    jet_eta = ak.to_numpy(chunk["jet_eta"]).astype(np.float64)
    jet_phi = ak.to_numpy(chunk["jet_phi"]).astype(np.float64)

    # ---- node budget: the most energetic cells and tracks of each jet ----
    all_cell_counts = ak.to_numpy(ak.num(chunk["cell_e"], axis=1))
    cell_e_all = _flat(chunk["cell_e"])
    keep_cells, kept_counts = top_k_per_group(cell_e_all, all_cell_counts, config.max_cells)
    cells = _CellBlock.of(chunk, keep_cells, kept_counts, jet_eta, jet_phi)
    if config.remainder_nodes:
        cells = cells.with_remainders(_remainders(chunk, keep_cells, all_cell_counts, jet_eta, jet_phi))
    cell_counts, cell_graph = cells.counts, cells.graph
    cell_e, cell_eta, cell_phi = cells.energy, cells.eta, cells.phi
    cell_layer, cell_sigma = cells.layer, cells.sigma
    if len(cell_layer) and (cell_layer.min() < 0 or cell_layer.max() >= N_CALO_LAYERS):
        bad = int(np.flatnonzero((cell_layer < 0) | (cell_layer >= N_CALO_LAYERS))[0])
        raise ValueError(f"cell_layer {cell_layer[bad]} outside 0..{N_CALO_LAYERS - 1} in record "
                         f"{int(cell_graph[bad])} of the chunk")

    track_counts = ak.to_numpy(ak.num(chunk["track_pt"], axis=1))
    track_pt_all = _flat(chunk["track_pt"])
    keep_tracks, track_counts = top_k_per_group(track_pt_all, track_counts, config.max_tracks)
    track_graph = np.repeat(np.arange(num_graphs), track_counts)
    track_pt = track_pt_all[keep_tracks].astype(np.float64)
    track_eta_abs = _flat(chunk["track_eta"])[keep_tracks].astype(np.float64)
    track_eta = track_eta_abs - jet_eta[track_graph]
    track_phi = wrap_phi(_flat(chunk["track_phi"])[keep_tracks] - jet_phi[track_graph])
    track_eta_layer = np.stack([_flat(chunk[f"track_eta_layer{layer}"])[keep_tracks] - jet_eta[track_graph]
                                for layer in range(N_CALO_LAYERS)], axis=1)
    track_phi_layer = np.stack([wrap_phi(_flat(chunk[f"track_phi_layer{layer}"])[keep_tracks] - jet_phi[track_graph])
                                for layer in range(N_CALO_LAYERS)], axis=1)

    # ---- node numbering: graph g holds its cells, then its tracks ----
    node_counts = cell_counts + track_counts
    node_ptr = _offsets(node_counts)
    cell_node = node_ptr[cell_graph] + np.arange(len(cell_graph)) - _offsets(cell_counts)[cell_graph]
    track_node = (node_ptr[track_graph] + cell_counts[track_graph]
                  + np.arange(len(track_graph)) - _offsets(track_counts)[track_graph])
    num_nodes = int(node_ptr[-1])

    # ---- node attributes ----
    node_eta, node_phi = np.zeros(num_nodes), np.zeros(num_nodes)
    node_eta[cell_node], node_phi[cell_node] = cell_eta, cell_phi
    node_eta[track_node], node_phi[track_node] = track_eta, track_phi
    energy = np.zeros(num_nodes)
    energy[cell_node] = cell_e
    energy[track_node] = track_pt * np.cosh(track_eta_abs)
    node_type = np.full(num_nodes, F.TRACK, np.int64)
    node_type[cell_node] = cell_layer

    # features in numpy: torch's elementwise kernels on 2 OpenMP threads cost ~5 ms per call here
    energy_ref = _energy_reference(chunk, cell_e_all, all_cell_counts)
    x = np.zeros((num_nodes, F.NUM_NODE_FEATURES), np.float32)
    if scaling.relative:
        x[cell_node, F.LOG_ENERGY] = scaling.log_energy_column(cell_e, energy_ref[cell_graph])
        x[track_node, F.LOG_ENERGY] = scaling.log_energy_column(energy[track_node], energy_ref[track_graph])
    else:
        x[cell_node, F.LOG_ENERGY] = scaling.log_energy_column(cell_e)
        x[track_node, F.LOG_ENERGY] = scaling.log_energy_column(track_pt)
    x[cell_node, F.LOG_COUNT] = scaling.log_count_column(cells.count)
    x[:, F.DELTA_ETA] = scaling.angle_column(node_eta)
    x[:, F.DELTA_PHI] = scaling.angle_column(node_phi)
    x[np.arange(num_nodes), F.NODE_TYPE_OFFSET + node_type] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cell_significance = np.where(cell_sigma > 0, cell_e / cell_sigma, 0.0)
    x[cell_node, F.SIGNIFICANCE] = scaling.significance_column(cell_significance)
    x[track_node, F.CHARGE] = _flat(chunk["track_charge"])[keep_tracks]
    x[track_node, F.D0] = scaling.d0_column(_flat(chunk["track_d0"])[keep_tracks].astype(np.float64))
    x[track_node, F.Z0] = scaling.z0_column(_flat(chunk["track_z0"])[keep_tracks].astype(np.float64))

    # ---- edges ----
    edge_index, edge_type, edge_counts = build_edges(
        node_ptr, cell_counts, node_eta, node_phi, node_type, track_eta_layer, track_phi_layer,
        k_same_layer=config.k_same_layer, k_adjacent_layer=config.k_adjacent_layer, k_track=config.k_track,
        both_ways=config.track_edges_both_ways)
    edge_ptr = _offsets(edge_counts)

    # ---- per-graph attributes ----
    graph_attrs = {key: torch.from_numpy(ak.to_numpy(chunk[key]).astype(np.float32))
                   for key in F.GRAPH_FLOAT_ATTRS if key != "energy_ref"}
    graph_attrs["energy_ref"] = torch.from_numpy(energy_ref.astype(np.float32))
    graph_attrs["jet_features"] = torch.from_numpy(jet_features(chunk, all_cell_counts))
    for key in ("label", "event_id", "jet_index", "replica"):
        graph_attrs[key] = torch.from_numpy(ak.to_numpy(chunk[key]).astype(np.int64))
    if file_index is None:
        file_index = ak.to_numpy(chunk["source_file_index"]) if "source_file_index" in fields else 0
    graph_attrs["file_index"] = torch.from_numpy(np.broadcast_to(np.asarray(file_index, np.int64), num_graphs).copy())
    entry = ak.to_numpy(chunk["entry"]) if "entry" in fields else np.arange(num_graphs)
    graph_attrs["entry"] = torch.from_numpy(np.asarray(entry, np.int64))

    return GraphChunk(node_ptr=torch.from_numpy(node_ptr), x=torch.from_numpy(x),
                      pos=torch.from_numpy(np.stack([node_eta, node_phi], axis=1).astype(np.float32)),
                      energy=torch.from_numpy(energy.astype(np.float32)),
                      node_type=torch.from_numpy(node_type), edge_ptr=torch.from_numpy(edge_ptr),
                      edge_index=torch.from_numpy(edge_index), edge_type=torch.from_numpy(edge_type),
                      graph_attrs=graph_attrs)
