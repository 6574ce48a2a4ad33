"""Per-entry baseline features read from jet files, with the ids that place each row.

Every baseline reader returns ``(values, ids)``: ``ids`` maps ``file_index`` (index into the
expanded paths, int32), ``entry`` (int64), ``event_id``, ``jet_index``, ``replica``, ``label`` to
``(n,)`` arrays, row ``i`` describing row ``i`` of ``values``. Rows follow file order (file 0's
entries, then file 1's, ...), keeping the entries of replica ``replica`` (``None``: all).
"""

from __future__ import annotations

from collections.abc import Iterator

import awkward as ak
import numpy as np

from gnnjets.base.checks import check_int, is_int
from gnnjets.io.errors import EmptySelectionError
from gnnjets.io.reader import read_jets

#: the schema branches that fill ``ids`` (besides the reader's ``source_file_index`` and ``entry``)
ID_BRANCHES = ("event_id", "jet_index", "replica", "label")


def selected_chunks(paths, branches, replica, tree, mapping,
                     chunk_entries) -> Iterator[tuple[ak.Array, dict[str, np.ndarray]]]:
    """(chunk, ids) for the entries of replica ``replica`` (``None``: all), in file order."""
    if replica is not None and not (is_int(replica) and replica >= 0):
        raise ValueError(f"'replica' must be a non-negative int or None (every entry), not {replica!r}")
    check_int("chunk_entries", chunk_entries, 1)
    chunks = read_jets(paths, tree=tree, mapping=mapping, branches=branches, step_size=int(chunk_entries))
    seen, yielded = set(), 0
    for chunk in chunks:
        replicas = ak.to_numpy(chunk["replica"])
        if replica is not None:
            seen.update(np.unique(replicas).tolist())
            chunk = chunk[replicas == replica]
        if len(chunk) == 0:
            continue
        yielded += len(chunk)
        ids = {"file_index": ak.to_numpy(chunk["source_file_index"]), "entry": ak.to_numpy(chunk["entry"])}
        ids.update({name: ak.to_numpy(chunk[name]) for name in ID_BRANCHES})
        yield chunk, ids
    if not yielded:
        raise EmptySelectionError(f"no entry with replica == {replica} in {', '.join(chunks.files)}:{chunks.tree}; "
                                  f"replicas there: {', '.join(map(str, sorted(seen)))}")


def concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-chunk dicts of arrays -> one dict of the arrays concatenated."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
