"""The engine under the jet datasets: files cut into chunks, chunks shared by workers and ranks,
shuffling, seeding, augmentation and batching.

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
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from torch_geometric.data import Batch

from gnnjets.augment.base import configure_transform
from gnnjets.base.checks import check_int
from gnnjets.graphs.build import GRAPH_BRANCHES, GraphChunk, gather_batch
from gnnjets.graphs.config import GraphConfig, load_graph_config
from gnnjets.io.reader import expand_paths, read_jets


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


class JetGraphDataset(IterableDataset):
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
        self.shuffle_buffer = check_int("shuffle_buffer", shuffle_buffer, 0)
        self.seed = check_int("seed", seed, 0)
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
        self.epoch = check_int("epoch", epoch, 0)

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
        batch_size = check_int("batch_size", batch_size, 1)
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
