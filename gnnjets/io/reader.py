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

Files are opened and checked when ``read_jets`` is called (missing file, missing tree, missing
branch, empty selection fail at once, naming the file and the fix); the data are read lazily,
chunk by chunk, as the :class:`JetChunks` object is iterated (it can be iterated many times).
Every float field of every chunk is checked for NaN and inf; the error names file and entry.

>>> chunks = read_jets(["a.root", "b.root"], entry_start=5, step_size=1000)   # doctest: +SKIP
>>> for chunk in chunks:
...     e = chunk.cell_e                            # (n_jets, var) float32 GeV
...     where = chunks.locate(chunk.source_file_index[0], chunk.entry[0])
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from gnnjets.io import schema
from gnnjets.io.errors import (EmptySelectionError, JetFileNotFoundError, MissingTreeError, NonFiniteValueError,
                               UnknownBranchError, UnreadableFileError)
from gnnjets.base.hints import close_matches
from gnnjets.io.arrays import flat_values
from gnnjets.io.mapping import BranchMapping, load_mapping
from gnnjets.io.plan import ReadPlan

PathLike = str | os.PathLike
#: the fields every chunk carries besides the schema branches
LOCATION_FIELDS = ("source_file_index", "entry")
#: files a :class:`JetChunks` keeps open per process (each: a memory map and the TTree metadata)
MAX_OPEN_FILES = 16
_FLOAT_NAMES = frozenset(field.name for field in schema.ALL_FIELDS if np.dtype(field.dtype).kind == "f")


def expand_paths(paths: PathLike | Sequence[PathLike]) -> tuple[str, ...]:
    """File paths from a path, a glob or a list of them; globs sorted, order otherwise kept."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif not isinstance(paths, Sequence):
        raise TypeError(f"paths must be a str, a Path or a list of them, not {type(paths).__name__}")
    if len(paths) == 0:
        raise JetFileNotFoundError("no input files given: pass a .root path, a glob such as 'data/*.root' or a list")
    files = []
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"paths must be str or Path, not {path!r}")
        path = os.fspath(path)
        if glob.has_magic(path):
            matches = sorted(glob.glob(path))
            if not matches:
                folder = Path(path).parent
                raise JetFileNotFoundError(f"no file matches {path!r}; check the pattern "
                                           f"(folder {folder} {'exists' if folder.is_dir() else 'does not exist'})")
            files.extend(matches)
        elif not Path(path).is_file():
            raise JetFileNotFoundError(_not_found_message(Path(path)))
        else:
            files.append(path)
    return tuple(files)


def _not_found_message(path: Path) -> str:
    if path.is_dir():
        return f"{path} is a folder; give the .root files in it, e.g. '{path / '*.root'}'"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return f"no such file: {path} (folder {folder} does not exist)"
    siblings = sorted(p.name for p in folder.iterdir() if p.suffix == ".root")
    hint = close_matches(path.name, siblings)
    shown = ", ".join(siblings[:10]) + (", ..." if len(siblings) > 10 else "")
    return f"no such file: {path}{hint} ROOT files in {folder}: {shown or 'none'}"


def _open_tree(path: str, tree: str):
    """(file, tree) opened with uproot; errors name the file and what it holds instead."""
    try:
        file = uproot.open(path)
    except Exception as error:  # uproot raises several types for non-ROOT content
        raise UnreadableFileError(f"{path} is not a readable ROOT file ({type(error).__name__}: {error}); "
                                  f"was it written completely? Regenerate it.") from None
    classes = {key.split(";")[0]: name for key, name in file.classnames(recursive=True).items()}
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
    return file, file[tree]


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
            self._plans.append(self.mapping.plan(tree_.keys(), self.branches, f"{path}:{self.tree}"))
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

    def locate(self, source_file_index: int, entry: int) -> str:
        """``"path:tree entry N"`` for a record's ``source_file_index`` and ``entry``."""
        return f"{self.files[int(source_file_index)]}:{self.tree} entry {int(entry)}"

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
        for arrays, report in self._tree(index).iterate(
                filter_name=wanted.__contains__, entry_start=start, entry_stop=stop,
                step_size=self.step_size if step_size is None else step_size, library="ak", how=dict, report=True):
            entry = np.arange(report.tree_entry_start, report.tree_entry_stop, dtype=np.int64)
            columns, entry = plan.convert(arrays, entry)
            self._check_finite(columns, index, entry)
            columns["source_file_index"] = np.full(len(entry), index, dtype=np.int32)
            columns["entry"] = entry
            if len(entry):
                yield ak.zip(columns, depth_limit=1)

    def _check_finite(self, columns: dict, file_index: int, entry: np.ndarray) -> None:
        """Vectorised: one isfinite over each float column; the slow search runs only on failure."""
        for name, values in columns.items():
            if name not in _FLOAT_NAMES:
                continue
            jagged = isinstance(values, ak.Array)
            flat = flat_values(values) if jagged else values
            if np.isfinite(flat).all():
                continue
            bad_record = ~np.isfinite(values)
            if jagged:
                bad_record = ak.to_numpy(ak.any(bad_record, axis=1))
            record = int(np.flatnonzero(bad_record)[0])
            value = values[record]
            if jagged:
                position = int(np.flatnonzero(~np.isfinite(ak.to_numpy(value)))[0])
                what, value = f"element {position} of {name!r}", value[position]
            else:
                what = f"branch {name!r}"
            per_event = self.mapping.layout == "events" and "jet_index" in columns
            jet = f" (jet_index {columns['jet_index'][record]})" if per_event else ""
            raise NonFiniteValueError(
                f"{value} in {what} at {self.locate(file_index, entry[record])}{jet}: the file holds non-finite "
                f"values; regenerate it, or skip the entry with entry_start/entry_stop "
                f"(global entry {int(self.entry_offsets[file_index]) + int(entry[record])})")


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
