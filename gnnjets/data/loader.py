"""The loader: whole batches of a jet dataset, built and augmented in DataLoader worker processes."""

from __future__ import annotations

import multiprocessing
import warnings

from torch.utils.data import DataLoader, IterableDataset

from gnnjets.base.checks import check_int
from gnnjets.data.stream import JetGraphDataset, SkippedJetsWarning, _describe


class _BatchStream(IterableDataset):
    """The dataset's batches as an iterable for DataLoader (which then must not batch again)."""

    def __init__(self, dataset: JetGraphDataset, batch_size: int, drop_last: bool):
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

    def __init__(self, dataset: JetGraphDataset, *, batch_size: int, num_workers: int = 0, drop_last: bool = False,
                 pin_memory: bool = False, prefetch_factor: int = 2, multiprocessing_context=None):
        if not isinstance(dataset, JetGraphDataset):
            raise TypeError(f"make_loader needs a JetReplicaDataset or JetDataset, not {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.num_workers = check_int("num_workers", num_workers, 0)
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


def make_loader(dataset: JetGraphDataset, *, batch_size: int = 256, num_workers: int = 0, drop_last: bool = False,
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
