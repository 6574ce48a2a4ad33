"""The labelled jets of a study task and the features every method is fitted on.

One selection of rows per task, made once and reused whatever graph config an arm builds: the
pool and the test set are replica 0 of every jet of their files (in file order), class-balanced
for the taggers (:func:`gnnjets.train.splits.balance_classes`) and capped. Features:

- an arm's embeddings of the selected jets: the learned part of h (its backbone frozen, graphs
  built with its config), and ``<arm>+scalars``, the same with the jet-level scalars of the
  graphs appended (log E, log pT, |eta|, log counts), which is what an Embedder of a backbone
  with ``append_jet_features`` returns;
- ``observables``: the nine jet observables (:mod:`gnnjets.tasks.baselines.observables`), counts
  and mass as log(1 + x);
- ``efp+observables``: the task's EFP preset (:mod:`gnnjets.tasks.baselines.efp`) next to them;
- ``calibration``: the per-layer energies and the summed track momenta.

Every array is cached in the study folder, keyed by what it depends on, so a rerun reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gnnjets.base.outputs import atomic_output
from gnnjets.data import JetSet, align_rows, files_signature
from gnnjets.study.config import TaskSamples
from gnnjets.tasks.tasks import Task, get_task
from gnnjets.train.errors import DownstreamError
from gnnjets.train.splits import balance_classes

log = logging.getLogger(__name__)


@dataclass
class TaskRows:
    """The selected jets of one task: rows of the pool and test JetSets (file order) and their attributes."""

    task: Task
    samples: TaskSamples
    pool_rows: np.ndarray
    test_rows: np.ndarray
    pool_attrs: dict
    test_attrs: dict
    notes: list = field(default_factory=list)

    @property
    def y_pool(self) -> np.ndarray:
        return self.task.target(self.pool_attrs)

    def key(self) -> str:
        """A hash of what the selection depends on: files (path, size, mtime) and the chosen rows."""
        digest = hashlib.sha256()
        for files, rows in ((self.samples.train, self.pool_rows), (self.samples.test, self.test_rows)):
            digest.update(files_signature(files).encode())
            digest.update(np.ascontiguousarray(rows).tobytes())
        return digest.hexdigest()[:16]


def _select(task: Task, jets: JetSet, balance: bool, cap: int, seed: int, what: str, notes: list) -> np.ndarray:
    usable = np.flatnonzero(task.usable(jets.attrs))
    if len(usable) < len(jets):
        notes.append(f"{what}: {len(jets) - len(usable)} jet(s) without a positive energy left out")
    rows = usable
    if task.classification:
        labels = jets.attrs["label"][rows]
        if len(np.unique(labels)) < 2:
            raise DownstreamError(f"the {what} jets ({', '.join(jets.files)}) hold only label {int(labels[0])}; "
                                  f"{task.name} needs both classes")
        if balance:
            before = len(rows)
            rows = rows[balance_classes(labels, seed)]
            notes.append(f"{what}: balanced to {len(rows)} of {before} jets (equal classes)")
    if cap and len(rows) > cap:
        rows = np.sort(np.random.default_rng([seed, 29]).choice(rows, cap, replace=False))
        if task.classification and balance:  # keep it balanced after the cap
            rows = rows[balance_classes(jets.attrs["label"][rows], seed)]
        notes.append(f"{what}: capped at {len(rows)} jets")
    return rows


def select_rows(name: str, samples: TaskSamples, jets: tuple[JetSet, JetSet], seed: int) -> TaskRows:
    """The task's selection on its pool and test JetSets (built with any graph config)."""
    task = get_task(name)
    notes: list[str] = []
    pool, test = jets
    pool_rows = _select(task, pool, samples.balance, samples.max_train, seed, "pool", notes)
    test_rows = _select(task, test, samples.balance, samples.max_test, seed + 1, "test", notes)
    return TaskRows(task, samples, pool_rows, test_rows,
                    {k: v[pool_rows] for k, v in pool.attrs.items()}, {k: v[test_rows] for k, v in test.attrs.items()},
                    notes)


def load_jets(samples: TaskSamples, graph: dict) -> tuple[JetSet, JetSet]:
    """Replica 0 of every jet of the pool and test files as graphs of config ``graph``."""
    return (JetSet.load(samples.train, graph_config=graph, replica=0),
            JetSet.load(samples.test, graph_config=graph, replica=0))


def check_same_rows(rows: TaskRows, jets: tuple[JetSet, JetSet]) -> None:
    """JetSets of another graph config must hold the same jets in the same order."""
    for name, jetset, attrs, selected in (("pool", jets[0], rows.pool_attrs, rows.pool_rows),
                                          ("test", jets[1], rows.test_attrs, rows.test_rows)):
        if len(jetset) <= selected.max() or not np.array_equal(jetset.attrs["entry"][selected], attrs["entry"]):
            raise DownstreamError(f"the {name} jets differ between graph configs (jets without nodes?); "
                                  f"rerun with the same files")


class FeatureCache:
    """Arrays in ``<study>/cache/``, named by a hash of their description."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def get(self, description: dict, make) -> np.ndarray:
        name = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:20]
        path = self.folder / f"{description.get('kind', 'array')}-{name}.npy"
        if path.exists():
            return np.load(path)
        array = np.asarray(make())
        with atomic_output(path, keep_suffix=True) as tmp:
            np.save(tmp, array)
        return array


def observable_columns(values: np.ndarray) -> np.ndarray:
    """The nine observables as a linear head sees them: counts and mass as log(1 + x), the rest as they are."""
    out = np.array(values, dtype=np.float64, copy=True)
    for column in (0, 1, 2, 8):  # n_tracks, n_cells, n_topoclusters, cell_mass
        out[:, column] = np.log1p(np.maximum(out[:, column], 0.0))
    return out


def file_features(cache: FeatureCache, kind: str, files: list[str], rows_attrs: dict, settings: dict,
                  compute) -> np.ndarray:
    """Per-entry features of ``files`` (computed by ``compute(files) -> (values, ids)``), in the rows
    described by ``rows_attrs`` (their ``file_index`` and ``entry``)."""
    description = {"kind": kind, "files": files_signature(files), "settings": settings}

    def make():
        values, ids = compute(list(files))
        values = np.asarray(values, dtype=np.float64).reshape(len(ids["entry"]), -1)
        return np.column_stack([ids["file_index"], ids["entry"], values])

    packed = cache.get(description, make)
    ids = {"file_index": packed[:, 0].astype(np.int64), "entry": packed[:, 1].astype(np.int64)}
    return packed[:, 2:][align_rows(rows_attrs, ids, files)]


def baseline_features(name: str, rows: TaskRows, cache: FeatureCache, efp_overrides: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) features of the file-based baseline ``name`` for the selected jets."""
    from gnnjets.tasks.baselines import calibration, observables

    samples = rows.samples
    out = []
    for files, attrs in ((samples.train, rows.pool_attrs), (samples.test, rows.test_attrs)):
        if name in ("observables", "efp+observables"):
            values = observable_columns(file_features(cache, "observables", files, attrs, {},
                                                      lambda paths: observables.jet_observables(paths)))
            if name == "efp+observables":
                from gnnjets.tasks.baselines import efp

                settings = efp.efp_settings(rows.task.name if rows.task.name != "energy" else "qg", efp_overrides)
                log.info("EFPs (%s) of %d files: %s", rows.task.name, len(files), settings)
                efps = file_features(cache, "efp", files, attrs, settings,
                                     lambda paths: efp.efp_features(paths, **settings))
                values = np.column_stack([efps, values])
        elif name == "calibration":
            values = file_features(cache, "layers+tracks", files, attrs, {},
                                   lambda paths: calibration.layer_energies(paths, tracks=True))
        else:
            raise ValueError(f"no file-based features for baseline {name!r}")
        out.append(values)
    return out[0], out[1]
