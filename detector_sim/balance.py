"""Equal numbers of jets per label in a file (``jets.balance``), decided on the stream of jets alone.

Jets arrive as batches of jet-replica entries (the replicas of a jet adjacent), in the fixed order
of the shards. Each jet waits in the queue of its label; whenever every label has a jet waiting,
one jet of each label (in increasing label order) is written. What is left in the queues at the
end is dropped. The result depends only on the sequence of jets, not on how it was cut into
batches, so a single run and ``detector-sim merge`` of its shards write the same entries.
"""

from __future__ import annotations

from collections import deque

import awkward as ak
import numpy as np


class Balancer:
    """Pass batches through :meth:`push`; what it returns is balanced so far; :meth:`finish` drops the rest.

    Args:
        labels: the labels to balance (every one must appear for anything to be written).
        n_replicas: entries per jet.
    """

    def __init__(self, labels=(0, 1), n_replicas: int = 2):
        self.labels = tuple(int(label) for label in labels)
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"'labels' must be two or more distinct labels, not {labels!r}")
        if isinstance(n_replicas, bool) or not isinstance(n_replicas, (int, np.integer)) or n_replicas < 1:
            raise ValueError(f"'n_replicas' must be a positive integer, not {n_replicas!r}")
        self.n_replicas = int(n_replicas)
        self._queues = {label: deque() for label in self.labels}  # of (batch number, jet number)
        self._batches: dict[int, dict] = {}
        self._next_batch = 0
        self.jets_written = 0

    def push(self, batch: dict) -> dict | None:
        """Queue the jets of ``batch`` (schema columns); return the entries now writable, or None."""
        n_entries = len(batch["label"])
        if n_entries % self.n_replicas:
            raise ValueError(f"a batch of {n_entries} entries does not hold whole jets of {self.n_replicas} replicas")
        number = self._next_batch
        self._next_batch += 1
        labels = np.asarray(batch["label"])[::self.n_replicas]
        unknown = set(np.unique(labels).tolist()) - set(self.labels)
        if unknown:
            raise ValueError(f"jets with labels {sorted(unknown)} cannot be balanced over labels {list(self.labels)}")
        if labels.size:
            self._batches[number] = batch
        for jet, label in enumerate(labels.tolist()):
            self._queues[label].append((number, jet))
        chosen = []
        while all(self._queues.values()):
            chosen.extend(self._queues[label].popleft() for label in self.labels)
        self.jets_written += len(chosen)
        out = self._take(chosen) if chosen else None
        waiting = {number for queue in self._queues.values() for number, _ in queue}
        self._batches = {number: b for number, b in self._batches.items() if number in waiting}
        return out

    def finish(self) -> int:
        """Drop the jets still waiting; return how many."""
        dropped = sum(len(queue) for queue in self._queues.values())
        for queue in self._queues.values():
            queue.clear()
        self._batches.clear()
        return dropped

    def _take(self, chosen: list[tuple[int, int]]) -> dict:
        """The entries of the chosen jets, in the chosen order."""
        pieces = []  # (batch number, entry indices) of consecutive jets from one batch
        for number, jet in chosen:
            entries = np.arange(jet * self.n_replicas, (jet + 1) * self.n_replicas)
            if pieces and pieces[-1][0] == number:
                pieces[-1][1].append(entries)
            else:
                pieces.append((number, [entries]))
        out = {}
        for name in self._batches[chosen[0][0]]:
            parts = [_take(self._batches[number][name], np.concatenate(index)) for number, index in pieces]
            out[name] = _concatenate(parts)
        return out


def _take(column, index: np.ndarray):
    if isinstance(column, ak.Array):
        return column[index]
    return np.asarray(column)[index]


def _concatenate(parts):
    if isinstance(parts[0], ak.Array):
        return parts[0] if len(parts) == 1 else ak.concatenate(parts)
    return np.concatenate(parts)
