"""Read jet replicas from ROOT files in chunks, as awkward records in the schema of :mod:`gnnjets.io.schema`.

What a chunk is: an ``awkward.Array`` of records, one per jet replica, with one field per schema
branch named exactly as the branch (``event_id``, ``jet_pt``, ``cell_e``, ``track_eta_layer3``,
...; the counters ``ncell``/``ntrack``/``nparticle`` are dropped: use ``ak.num(chunk.cell_e)``),
in schema dtypes and units (GeV, rad, mm), plus two fields saying where each record comes from:

``source_file_index`` (int32)
    index into ``read_jets(...).files``, the tuple of file paths in reading order;
``entry`` (int64)
    the entry number within that file (for ``layout: events`` mappings: the event's entry; its
    jets are told apart by ``jet_index``).

``JetChunks.locate(file_index, entry)`` turns the two into ``"data/qg_1.root:jets entry 17"``
for error messages downstream. A chunk never spans two files; chunks hold at most ``step_size``
entries.

Entry selection: ``entry_start``/``entry_stop`` are *global* entry numbers over the concatenation
of the files in reading order (file 0's entries, then file 1's, ...), like Python's
``range(entry_start, entry_stop)``; ``entry_stop`` past the end is clipped. Globs are expanded and
sorted, so the order of ``read_jets("data/*.root")`` is reproducible. For ``layout: events``
mappings entries are events.

Paths: anything uproot opens, as given: local files and globs, ``root://`` and ``https://`` URLs,
``file.root:tree`` (that tree, over ``tree=``); see :mod:`gnnjets.io.paths`.

Files are opened and checked when ``read_jets`` is called (missing file, missing tree, missing
branch, empty selection fail at once, naming the file and the fix); the data are read lazily,
chunk by chunk, as the :class:`JetChunks` object is iterated (it can be iterated many times).
Every error uproot or a decompressor raises while reading baskets (a truncated or damaged file)
becomes an :class:`~gnnjets.io.errors.UnreadableFileError` naming the file, the entries and the
fix. Every field of every chunk is checked for NaN and inf and against its physical range
(:data:`gnnjets.io.schema.LIMITS`); the error names file, entry and branch.

>>> chunks = read_jets(["a.root", "b.root"], entry_start=5, step_size=1000)   # doctest: +SKIP
>>> for chunk in chunks:
...     e = chunk.cell_e                            # (n_jets, var) float32 GeV
...     where = chunks.locate(chunk.source_file_index[0], chunk.entry[0])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np
import uproot

from gnnjets.io import schema
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import close_matches
from gnnjets.io.errors import (BranchTypeError, EmptySelectionError, MissingTreeError, UnknownBranchError,
                               UnreadableFileError)
from gnnjets.io.mapping import BranchMapping, load_mapping
from gnnjets.io.paths import expand_paths, one_line, is_remote, split_object_path, unreadable
from gnnjets.io.plan import ReadPlan
from gnnjets.io.values import check_values

__all__ = ["JetChunks", "read_jets", "read_all", "count_entries", "expand_paths", "LOCATION_FIELDS"]

#: the fields every chunk carries besides the schema branches
LOCATION_FIELDS = ("source_file_index", "entry")
#: files a :class:`JetChunks` keeps open per process (each: a memory map and the TTree metadata)
MAX_OPEN_FILES = 16
log = logging.getLogger(__name__)


def _open_tree(path: str, tree: str):
    """(file, tree) opened with uproot; errors name the file and what it holds instead."""
    path, tree = split_object_path(path)[0], split_object_path(path)[1] or tree
    try:
        file = uproot.open(path)
        classes = {key.split(";")[0]: name for key, name in file.classnames(recursive=True).items()}
    except Exception as error:  # uproot, fsspec and the decompressors raise many types
        raise unreadable(path, error) from None
    if classes.get(tree) != "TTree":
        file.close()
        trees = sorted(name for name, cls in classes.items() if cls == "TTree")
        if tree in classes:
            what = f"{tree!r} there is a {classes[tree]}, not a TTree"
            if classes[tree] == "ROOT::RNTuple":
                what += " (written with f[name] = arrays; write TTrees with detector_sim.writer.JetWriter)"
        else:
            what = f"no TTree {tree!r}{close_matches(tree, trees, end='')}"
        fix = (f" Pass tree={trees[0]!r}, or mapping=<yaml> for a foreign layout (configs/schemas/)."
               if trees else "")
        raise MissingTreeError(f"{path}: {what}; trees in the file: {', '.join(trees) or 'none'}.{fix}")
    try:
        ttree = file[tree]
        ttree.num_entries, ttree.keys()  # the metadata the reader needs, read here where a failure is explained
    except Exception as error:
        file.close()
        raise unreadable(path, error, f":{tree}") from None
    return file, ttree


class JetChunks:
    """The chunks of jet-replica records of a set of files; iterate it (repeatedly) to read them.

    Attributes: ``files`` (paths in reading order, indexed by ``source_file_index``), ``tree``,
    ``mapping``, ``branches`` (the schema fields of each chunk), ``entries_per_file``,
    ``entry_offsets`` (global entry of each file's first entry; one more element than files),
    ``entry_start``/``entry_stop`` (the resolved global selection).
    """

    def __init__(self, paths, *, tree: str | None = None, mapping=None, entry_start: int | None = None,
                 entry_stop: int | None = None, step_size: int | str = 10_000, branches: Sequence[str] | None = None):
        self.mapping: BranchMapping = load_mapping(mapping)
        if tree is not None and not isinstance(tree, str):
            raise TypeError(f"'tree' must be a str, not {tree!r}")
        self.tree = tree if tree is not None else self.mapping.tree
        self.branches = _check_branches(branches)
        positive_int = isinstance(step_size, (int, np.integer)) and not isinstance(step_size, bool) and step_size > 0
        if not (positive_int or isinstance(step_size, str)):
            raise ValueError(f"'step_size' must be a positive number of entries or a size like '50 MB', "
                             f"not {step_size!r}")
        self.step_size = step_size
        self.files = expand_paths(paths)
        self._open = {}  # file index -> (uproot file, TTree), opened in this process (see _tree)
        self._open_pid = os.getpid()
        entries, self._plans = [], []
        for index, path in enumerate(self.files):
            tree_ = self._tree(index)
            entries.append(int(tree_.num_entries))
            self._plans.append(self.mapping.plan(tree_.keys(), self.branches, self._where(index)))
        self.entries_per_file = tuple(entries)
        self.entry_offsets = np.concatenate([[0], np.cumsum(entries, dtype=np.int64)])
        self.entry_start, self.entry_stop = self._check_selection(entry_start, entry_stop)

    def _tree(self, index: int):
        """The TTree of file ``index``, kept open for the next reads in this process.

        Opening a file and reading its TTree's metadata (~1,000 streamed objects) costs ~25 ms,
        as much as decompressing 500 jets, and a shuffling dataset reads its files chunk by
        chunk in random order: the :data:`MAX_OPEN_FILES` last used stay open. A forked
        DataLoader worker opens the files again rather than share the parent's handles.
        """
        if self._open_pid != os.getpid():
            self._open, self._open_pid = {}, os.getpid()
        if index in self._open:
            self._open[index] = self._open.pop(index)  # now the most recently used
        else:
            while len(self._open) >= MAX_OPEN_FILES:
                file, _ = self._open.pop(next(iter(self._open)))
                file.close()
            self._open[index] = _open_tree(self.files[index], self.tree)
        return self._open[index][1]

    def close(self) -> None:
        """Close the files kept open (reading again reopens them)."""
        open_files, self._open = self._open, {}
        if self._open_pid == os.getpid():
            for file, _ in open_files.values():
                file.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_open"] = {}  # open files do not travel (DataLoader workers with spawn)
        return state

    def _check_selection(self, entry_start, entry_stop) -> tuple[int, int]:
        total = int(self.entry_offsets[-1])
        for name, value in (("entry_start", entry_start), ("entry_stop", entry_stop)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0):
                raise ValueError(f"{name!r} must be a non-negative int (a global entry number), not {value!r}")
        start = 0 if entry_start is None else int(entry_start)
        stop = total if entry_stop is None else min(int(entry_stop), total)
        if total == 0:
            raise EmptySelectionError(f"{_describe(self.files)}:{self.tree} has no entries; the file(s) are empty "
                                      f"(a simulation that wrote no jets?)")
        if start >= stop:
            raise EmptySelectionError(f"entry_start={entry_start}, entry_stop={entry_stop} select no entries of the "
                                      f"{total} in {_describe(self.files)}:{self.tree} (global entries 0..{total - 1} "
                                      f"over the files in order)")
        return start, stop

    def _where(self, index: int) -> str:
        """``"path:tree"`` of file ``index``."""
        path, tree = split_object_path(self.files[index])
        return f"{path}:{tree or self.tree}"

    def locate(self, source_file_index: int, entry: int) -> str:
        """``"path:tree entry N"`` for a record's ``source_file_index`` and ``entry``."""
        return f"{self._where(int(source_file_index))} entry {int(entry)}"

    @property
    def selection(self) -> dict:
        """What the Delta R selection of a ``layout: events`` mapping dropped in the chunks read so far:
        ``cells``, ``cells_dropped``, ``cell_energy_gev``, ``cell_energy_dropped_gev`` (all files)."""
        total = {"cells": 0, "cells_dropped": 0, "cell_energy_gev": 0.0, "cell_energy_dropped_gev": 0.0}
        for plan in self._plans:
            for key in total:
                total[key] += plan.selection[key]
        return total

    def _report_selection(self) -> None:
        stats = self.selection
        if self.mapping.layout != "events" or not stats["cells"]:
            return
        share = stats["cell_energy_dropped_gev"] / stats["cell_energy_gev"] if stats["cell_energy_gev"] else 0.0
        log.info("%s: the Delta R < %g selection (jets above %g GeV) dropped %d of %d cells, %.1f of %.1f GeV "
                 "(%.1f%% of the cell energy)", _describe(self.files), self.mapping.jet_radius,
                 self.mapping.jet_min_pt, stats["cells_dropped"], stats["cells"], stats["cell_energy_dropped_gev"],
                 stats["cell_energy_gev"], 100 * share)

    @property
    def num_entries(self) -> int:
        """Selected tree entries (jet replicas; events for ``layout: events`` mappings)."""
        return self.entry_stop - self.entry_start

    def __iter__(self) -> Iterator[ak.Array]:
        yielded = 0
        for index, (path, plan) in enumerate(zip(self.files, self._plans)):
            offset = int(self.entry_offsets[index])
            start = max(self.entry_start - offset, 0)
            stop = min(self.entry_stop - offset, self.entries_per_file[index])
            if stop <= start:
                continue
            for chunk in self._read_file(index, path, plan, start, stop):
                yielded += len(chunk)
                yield chunk
        self._report_selection()
        if not yielded:
            raise EmptySelectionError(f"no jets in {_describe(self.files)}:{self.tree} entries "
                                      f"{self.entry_start}..{self.entry_stop - 1} (mapping {self.mapping.source}: "
                                      f"jet_min_pt={self.mapping.jet_min_pt} GeV)")

    def read_entries(self, file_index: int, entry_start: int, entry_stop: int) -> ak.Array:
        """Entries ``entry_start:entry_stop`` of file ``file_index`` (its own entry numbers, not
        global ones; ``layout: events``: events) as one chunk, whatever ``step_size`` is.

        The file stays open between calls (in each process), so reading a file chunk by chunk,
        as the datasets of :mod:`gnnjets.graphs` do, opens it once. The selection of the
        constructor does not apply here.
        """
        if not 0 <= file_index < len(self.files):
            raise IndexError(f"file_index {file_index} out of range for {len(self.files)} file(s)")
        stop = min(int(entry_stop), self.entries_per_file[file_index])
        if not 0 <= entry_start < stop:
            raise EmptySelectionError(f"entries {entry_start}..{entry_stop - 1} of {self.files[file_index]}:"
                                      f"{self.tree} select nothing (it has {self.entries_per_file[file_index]})")
        parts = list(self._read_file(file_index, self.files[file_index], self._plans[file_index], int(entry_start),
                                     stop, step_size=stop - int(entry_start)))
        if not parts:
            raise EmptySelectionError(f"no jets in {self.files[file_index]}:{self.tree} entries {entry_start}.."
                                      f"{stop - 1} (mapping {self.mapping.source}: jet_min_pt="
                                      f"{self.mapping.jet_min_pt} GeV)")
        return parts[0] if len(parts) == 1 else ak.concatenate(parts)

    def _read_file(self, index: int, path: str, plan: ReadPlan, start: int, stop: int,
                   step_size: int | str | None = None) -> Iterator[ak.Array]:
        wanted = frozenset(plan.branches)
        step = self.step_size if step_size is None else step_size
        try:
            batches = self._tree(index).iterate(filter_name=wanted.__contains__, entry_start=start, entry_stop=stop,
                                                step_size=step, library="ak", how=dict, report=True)
        except GnnjetsError:
            raise
        except Exception as error:
            raise self._damaged(index, start, stop, error) from None
        first = start
        while True:
            try:  # uproot reads (and decompresses) the baskets of the next chunk here
                arrays, report = next(batches)
            except StopIteration:
                return
            except GnnjetsError:
                raise
            except Exception as error:
                last = min(first + step, stop) if isinstance(step, (int, np.integer)) else stop
                raise self._damaged(index, first, last, error) from None
            first = report.tree_entry_stop
            entry = np.arange(report.tree_entry_start, report.tree_entry_stop, dtype=np.int64)
            try:
                columns, entry = plan.convert(arrays, entry)
            except GnnjetsError:
                raise
            except Exception as error:  # a layout the mapping does not describe (jagged where flat, ...)
                layout = "of the gnnjets schema" if self.mapping.is_identity else f"{self.mapping.source} describes"
                raise BranchTypeError(f"{self._where(index)} entries {report.tree_entry_start}..{report.tree_entry_stop - 1}"
                                      f": the branches do not have the layout {layout} ({type(error).__name__}: "
                                      f"{one_line(error)})") from None
            self._check_values(columns, index, entry)
            columns["source_file_index"] = np.full(len(entry), index, dtype=np.int32)
            columns["entry"] = entry
            if len(entry):
                yield ak.zip(columns, depth_limit=1)

    def _damaged(self, index: int, start: int, stop: int, error: BaseException) -> UnreadableFileError:
        """The error for baskets that cannot be read: the file, the entries, the global entries, the fix."""
        offset = int(self.entry_offsets[index]) if hasattr(self, "entry_offsets") else 0
        path = split_object_path(self.files[index])[0]
        if is_remote(path):
            return unreadable(path, error, f" entries {start}..{stop - 1}")
        return UnreadableFileError(
            f"{self._where(index)} entries {start}..{stop - 1} cannot be read ({type(error).__name__}: "
            f"{one_line(error)}): the file is truncated or damaged; regenerate or copy it again, or skip "
            f"the entries with entry_start/entry_stop (global entries {offset + start}..{offset + stop - 1})")

    def _check_values(self, columns: dict, file_index: int, entry: np.ndarray) -> None:
        def where(record: int) -> tuple[str, str]:
            per_event = self.mapping.layout == "events" and "jet_index" in columns
            jet = f" (jet_index {columns['jet_index'][record]})" if per_event else ""
            return (f"at {self.locate(file_index, entry[record])}{jet}",
                    f"skip the entry with entry_start/entry_stop (global entry "
                    f"{int(self.entry_offsets[file_index]) + int(entry[record])})")
        check_values(columns, self.mapping, where)


def _describe(files: Sequence[str]) -> str:
    return files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"


def _check_branches(branches) -> tuple[str, ...]:
    if branches is None:
        return schema.BRANCH_NAMES
    if isinstance(branches, str):
        raise TypeError(f"'branches' must be a list of schema names, not the str {branches!r}; write [{branches!r}]")
    branches = tuple(branches)
    for name in branches:
        if name in LOCATION_FIELDS:
            raise UnknownBranchError(f"branches=: {name!r} is always in the chunks; leave it out of 'branches'")
        if name not in schema.FIELDS_BY_NAME:
            counter = next((prefix for prefix, (n, _) in schema.COLLECTIONS.items() if n == name), None)
            hint = (f"; counters are dropped, use ak.num(chunk.{schema.COLLECTIONS[counter][1][0].name})."
                    if counter else close_matches(name, schema.BRANCH_NAMES))
            raise UnknownBranchError(f"branches=: {name!r} is not a schema branch{hint} "
                                     f"Schema branches: {', '.join(schema.BRANCH_NAMES)}")
    if not branches:
        raise UnknownBranchError("branches=: empty list; pass None for every schema branch")
    # schema order whatever the order asked for, duplicates dropped
    return tuple(name for name in schema.BRANCH_NAMES if name in set(branches))


def read_jets(paths, *, tree: str | None = None, mapping=None, entry_start: int | None = None,
              entry_stop: int | None = None, step_size: int | str = 10_000,
              branches: Sequence[str] | None = None) -> JetChunks:
    """The jet-replica records of ``paths``, chunk by chunk (see the module docstring).

    Args:
        paths: a ``.root`` path, a glob (``"data/qg_*.root"``) or a list of them.
        tree: TTree name; default the mapping's (``"jets"`` for our own files).
        mapping: ``None`` (our schema), a shipped mapping name (``"cocoa"``), a YAML path or a
            :class:`~gnnjets.io.mapping.BranchMapping`.
        entry_start, entry_stop: global entry range over the files in order (stop exclusive).
        step_size: entries per chunk (or a size such as ``"50 MB"``); chunks never span files.
        branches: schema names to read (default all); the chunk fields follow schema order.

    Returns:
        A :class:`JetChunks`: iterate it for ``awkward.Array`` chunks; ``.files`` lists the paths.
    """
    return JetChunks(paths, tree=tree, mapping=mapping, entry_start=entry_start, entry_stop=entry_stop,
                     step_size=step_size, branches=branches)


def count_entries(paths, tree: str | None = None, mapping=None) -> int:
    """Number of records ``read_jets(paths, tree=tree, mapping=mapping)`` yields over all files.

    For our layout that is the number of tree entries (jet replicas), read from the file headers;
    for ``layout: events`` mappings the jet collection is read to count jets above ``jet_min_pt``.
    """
    chunks = JetChunks(paths, tree=tree, mapping=mapping, branches=("jet_pt",), step_size="100 MB")
    if chunks.mapping.layout == "jets":
        return chunks.num_entries
    return sum(len(chunk) for chunk in chunks)


def read_all(paths, **kwargs) -> ak.Array:
    """Every record of ``read_jets(paths, **kwargs)`` in one array (small files and tests)."""
    chunks = list(read_jets(paths, **kwargs))
    return chunks[0] if len(chunks) == 1 else ak.concatenate(chunks)
