"""Datasets of jet graphs read from ROOT files: replica groups for pretraining, single jets downstream.

``JetReplicaDataset`` yields, per jet, the graphs of R >= 2 detector replicas of that jet (the
positive pairs of contrastive pretraining), each passed through the augmentations with its own
generator. ``JetDataset`` yields single jet graphs with their labels, truth energy and ids, in
file order unless shuffled. Both are ``torch.utils.data.IterableDataset``:

>>> dataset = JetReplicaDataset("data/qg_train.root", replicas=2, transform=default_augmentations(),
...                             graph_config="configs/graphs/cpu.yaml", seed=1)     # doctest: +SKIP
>>> loader = make_loader(dataset, batch_size=256, num_workers=2)                   # doctest: +SKIP
>>> for batch in loader:                   # ReplicaBatch: batch.view_a, batch.view_b (PyG Batches)
...     loss = criterion(model(batch.view_a), model(batch.view_b))

How the data flow (every step vectorised over a chunk of jets):

1. *Chunks.* The files are cut into chunks of whole jets (``chunk_jets`` jets: all their replica
   entries; for ``JetDataset`` ``chunk_entries`` entries). With ``shuffle`` the chunk order is
   permuted per epoch from ``(seed, epoch)``.
2. *Workers.* DataLoader worker ``w`` of ``W`` takes chunks ``w, w + W, w + 2W, ...`` of that
   order: every jet is read by exactly one worker, none is lost. Without workers, ``W = 1``.
3. *Graphs.* A chunk is read with :func:`gnnjets.io.read_jets` and turned into graphs in one go
   (:func:`gnnjets.graphs.build_graphs`). Jets with no cell and no track in one of the used
   replicas are dropped and counted (``skipped``; warned once per pass).
4. *Shuffle buffer.* With ``shuffle`` each worker collects chunks until it holds at least
   ``shuffle_buffer`` jets, permutes all of them (from ``(seed, epoch, worker, W)``) and hands them
   on: jets of several random chunks mix within every batch. (A sliding pool would keep whole
   chunks in memory for a few straggling jets; this window bounds memory to ~``shuffle_buffer``
   jets plus one chunk.)
5. *Augmentations.* Replica view ``r`` is transformed by its own copy of ``transform`` whose
   generator is seeded from ``(seed, epoch, worker, W, r)``. Hence the same ``seed``, ``epoch``
   and number of workers reproduce the same jets in the same order with the same augmentations;
   a different number of workers gives a different (equally valid) order. Call
   :meth:`set_epoch` between epochs for a new order and new augmentations.
6. *Batches.* :func:`make_loader` gathers whole batches inside the workers directly from the flat
   chunk arrays (no per-graph objects) and augments each view batch in one call; iterating a
   dataset directly gives one jet at a time instead (slower, for inspection and custom loaders;
   :func:`collate_replicas` / :func:`collate_jets` batch those).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torch_geometric.data import Batch

from gnnjets.graphs.build import GRAPH_BRANCHES, GraphChunk, build_graphs, gather_batch
from gnnjets.graphs.config import GraphConfig, load_graph_config
from gnnjets.io.reader import expand_paths, read_jets


class ReplicaGroupError(ValueError):
    """The replicas of a jet are not adjacent entries, or a jet lacks some of its replicas."""


class SkippedJetsWarning(UserWarning):
    """Some jets were left out because a replica had no cells and no tracks."""


@dataclass(frozen=True)
class _Chunk:
    """A range of whole jets in one file."""

    number: int  # position in file order over all files
    file_index: int
    entry_start: int
    entry_stop: int
    first_jet: int  # JetReplicaDataset: number of the chunk's first jet in its file


@dataclass
class _Block:
    """Jets in output order: ``keys[i]``/``rows[i]`` = jet ``rows[i]`` of chunk ``chunks[keys[i]]``."""

    keys: np.ndarray
    rows: np.ndarray
    chunks: dict  # key -> (GraphChunk, (n_jets, R) graph numbers of each jet's replicas)
    number: int | None  # chunk number when blocks are whole chunks in order (no shuffling)
    skipped: int


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


@dataclass
class _Envelope:
    """What a worker sends: a batch (or None), where it belongs in file order, jets skipped since the last one."""

    payload: object
    number: int | None
    last_in_chunk: bool
    skipped: int

    def pin_memory(self):
        return _Envelope(self.payload.pin_memory() if self.payload is not None else None, self.number,
                         self.last_in_chunk, self.skipped)


@contextlib.contextmanager
def _one_thread():
    """Torch ops on one thread inside: graph tensors are small (< 1e6 elements), where OpenMP's
    fork/join costs more than it saves (measured: ~5 ms per op on 2 threads on a 2-core VM).
    DataLoader workers run on one thread anyway; this makes ``num_workers=0`` behave the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _worker(rank: int = 0, world_size: int = 1) -> tuple[int, int]:
    """(shard index, number of shards) of this reader: the DataLoader workers of every distributed rank.

    Rank r's worker w of W reads shard ``r * W + w`` of ``world_size * W``: every jet is read by
    exactly one process of the whole job (torchrun), none twice.
    """
    info = get_worker_info()
    worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
    return rank * workers + worker, world_size * workers


def _seed_int(*entropy: int) -> int:
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0]) >> 1


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name!r} must be an int >= {minimum}, not {value!r}")
    return int(value)


class _JetGraphDataset(IterableDataset):
    """What both datasets share: files, chunks, worker sharding, shuffling, seeding, batching."""

    #: views per jet yielded (1 for single jets)
    num_views = 1

    def __init__(self, paths, *, transform=None, graph_config=None, shuffle: bool = False,
                 shuffle_buffer: int = 2048, seed: int = 0, tree: str | None = None, mapping=None):
        super().__init__()
        self.files = expand_paths(paths)
        self.transform = transform
        self.graph_config: GraphConfig = load_graph_config(graph_config)
        if not isinstance(shuffle, bool):
            raise TypeError(f"'shuffle' must be True or False, not {shuffle!r}")
        self.shuffle = shuffle
        self.shuffle_buffer = _check_int("shuffle_buffer", shuffle_buffer, 0)
        self.seed = _check_int("seed", seed, 0)
        self.tree = tree
        self.mapping = mapping
        self._reader = None  # JetChunks of the graph branches of all files, see _read
        self._warm = False  # warm_up ran in this process
        self.epoch = 0
        #: distributed rank and world size at construction (torchrun): each rank reads its own shards
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = torch.distributed.get_rank() if distributed else 0
        self.world_size = torch.distributed.get_world_size() if distributed else 1
        #: jets skipped (no cells and no tracks) during the last pass in this process; a loader
        #: made by make_loader writes its count over all workers here
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the chunk order, shuffling and augmentation streams of ``epoch`` from now on."""
        self.epoch = _check_int("epoch", epoch, 0)

    # -- subclass interface --
    def _chunks(self) -> list[_Chunk]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _load(self, chunk: _Chunk) -> tuple[GraphChunk, np.ndarray, int]:  # pragma: no cover - abstract
        """(graphs, (n_jets, views) graph numbers of the kept jets, jets skipped)."""
        raise NotImplementedError

    # -- the stream of jets --
    def _read(self, chunk: _Chunk) -> ak.Array:
        if self._reader is None:  # made on first use, in the process that reads (files stay open)
            self._reader = read_jets(self.files, tree=self.tree, mapping=self.mapping, branches=GRAPH_BRANCHES)
        return self._reader.read_entries(chunk.file_index, chunk.entry_start, chunk.entry_stop)

    def warm_up(self) -> None:
        """Run the whole pipeline once in this process, on the first few jets of the first file.

        numba loads a cached kernel at its first call in a process, and the first load sets up
        LLVM: ~0.7 s of CPU. DataLoader workers forked after this call inherit the loaded kernels
        instead of paying that in every worker at every epoch; :class:`JetLoader` calls it.
        """
        if self._warm:
            return
        from gnnjets.augment.base import configure_transform  # gnnjets.augment imports this package

        chunk = self._chunks()[0]
        entries_per_jet = getattr(self, "file_replicas", (1,) * len(self.files))[chunk.file_index]
        chunk = dataclasses.replace(chunk, entry_stop=min(chunk.entry_stop, chunk.entry_start + 4 * entries_per_jet))
        graphs, rows, _ = self._load(chunk)
        transform = configure_transform(self.transform, scaling=self.graph_config.scaling,
                                        generator=torch.Generator().manual_seed(0))
        with _one_thread():
            for view in range(rows.shape[1] if len(rows) else 0):
                batch = gather_batch([(graphs, torch.from_numpy(np.ascontiguousarray(rows[:, view])))])
                if transform is not None:
                    transform(batch)
        self._warm = True

    def _ordered_chunks(self) -> list[_Chunk]:
        chunks = self._chunks()
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(chunks))
            chunks = [chunks[i] for i in order]
        return chunks

    def _blocks(self) -> Iterator[_Block]:
        worker, num_workers = _worker(self.rank, self.world_size)
        mine = self._ordered_chunks()[worker::num_workers]
        if not self.shuffle:
            for chunk in mine:
                graphs, rows, skipped = self._load(chunk)
                yield _Block(np.zeros(len(rows), np.int64), np.arange(len(rows)), {0: (graphs, rows)}, chunk.number,
                             skipped)
            return
        rng = np.random.default_rng([self.seed, self.epoch, worker, num_workers])
        window: dict = {}  # key -> (graphs, rows) of the chunks being mixed
        skipped = 0
        for key, chunk in enumerate(mine):
            graphs, rows, chunk_skipped = self._load(chunk)
            window[key] = (graphs, rows)
            skipped += chunk_skipped
            held = sum(len(rows) for _, rows in window.values())
            if held >= max(self.shuffle_buffer, 1) or key == len(mine) - 1:
                keys = np.concatenate([np.full(len(rows), k) for k, (_, rows) in window.items()])
                rows = np.concatenate([np.arange(len(rows)) for _, rows in window.values()])
                order = rng.permutation(len(keys))
                yield _Block(keys[order], rows[order], window, None, skipped)
                window, skipped = {}, 0

    def _view_transforms(self) -> list:
        from gnnjets.augment.base import configure_transform  # gnnjets.augment imports this package

        worker, num_workers = _worker(self.rank, self.world_size)
        return [configure_transform(self.transform, scaling=self.graph_config.scaling,
                                    generator=torch.Generator().manual_seed(
                                        _seed_int(self.seed, self.epoch, worker, num_workers, view)))
                for view in range(self.num_views)]

    def _finish_pass(self, skipped: int) -> None:
        self.skipped = skipped
        if skipped:
            warnings.warn(f"{skipped} jet(s) skipped in {_describe(self.files)}: no cells and no tracks "
                          f"(in at least one used replica)", SkippedJetsWarning, stacklevel=3)

    def _package(self, views: list[Batch]):  # pragma: no cover - overridden
        raise NotImplementedError

    def _single(self, graphs: list):  # pragma: no cover - overridden
        raise NotImplementedError

    def __iter__(self):
        transforms = self._view_transforms()
        skipped = 0
        for block in self._blocks():
            skipped += block.skipped
            for key, row in zip(block.keys.tolist(), block.rows.tolist()):
                graphs, table = block.chunks[key]
                with _one_thread():
                    views = [graphs.graph(int(table[row, view])) for view in range(self.num_views)]
                    item = self._single([t(v) if t is not None else v for t, v in zip(transforms, views)])
                yield item
        self._finish_pass(skipped)

    def batches(self, batch_size: int, drop_last: bool = False) -> Iterator[_Envelope]:
        """Whole batches (inside one worker), each wrapped with its place in file order; see make_loader."""
        batch_size = _check_int("batch_size", batch_size, 1)
        transforms = self._view_transforms()
        pending: list[_Block] = []
        pending_count = 0
        skipped = 0

        def assemble(count: int):
            with _one_thread():
                return _assemble(count)

        def _assemble(count: int):
            """The next ``count`` pending jets as one batch per view (graphs grouped by chunk)."""
            nonlocal pending_count
            pieces = []  # (graphs, rows (n, views)) in output order
            while count:
                block = pending[0]
                take = min(count, len(block.keys))
                keys, rows = block.keys[:take], block.rows[:take]
                unique, first = np.unique(keys, return_index=True)
                for key in unique[np.argsort(first)].tolist():
                    graphs, table = block.chunks[key]
                    pieces.append((graphs, table[rows[keys == key]]))
                if take == len(block.keys):
                    pending.pop(0)
                else:
                    pending[0] = _Block(block.keys[take:], block.rows[take:], block.chunks, block.number, 0)
                count -= take
                pending_count -= take
            views = []
            for view, transform in enumerate(transforms):
                batch = gather_batch([(graphs, torch.from_numpy(np.ascontiguousarray(table[:, view])))
                                      for graphs, table in pieces])
                views.append(transform(batch) if transform is not None else batch)
            return self._package(views)

        for block in self._blocks():
            skipped += block.skipped
            if len(block.keys):
                pending.append(block)
                pending_count += len(block.keys)
            if block.number is None:  # shuffled: batches run across chunks
                while pending_count >= batch_size:
                    payload = assemble(batch_size)
                    yield _Envelope(payload, None, False, skipped)
                    skipped = 0
                continue
            # in file order: batches stay within the chunk, the last one says so
            sizes = [batch_size] * (pending_count // batch_size)
            if pending_count % batch_size and not drop_last:
                sizes.append(pending_count % batch_size)
            for i, size in enumerate(sizes):
                yield _Envelope(assemble(size), block.number, i == len(sizes) - 1, skipped)
                skipped = 0
            if not sizes:
                yield _Envelope(None, block.number, True, skipped)
                skipped = 0
            pending.clear()
            pending_count = 0
        if pending_count and not drop_last:
            yield _Envelope(assemble(pending_count), None, False, skipped)
            skipped = 0
        if skipped:
            yield _Envelope(None, None, False, skipped)


def _describe(files: Sequence[str]) -> str:
    return files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"


class JetReplicaDataset(_JetGraphDataset):
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
        tree, mapping: passed to :func:`gnnjets.io.read_jets`.

    Files are checked when the dataset is made: the replicas of each jet must be adjacent entries
    numbered 0..R_file-1 and every jet complete; otherwise :class:`ReplicaGroupError` names the
    file, the jet (event_id, jet_index) and its entries.

    Yields (iterating the dataset itself): a tuple of ``replicas`` :class:`~gnnjets.graphs.JetGraph`.
    """

    def __init__(self, paths, *, replicas: int = 2, transform=None, graph_config=None, shuffle: bool = True,
                 shuffle_buffer: int = 2048, seed: int = 0, chunk_jets: int = 512, replica_selection: str = "first",
                 tree: str | None = None, mapping=None):
        super().__init__(paths, transform=transform, graph_config=graph_config, shuffle=shuffle,
                         shuffle_buffer=shuffle_buffer, seed=seed, tree=tree, mapping=mapping)
        self.replicas = _check_int("replicas", replicas, 2)
        self.num_views = self.replicas
        self.chunk_jets = _check_int("chunk_jets", chunk_jets, 1)
        if replica_selection not in ("first", "random"):
            raise ValueError(f"'replica_selection' must be 'first' or 'random', not {replica_selection!r}")
        self.replica_selection = replica_selection
        #: replicas per jet of each file, and jets per file
        self.file_replicas, self.file_jets = zip(*(self._index_file(path) for path in self.files))
        for path, file_replicas in zip(self.files, self.file_replicas):
            if file_replicas < self.replicas:
                raise ReplicaGroupError(f"{path}: the file holds {file_replicas} replica(s) per jet but replicas="
                                        f"{self.replicas} were requested; simulate with --replicas {self.replicas} "
                                        f"or ask for fewer")

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
        jets = (chunk.entry_stop - chunk.entry_start) // file_replicas
        if self.replica_selection == "random" and file_replicas > self.replicas:
            rng = np.random.default_rng([self.seed, self.epoch, chunk.number])
            chosen = np.argsort(rng.random((jets, file_replicas)), axis=1)[:, :self.replicas]  # (jets, R)
        else:
            chosen = np.broadcast_to(np.arange(self.replicas), (jets, self.replicas))
        records = self._read(chunk)
        if file_replicas != self.replicas or self.replica_selection == "random":
            entries = (np.arange(jets)[:, None] * file_replicas + chosen).ravel()
            records = records[entries]
        graphs = build_graphs(records, self.graph_config, file_index=chunk.file_index)
        rows = np.arange(jets * self.replicas).reshape(jets, self.replicas)
        empty = (graphs.node_counts.numpy()[rows] == 0).any(axis=1)
        return graphs, rows[~empty], int(empty.sum())

    def _package(self, views):
        return ReplicaBatch(tuple(views))

    def _single(self, graphs):
        return tuple(graphs)


class JetDataset(_JetGraphDataset):
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
        self.replica = None if replica is None else _check_int("replica", replica, 0)
        if not isinstance(skip_empty, bool):
            raise TypeError(f"'skip_empty' must be True or False, not {skip_empty!r}")
        self.skip_empty = skip_empty
        self.chunk_entries = _check_int("chunk_entries", chunk_entries, 1)
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


def collate_replicas(items: Sequence[tuple]) -> ReplicaBatch:
    """Per-jet tuples of replica graphs (as a JetReplicaDataset yields them) -> a :class:`ReplicaBatch`."""
    return ReplicaBatch(tuple(Batch.from_data_list(list(view)) for view in zip(*items)))


def collate_jets(items: Sequence) -> Batch:
    """Single graphs (as a JetDataset yields them) -> a PyG ``Batch``."""
    return Batch.from_data_list(list(items))


class _BatchStream(IterableDataset):
    """The dataset's batches as an iterable for DataLoader (which then must not batch again)."""

    def __init__(self, dataset: _JetGraphDataset, batch_size: int, drop_last: bool):
        super().__init__()
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        return self.dataset.batches(self.batch_size, self.drop_last)


class JetLoader:
    """Batches of a jet dataset, made in DataLoader worker processes; see :func:`make_loader`.

    Iterating yields :class:`ReplicaBatch` (JetReplicaDataset) or PyG ``Batch`` (JetDataset).
    ``skipped`` is the number of jets skipped in the current / last pass, over all workers.
    """

    def __init__(self, dataset: _JetGraphDataset, *, batch_size: int, num_workers: int = 0, drop_last: bool = False,
                 pin_memory: bool = False, prefetch_factor: int = 2, multiprocessing_context=None):
        if not isinstance(dataset, _JetGraphDataset):
            raise TypeError(f"make_loader needs a JetReplicaDataset or JetDataset, not {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.num_workers = _check_int("num_workers", num_workers, 0)
        self.skipped = 0
        self._loader = DataLoader(_BatchStream(dataset, self.batch_size, drop_last), batch_size=None,
                                  num_workers=self.num_workers, pin_memory=pin_memory,
                                  prefetch_factor=prefetch_factor if self.num_workers else None,
                                  multiprocessing_context=multiprocessing_context if self.num_workers else None)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def _chunk_numbers(self) -> list[int]:
        """Numbers of the chunks this process's workers read, in file order (this rank's shards)."""
        workers = max(self.num_workers, 1)
        shards = self.dataset.world_size * workers
        first = self.dataset.rank * workers
        chunks = self.dataset._ordered_chunks()
        return sorted(chunk.number for i, chunk in enumerate(chunks) if first <= i % shards < first + workers)

    def __iter__(self):
        self.skipped = 0
        if self.num_workers and _start_method(self._loader.multiprocessing_context) == "fork":
            self.dataset.warm_up()  # forked workers inherit the loaded kernels
        # Without shuffling every chunk's batches are numbered: restore file order across workers.
        numbers = iter(self._chunk_numbers() if not self.dataset.shuffle else ())
        current, held = next(numbers, None), {}
        for envelope in self._loader:
            self.skipped += envelope.skipped
            self.dataset.skipped = self.skipped
            if envelope.number is None:
                if envelope.payload is not None:
                    yield envelope.payload
                continue
            held.setdefault(envelope.number, []).append(envelope)
            while held.get(current):
                ready = held[current].pop(0)
                if ready.payload is not None:
                    yield ready.payload
                if ready.last_in_chunk:
                    del held[current]
                    current = next(numbers, None)
        for number in sorted(held):  # never reached when every chunk reports its end; kept as a guard
            for envelope in held[number]:
                if envelope.payload is not None:
                    yield envelope.payload
        if self.skipped:
            warnings.warn(f"{self.skipped} jet(s) skipped in {_describe(self.dataset.files)}: no cells and no "
                          f"tracks (in at least one used replica)", SkippedJetsWarning, stacklevel=2)


def _start_method(context) -> str:
    """How DataLoader starts its workers with ``multiprocessing_context=context``."""
    if context is None:
        return multiprocessing.get_start_method()
    return context if isinstance(context, str) else context.get_start_method()


def make_loader(dataset: _JetGraphDataset, *, batch_size: int = 256, num_workers: int = 0, drop_last: bool = False,
                pin_memory: bool = False, prefetch_factor: int = 2, multiprocessing_context=None) -> JetLoader:
    """A loader of whole batches of ``dataset``, built and augmented in ``num_workers`` worker processes.

    Args:
        dataset: a :class:`JetReplicaDataset` (yields :class:`ReplicaBatch`) or a :class:`JetDataset`
            (yields PyG ``Batch``).
        batch_size: jets per batch. Shuffled, batches run across chunks and only each worker's
            last batch can be smaller; in file order, each chunk ends with a smaller batch.
        num_workers: DataLoader worker processes (0: in this process).
        drop_last: drop batches smaller than ``batch_size``.
        pin_memory, prefetch_factor, multiprocessing_context: passed to ``DataLoader``.

    With forked workers (Linux's default) each pass first runs the pipeline on a few jets in this
    process (:meth:`JetReplicaDataset.warm_up`, once per dataset), so that the workers inherit
    the loaded numba kernels instead of each loading them (~0.7 s CPU per worker and epoch).
    """
    return JetLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                     pin_memory=pin_memory, prefetch_factor=prefetch_factor,
                     multiprocessing_context=multiprocessing_context)
