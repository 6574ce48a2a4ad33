r"""Energy flow polynomials of a jet's cells: the EFP baseline of the tagging tasks.

``efp_features`` -> ``(n, K)`` float64
    the K energy flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124) of each selected
    entry, computed with ``energyflow.EFPSet`` (measure ``'hadr'``, normed, :math:`\kappa = 1`)
    from the jet's cells as massless constituents:
    :math:`\mathrm{EFP}_G = \sum_{i_1..i_N} z_{i_1} \cdots z_{i_N} \prod_{(k,l) \in G} \theta_{i_k i_l}^\beta`
    with :math:`z_i = p_{T,i} / \sum_j p_{T,j}`, :math:`p_{T,i} = E_i / \cosh\eta_i`, and
    :math:`\theta_{ij}^2 = \Delta y_{ij}^2 + \Delta\phi_{ij}^2` (:math:`y = \eta`). Column order
    is that of ``efp_set(...).specs`` (column 0 is the degree-0 EFP, 1 for every jet).
ids
    as every baseline reader (:mod:`gnnjets.tasks.baselines.reading`), plus ``n_cells``
    (constituents used).

Which cells are constituents (EFPs): cells with ``cell_e > 0`` (about 40 % of a jet's cells are
negative noise fluctuations; a negative energy fraction has no meaning in an EFP), the
``max_cells`` most energetic of them (ties in file order). The cost of a set of EFPs grows as
:math:`M^\chi` for M constituents (:math:`\chi` = 3 for most of the top set), and a jet holds
250-1900 cells (q/g) or 800-4600 (top), so keeping all is not affordable for tens of thousands of
jets: see :data:`EFP_PRESETS` for the chosen ``max_cells`` and the measurements behind them.
Azimuths are taken relative to the jet axis (:math:`\phi - \phi_\mathrm{jet}` wrapped into
:math:`(-\pi, \pi]`) and rapidities relative to :math:`\eta_\mathrm{jet}`, so no jet straddles
:math:`\pm\pi`; EFPs depend only on angle differences, so the values do not change.

Jets with no positive cell get the EFPs of a one-constituent jet: 1 in the degree-0 column, 0 in
every other (every angle vanishes). That is the limit of a jet whose energy shrinks into one
point, keeps the row finite for a linear head (NaN would poison every fit it enters), and
``ids["n_cells"] == 0`` marks such rows for whoever wants to drop them.

>>> values, ids = efp_features("data/qg_small.root", **EFP_PRESETS["qg"])          # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import awkward as ak
import numpy as np
from tqdm import tqdm

from gnnjets.base.hints import close_matches
from gnnjets.base.kinematics import wrap_phi
from gnnjets.io.arrays import flat_values
from gnnjets.runtime import available_cpus
from gnnjets.tasks.baselines.reading import ID_BRANCHES, concatenate, selected_chunks

EFP_BRANCHES = ID_BRANCHES + ("jet_eta", "jet_phi", "cell_e", "cell_eta", "cell_phi")

#: Settings of :func:`efp_features` per task; ``efp_features(paths, **EFP_PRESETS["top"])``.
#: Rates: jets per CPU-second on a 2-core development machine (energyflow 1.4), on data/qg_small.root and
#: data/top_small.root alike; ``n_jobs=2`` runs at ~1.9x that on two free cores (the pool costs ~4 %).
#: AUCs: best single EFP of the set on replica 0 of the small files (a check that truncating the
#: cells loses no discrimination, +-0.015 statistical).
EFP_PRESETS = MappingProxyType({
    # d <= 5: 102 EFPs (54 connected); beta = 0.5 as for top. 200 cells hold all of the jet's net
    # energy (median 101 %, 10 % quantile 98 % of jet_e). ~23 jets/s/core: 20k jets ~7 min on 2
    # cores. q/g separation does grow with the soft cells: best-EFP AUC 0.712 with 100 cells,
    # 0.725 with 200, 0.734 with every positive cell (~430, 16x the cost of 200).
    # Default 100 cells: measured 41k q/g jets in 4 min on the 2-core machine shared with other
    # jobs (200 cells: ~14 min); ask for more with --set efp.max_cells=200 (or null: every cell).
    "qg": MappingProxyType({"dmax": 5, "beta": 0.5, "extra": "", "max_cells": 100}),
    # d <= 7, chi <= 3: 995 EFPs (486 connected), the set of the top-tagging landscape
    # (arXiv:1902.09914). 100 cells hold 81 % of the net energy (median), the three prongs' cores.
    # ~7 jets/s/core: 40k jets ~50 min on 2 cores; 150 cells cost 2.4x, 200 cells 5x (M^3 for
    # chi = 3). Top/QCD best-EFP AUC 0.940 / 0.936 / 0.934 with 50 / 100 / 150 cells: 50 cells
    # would do for tagging at 2.5x the speed; 100 keeps the values closer to those of all cells
    # (log-correlation across jets with 300 cells: median 0.90 against 0.83).
    # Default 40 cells: tagging saturates by 50 cells (--set efp.max_cells=100 for values closer to
    # those of all cells). Measured: 42k jets in 35 min on the 2-core machine shared with two
    # training jobs (100 cells: ~50 min on 2 free cores).
    "top": MappingProxyType({"dmax": 7, "beta": 0.5, "extra": "c<=3", "max_cells": 40}),
})
#: the keys :func:`efp_settings` accepts as overrides of a preset
EFP_SETTING_KEYS = ("dmax", "beta", "extra", "max_cells", "n_jobs")
#: energyflow's EFP table goes up to degree 10
EFP_MAX_DEGREE = 10
#: columns energyflow selects EFPs by (``EFPSet.sel``); ``chi`` is accepted for ``c``
EFP_SELECTION_COLUMNS = MappingProxyType({
    "n": "number of vertices", "e": "number of distinct edges", "d": "degree (edges with multiplicity)",
    "v": "maximum valency", "k": "index among EFPs of the same n and d", "c": "VE complexity chi",
    "p": "number of connected (prime) components", "h": "number of valency-1 vertices",
})
_SELECTION = re.compile(r"^\s*([a-z]+)\s*(<=|>=|==|!=|<|>)\s*(\d+)\s*$")


def efp_settings(task: str, overrides: Mapping | None = None) -> dict:
    """The :func:`efp_features` keyword arguments for ``task`` (``'qg'`` or ``'top'``): the preset
    with ``overrides`` applied, checked (so a bad config fails before any reading).

    Raises ``ValueError`` for an unknown task or key and for invalid values, naming them.
    """
    if task not in EFP_PRESETS:
        raise ValueError(f"no EFP preset for task {task!r}{close_matches(str(task), EFP_PRESETS)} "
                         f"Presets: {', '.join(EFP_PRESETS)}")
    overrides = dict(overrides or {})
    unknown = [key for key in overrides if key not in EFP_SETTING_KEYS]
    if unknown:
        raise ValueError(f"unknown EFP setting {unknown[0]!r}{close_matches(str(unknown[0]), EFP_SETTING_KEYS)} "
                         f"Allowed: {', '.join(EFP_SETTING_KEYS)}")
    settings = {**EFP_PRESETS[task], **overrides}
    _check_efp_arguments(settings["dmax"], settings["beta"], settings["max_cells"], settings.get("n_jobs"))
    _selections(settings["extra"])
    return settings


def _check_efp_arguments(dmax, beta, max_cells, n_jobs) -> None:
    if isinstance(dmax, bool) or not isinstance(dmax, (int, np.integer)) or not 1 <= dmax <= EFP_MAX_DEGREE:
        raise ValueError(f"'dmax' must be an int in 1..{EFP_MAX_DEGREE} (the largest EFP degree), not {dmax!r}")
    number = isinstance(beta, (int, float, np.number)) and not isinstance(beta, bool)
    if not (number and math.isfinite(beta) and beta > 0):
        raise ValueError(f"'beta' must be a positive number (the angular exponent), not {beta!r}")
    if max_cells is not None and (isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer))
                                  or max_cells < 1):
        raise ValueError(f"'max_cells' must be a positive int or None (every positive cell), not {max_cells!r}")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1):
        raise ValueError(f"'n_jobs' must be a positive int or None (every available core), not {n_jobs!r}")


def _selections(extra: str | Sequence[str]) -> tuple[str, ...]:
    """``extra`` as energyflow selection strings (``'chi<=3'`` -> ``'c<=3'``), each checked."""
    if isinstance(extra, str):
        extra = [extra] if extra.strip() else []
    elif not (isinstance(extra, Sequence) and all(isinstance(item, str) for item in extra)):
        raise ValueError(f"'extra' must be a selection string such as 'c<=3' or a list of them, not {extra!r}")
    selections = []
    for item in extra:
        match = _SELECTION.match(item)
        column = match.group(1) if match else None
        column = "c" if column == "chi" else column
        if column not in EFP_SELECTION_COLUMNS:
            what = (f"unknown column {match.group(1)!r}{close_matches(match.group(1), [*EFP_SELECTION_COLUMNS, 'chi'])}"
                    if match else "not of the form <column><op><int>")
            columns = "; ".join(f"{name}: {doc}" for name, doc in EFP_SELECTION_COLUMNS.items())
            raise ValueError(f"'extra' selection {item!r}: {what} Write e.g. 'c<=3' with a column of ({columns}) "
                             f"and one of <, <=, ==, !=, >=, >")
        selections.append(f"{column}{match.group(2)}{match.group(3)}")
    return tuple(selections)


def efp_set(*, dmax: int = EFP_PRESETS["top"]["dmax"], beta: float = EFP_PRESETS["top"]["beta"],
            extra: str | Sequence[str] = EFP_PRESETS["top"]["extra"]):
    """The ``energyflow.EFPSet`` of the EFPs with degree <= ``dmax`` passing ``extra`` (measure
    ``'hadr'``, normed, coordinates (pT, y, phi)); ``.count()`` EFPs, described by ``.specs``."""
    import energyflow  # imported here: ~0.5 s, and only the EFP baseline needs it

    _check_efp_arguments(dmax, beta, None, None)
    selections = _selections(extra)
    efps = energyflow.EFPSet(f"d<={int(dmax)}", *selections, measure="hadr", beta=float(beta), normed=True,
                             coords="ptyphim")
    if efps.count() == 0:
        raise ValueError(f"dmax={dmax}, extra={extra!r} select no EFP")
    return efps


def cell_constituents(chunk: ak.Array, *, max_cells: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The massless constituents of each record: its positive cells, the ``max_cells`` most
    energetic (``None``: all), in decreasing energy, ties in file order.

    Args:
        chunk: records with fields ``cell_e`` [GeV], ``cell_eta``, ``cell_phi``, ``jet_eta``, ``jet_phi``.
        max_cells: constituents kept per record.

    Returns:
        One ``(M, 3)`` float64 array per record, columns (pT [GeV], y - eta_jet, phi - phi_jet
        wrapped into (-pi, pi]), and the ``(n,)`` counts M.
    """
    num_records = len(chunk)
    counts = ak.to_numpy(ak.num(chunk["cell_e"], axis=1)).astype(np.int64)
    record = np.repeat(np.arange(num_records), counts)  # (N,) record of each cell
    energy = flat_values(chunk["cell_e"]).astype(np.float64)
    eta = flat_values(chunk["cell_eta"]).astype(np.float64)
    phi = flat_values(chunk["cell_phi"]).astype(np.float64)
    # lexsort is stable: within a record, decreasing energy with ties in file order
    index = np.lexsort((-energy, record))
    index = index[energy[index] > 0]
    if max_cells is not None:
        starts = np.searchsorted(record[index], np.arange(num_records))
        rank = np.arange(len(index)) - starts[record[index]]  # 0 for the most energetic cell of each record
        index = index[rank < max_cells]
    record = record[index]
    kept_counts = np.bincount(record, minlength=num_records)
    jet_eta = ak.to_numpy(chunk["jet_eta"]).astype(np.float64)
    jet_phi = ak.to_numpy(chunk["jet_phi"]).astype(np.float64)
    constituents = np.stack([energy[index] / np.cosh(eta[index]),  # (M_total, 3)
                             eta[index] - jet_eta[record],
                             wrap_phi(phi[index] - jet_phi[record])], axis=1)
    return np.split(constituents, np.cumsum(kept_counts)[:-1]), kept_counts


def compute_efps(constituents: Sequence[np.ndarray], efps, *, n_jobs: int | None = None) -> np.ndarray:
    """``(n, efps.count())`` EFPs of each constituent array (as :func:`cell_constituents` makes them).

    Empty arrays get the EFPs of one constituent (see the module docstring). With ``n_jobs`` > 1
    and enough jets, energyflow's ``batch_compute`` spreads the jets over a pool of processes.
    """
    n_jobs = available_cpus() if n_jobs is None else int(n_jobs)
    values = np.empty((len(constituents), efps.count()))  # (n, K)
    counts = np.array([len(c) for c in constituents], dtype=np.int64)
    values[counts == 0] = efps.compute(np.array([[1.0, 0.0, 0.0]]))
    events = [c for c in constituents if len(c)]
    if not events:
        return values
    # a pool costs ~0.1 s to start: not worth it for a handful of jets
    if n_jobs > 1 and len(events) >= 4 * n_jobs:
        values[counts > 0] = efps.batch_compute(events, n_jobs=n_jobs)
    else:
        values[counts > 0] = np.array([efps.compute(event) for event in events])
    return values


def efp_features(paths, *, replica: int | None = 0, dmax: int = EFP_PRESETS["top"]["dmax"],
                 beta: float = EFP_PRESETS["top"]["beta"], extra: str | Sequence[str] = EFP_PRESETS["top"]["extra"],
                 max_cells: int | None = EFP_PRESETS["top"]["max_cells"],
                 n_jobs: int | None = None, tree: str | None = None, mapping=None,
                 chunk_entries: int = 2000, progress: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Energy flow polynomials of the cells of every entry of replica ``replica``, in file order.

    Args:
        paths: ROOT file(s) or glob(s), as :func:`gnnjets.io.read_jets` takes them.
        replica: the replica whose entries are kept; ``None`` keeps every entry.
        dmax: largest EFP degree (number of edges).
        beta: angular exponent of the ``'hadr'`` measure.
        extra: further energyflow selections, ``'c<=3'`` (``'chi<=3'`` is accepted) or a list of
            them; ``""`` for none (with dmax = 7 that adds 5 EFPs of chi = 4, which cost M^4).
        max_cells: the most energetic positive cells used per jet (``None``: all; slow, see
            :data:`EFP_PRESETS`).
        n_jobs: processes for energyflow's ``batch_compute`` (default: every available core).
        tree, mapping: as for :func:`gnnjets.io.read_jets`.
        chunk_entries: entries read (and computed in one batch) at a time.
        progress: a tqdm bar over the jets on stderr (35 min for 42k top jets at the top preset).

    The defaults are the top preset (:data:`EFP_PRESETS`); ``**EFP_PRESETS["qg"]`` for q/g.

    Returns:
        ``(values, ids)``: ``values`` (n, K) float64, ``ids`` as in the module docstring, with
        ``n_cells`` (n,) the constituents used per row (0: no positive cell, see the module docstring).
    """
    _check_efp_arguments(dmax, beta, max_cells, n_jobs)
    efps = efp_set(dmax=dmax, beta=beta, extra=extra)
    values, ids = [], []
    with tqdm(unit="jet", desc="EFPs", disable=not progress, leave=False) as bar:
        for chunk, chunk_ids in selected_chunks(paths, EFP_BRANCHES, replica, tree, mapping, chunk_entries):
            constituents, n_cells = cell_constituents(chunk, max_cells=max_cells)
            values.append(compute_efps(constituents, efps, n_jobs=n_jobs))
            ids.append({**chunk_ids, "n_cells": n_cells})
            bar.update(len(constituents))
    return np.concatenate(values), concatenate(ids)
