"""Single jets with labels, truth energy and ids, for downstream tasks and embedding."""

from __future__ import annotations

from collections.abc import Iterator

import awkward as ak
import numpy as np

from gnnjets.base.checks import check_int
from gnnjets.data.stream import JetGraphDataset, _Chunk
from gnnjets.graphs.build import GraphChunk, build_graphs
from gnnjets.io.reader import read_jets


class JetDataset(JetGraphDataset):
    """Single jet graphs with label, truth energy and ids, for downstream tasks and embedding.

    Args:
        paths: ROOT file(s): a path, a glob or a list.
        replica: yield only entries of this replica (e.g. 0: one graph per jet); ``None`` (default)
            yields every entry, each replica a graph of its own.
        transform: optional transform of each graph.
        graph_config: see :class:`JetReplicaDataset`.
        shuffle: default False: graphs come in file order (over the files in the order given,
            globs sorted), also through :func:`make_loader` with workers, which restores the order.
        shuffle_buffer, seed: as for :class:`JetReplicaDataset`.
        skip_empty: leave out (and count) jets with no cells and no tracks (default); ``False``
            yields them as graphs without nodes.
        chunk_entries: entries per chunk.
        tree, mapping: passed to :func:`gnnjets.io.read_jets`.

    Each graph carries ``file_index`` and ``entry`` (the entry within its file) besides
    ``event_id``, ``jet_index``, ``replica``, ``label``, ``truth_e``, ... so rows can always be
    matched to the file.
    """

    def __init__(self, paths, *, replica: int | None = None, transform=None, graph_config=None, shuffle: bool = False,
                 shuffle_buffer: int = 2048, seed: int = 0, skip_empty: bool = True, chunk_entries: int = 2048,
                 tree: str | None = None, mapping=None):
        super().__init__(paths, transform=transform, graph_config=graph_config, shuffle=shuffle,
                         shuffle_buffer=shuffle_buffer, seed=seed, tree=tree, mapping=mapping)
        self.replica = None if replica is None else check_int("replica", replica, 0)
        if not isinstance(skip_empty, bool):
            raise TypeError(f"'skip_empty' must be True or False, not {skip_empty!r}")
        self.skip_empty = skip_empty
        self.chunk_entries = check_int("chunk_entries", chunk_entries, 1)
        self.entries_per_file = read_jets(self.files, tree=tree, mapping=mapping, branches=("jet_pt",)).entries_per_file

    def _chunks(self) -> list[_Chunk]:
        chunks = []
        for file_index, entries in enumerate(self.entries_per_file):
            for start in range(0, entries, self.chunk_entries):
                chunks.append(_Chunk(len(chunks), file_index, start, min(start + self.chunk_entries, entries), 0))
        return chunks

    def _load(self, chunk: _Chunk) -> tuple[GraphChunk, np.ndarray, int]:
        records = self._read(chunk)
        if self.replica is not None:
            records = records[ak.to_numpy(records["replica"]) == self.replica]
        graphs = build_graphs(records, self.graph_config, file_index=chunk.file_index)
        rows = np.arange(len(graphs))[:, None]
        if not self.skip_empty:
            return graphs, rows, 0
        empty = graphs.node_counts.numpy() == 0
        return graphs, rows[~empty], int(empty.sum())

    def graph_chunks(self) -> Iterator[tuple[GraphChunk, np.ndarray]]:
        """Every chunk's graphs in file order, built in this process: ``(graphs, kept)``.

        ``kept`` holds the numbers of the graphs that are not skipped (see ``skip_empty``); no
        transform is applied. For code that keeps a whole labelled sample in memory and batches it
        itself (downstream training); ``skipped`` counts the jets left out.
        """
        self.skipped = 0
        for chunk in self._chunks():
            graphs, rows, skipped = self._load(chunk)
            self.skipped += skipped
            yield graphs, rows[:, 0]

    def _package(self, views):
        return views[0]

    def _single(self, graphs):
        return graphs[0]
