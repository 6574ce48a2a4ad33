"""Replica groups for contrastive pretraining: per jet, the graphs of R >= 2 of its detector replicas."""

from __future__ import annotations

import awkward as ak
import numpy as np

from gnnjets.base.checks import check_int
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import check_choice
from gnnjets.data.batches import ReplicaBatch
from gnnjets.data.stream import JetGraphDataset, _Chunk
from gnnjets.graphs.build import GraphChunk, build_graphs
from gnnjets.io.reader import read_jets


#: how the views of a jet are paired (see JetReplicaDataset)
PAIRINGS = ("replicas", "same")


class ReplicaGroupError(GnnjetsError, ValueError):
    """The replicas of a jet are not adjacent entries, or a jet lacks some of its replicas."""


class JetReplicaDataset(JetGraphDataset):
    """Per jet, the graphs of ``replicas`` detector replicas of it, each augmented independently.

    Args:
        paths: ROOT file(s) in the gnnjets schema: a path, a glob or a list.
        replicas: replicas per jet to yield (R >= 2). A file with more replicas per jet gives the
            first R (``replica_selection="first"``) or R of them drawn per jet and epoch, in random
            order (``"random"``, seeded from ``(seed, epoch, chunk)``); fewer is an error.
        transform: augmentation(s) applied to each replica graph (a JetTransform or a Compose);
            each view gets its own seeded copy (see the module docstring).
        graph_config: :class:`~gnnjets.graphs.config.GraphConfig`, dict, YAML path or None (CPU defaults).
        shuffle: permute chunks and mix jets through the shuffle buffer (default True).
        shuffle_buffer: jets held per worker for shuffling.
        seed: the seed of chunk order, shuffling, replica choice and augmentations.
        chunk_jets: jets per chunk (the unit of reading and of sharding over workers).
        pairing: ``"replicas"`` (default): the views of a jet are different detector replicas;
            ``"same"``: every view is the same replica (the first, or one drawn per jet and epoch
            with ``replica_selection="random"``), so that the views differ by the augmentations
            alone (the "augmentations only" arm of an ablation; a file with one replica suffices).
        tree, mapping: passed to :func:`gnnjets.io.read_jets`.

    Files are checked when the dataset is made: the replicas of each jet must be adjacent entries
    numbered 0..R_file-1 and every jet complete; otherwise :class:`ReplicaGroupError` names the
    file, the jet (event_id, jet_index) and its entries.

    Yields (iterating the dataset itself): a tuple of ``replicas`` :class:`~gnnjets.graphs.JetGraph`.
    """

    def __init__(self, paths, *, replicas: int = 2, transform=None, graph_config=None, shuffle: bool = True,
                 shuffle_buffer: int = 2048, seed: int = 0, chunk_jets: int = 512, replica_selection: str = "first",
                 pairing: str = "replicas", tree: str | None = None, mapping=None):
        super().__init__(paths, transform=transform, graph_config=graph_config, shuffle=shuffle,
                         shuffle_buffer=shuffle_buffer, seed=seed, tree=tree, mapping=mapping)
        self.replicas = check_int("replicas", replicas, 2)
        self.num_views = self.replicas
        self.chunk_jets = check_int("chunk_jets", chunk_jets, 1)
        if replica_selection not in ("first", "random"):
            raise ValueError(f"'replica_selection' must be 'first' or 'random', not {replica_selection!r}")
        self.replica_selection = replica_selection
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        #: replicas per jet of each file, and jets per file
        self.file_replicas, self.file_jets = zip(*(self._index_file(path) for path in self.files))
        for path, file_replicas in zip(self.files, self.file_replicas):
            if file_replicas < self.distinct_replicas:
                raise ReplicaGroupError(f"{path}: the file holds {file_replicas} replica(s) per jet but replicas="
                                        f"{self.replicas} were requested; simulate with --replicas {self.replicas} "
                                        f"or ask for fewer")

    @property
    def distinct_replicas(self) -> int:
        """Replicas read per jet: ``replicas``, or 1 when every view is the same replica."""
        return 1 if self.pairing == "same" else self.replicas

    @property
    def num_jets(self) -> int:
        """Jets in the files (before skipping empty ones)."""
        return int(sum(self.file_jets))

    def _index_file(self, path: str) -> tuple[int, int]:
        """(replicas per jet, jets) of a file whose replica groups are checked."""
        ids = next(iter(read_jets(path, tree=self.tree, mapping=self.mapping,
                                  branches=("event_id", "jet_index", "replica"), step_size=2**62)))
        event_id = ak.to_numpy(ids["event_id"])
        jet_index = ak.to_numpy(ids["jet_index"])
        replica = ak.to_numpy(ids["replica"])
        n = len(replica)
        new_jet = (event_id[1:] != event_id[:-1]) | (jet_index[1:] != jet_index[:-1])
        starts = np.flatnonzero(np.concatenate([[True], new_jet]))  # first entry of each run of one jet
        lengths = np.diff(np.concatenate([starts, [n]]))
        file_replicas = int(replica.max()) + 1

        def jet(run: int) -> str:
            first = starts[run]
            return f"jet (event_id {event_id[first]}, jet_index {jet_index[first]})"

        def where(run: int) -> str:
            entries = list(range(starts[run], starts[run] + lengths[run]))
            return f"replicas {replica[entries].tolist()} at entries {entries}"

        keys = np.stack([event_id[starts], jet_index[starts].astype(np.int64)], axis=1)
        _, first_run, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
        if (counts > 1).any():
            run = int(first_run[counts > 1].min())
            same = np.flatnonzero((keys == keys[run]).all(axis=1))
            entries = [int(e) for r in same for e in range(starts[r], starts[r] + lengths[r])]
            raise ReplicaGroupError(
                f"{path}: the replicas of {jet(run)} are not adjacent: they sit at entries {entries}; the replicas of "
                f"a jet must be consecutive entries (replica 0, 1, ...). Was the file written by detector_sim?")
        expected = np.arange(file_replicas)
        bad = np.flatnonzero(lengths != file_replicas)
        if len(bad):
            run = int(bad[0])
            raise ReplicaGroupError(
                f"{path}: {jet(run)} is incomplete: {where(run)}, but the file holds {file_replicas} replicas per jet "
                f"(0..{file_replicas - 1}); a file must hold complete groups")
        order_ok = (replica.reshape(-1, file_replicas) == expected).all(axis=1)
        if not order_ok.all():
            run = int(np.flatnonzero(~order_ok)[0])
            raise ReplicaGroupError(f"{path}: {jet(run)} has {where(run)}; expected replicas 0..{file_replicas - 1} "
                                    f"in order")
        return file_replicas, len(starts)

    def _chunks(self) -> list[_Chunk]:
        chunks = []
        for file_index, (file_replicas, jets) in enumerate(zip(self.file_replicas, self.file_jets)):
            for first in range(0, jets, self.chunk_jets):
                last = min(first + self.chunk_jets, jets)
                chunks.append(_Chunk(len(chunks), file_index, first * file_replicas, last * file_replicas, first))
        return chunks

    def _load(self, chunk: _Chunk) -> tuple[GraphChunk, np.ndarray, int]:
        file_replicas = self.file_replicas[chunk.file_index]
        distinct = self.distinct_replicas
        jets = (chunk.entry_stop - chunk.entry_start) // file_replicas
        if self.replica_selection == "random" and file_replicas > distinct:
            rng = np.random.default_rng([self.seed, self.epoch, chunk.number])
            chosen = np.argsort(rng.random((jets, file_replicas)), axis=1)[:, :distinct]  # (jets, distinct)
        else:
            chosen = np.broadcast_to(np.arange(distinct), (jets, distinct))
        records = self._read(chunk)
        if file_replicas != distinct or self.replica_selection == "random":
            entries = (np.arange(jets)[:, None] * file_replicas + chosen).ravel()
            records = records[entries]
        graphs = build_graphs(records, self.graph_config, file_index=chunk.file_index)
        rows = np.arange(jets * distinct).reshape(jets, distinct)
        if distinct != self.replicas:  # "same": every view reads the graph of the one replica
            rows = np.repeat(rows, self.replicas, axis=1)
        empty = (graphs.node_counts.numpy()[rows] == 0).any(axis=1)
        return graphs, rows[~empty], int(empty.sum())

    def _package(self, views):
        return ReplicaBatch(tuple(views))

    def _single(self, graphs):
        return tuple(graphs)
