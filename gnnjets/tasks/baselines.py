r"""The non-GNN baselines of the downstream tasks: energy flow polynomials of the cells, the EM-scale
jet energy, and a per-layer linear calibration.

What the arrays are:

``efp_features`` -> ``(n, K)`` float64
    the K energy flow polynomials (Komiske, Metodiev, Thaler, arXiv:1712.07124) of each selected
    entry, computed with ``energyflow.EFPSet`` (measure ``'hadr'``, normed, :math:`\kappa = 1`)
    from the jet's cells as massless constituents:
    :math:`\mathrm{EFP}_G = \sum_{i_1..i_N} z_{i_1} \cdots z_{i_N} \prod_{(k,l) \in G} \theta_{i_k i_l}^\beta`
    with :math:`z_i = p_{T,i} / \sum_j p_{T,j}`, :math:`p_{T,i} = E_i / \cosh\eta_i`, and
    :math:`\theta_{ij}^2 = \Delta y_{ij}^2 + \Delta\phi_{ij}^2` (:math:`y = \eta`). Column order
    is that of ``efp_set(...).specs`` (column 0 is the degree-0 EFP, 1 for every jet).
``layer_energies`` -> ``(n, 6)`` float64 [GeV]
    the sum of cell energies (EM scale, noise included) in each calorimeter layer 0..5 (ECAL1-3,
    HCAL1-3); a row sums to ``jet_e``.
``em_scale_energy`` -> ``(n,)`` float64 [GeV]
    the ``jet_e`` branch: the EM-scale sum of the jet's clusters, the uncalibrated baseline.
ids
    every reader returns ``(values, ids)``: ``ids`` maps ``file_index`` (index into the expanded
    paths, int32), ``entry`` (int64), ``event_id``, ``jet_index``, ``replica``, ``label`` to
    ``(n,)`` arrays, row ``i`` describing row ``i`` of ``values``. Rows follow file order (file 0's
    entries, then file 1's, ...), keeping the entries of replica ``replica`` (``None``: all).
    ``efp_features`` adds ``n_cells`` (constituents used), ``layer_energies`` and
    ``em_scale_energy`` add ``jet_e`` and ``truth_e`` [GeV, float64].

Which cells are constituents (EFPs): cells with ``cell_e > 0`` (about 40 % of a jet's cells are
negative noise fluctuations; a negative energy fraction has no meaning in an EFP), the
``max_cells`` most energetic of them (ties in file order). The cost of a set of EFPs grows as
:math:`M^\chi` for M constituents (:math:`\chi` = 3 for most of the top set), and a jet holds
250-1900 cells (q/g) or 800-4600 (top), so keeping all is not affordable for tens of thousands of
jets: see :data:`EFP_PRESETS` for the chosen ``max_cells`` and the measurements behind them.
Azimuths are taken relative to the jet axis (:math:`\phi - \phi_\mathrm{jet}` wrapped into
:math:`[-\pi, \pi)`) and rapidities relative to :math:`\eta_\mathrm{jet}`, so no jet straddles
:math:`\pm\pi`; EFPs depend only on angle differences, so the values do not change.

Jets with no positive cell get the EFPs of a one-constituent jet: 1 in the degree-0 column, 0 in
every other (every angle vanishes). That is the limit of a jet whose energy shrinks into one
point, keeps the row finite for a linear head (NaN would poison every fit it enters), and
``ids["n_cells"] == 0`` marks such rows for whoever wants to drop them.

>>> values, ids = efp_features("data/qg_small.root", **EFP_PRESETS["qg"])          # doctest: +SKIP
>>> layers, info = layer_energies("data/qg_small.root")                            # doctest: +SKIP
>>> calibration = LayerCalibration().fit(layers, info["truth_e"])                   # doctest: +SKIP
>>> e_calibrated = calibration.predict(layers)                                     # (n,) GeV
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

import awkward as ak
import numpy as np
import scipy.optimize

from gnnjets.io.errors import EmptySelectionError
from gnnjets.base.hints import close_matches
from gnnjets.base.kinematics import wrap_phi
from gnnjets.io.arrays import flat_values
from gnnjets.io.reader import read_jets
from gnnjets.io.schema import N_CALO_LAYERS

#: the schema branches that fill ``ids`` (besides the reader's ``source_file_index`` and ``entry``)
ID_BRANCHES = ("event_id", "jet_index", "replica", "label")
EFP_BRANCHES = ID_BRANCHES + ("jet_eta", "jet_phi", "cell_e", "cell_eta", "cell_phi")
LAYER_BRANCHES = ID_BRANCHES + ("jet_e", "truth_e", "cell_e", "cell_layer")
EM_SCALE_BRANCHES = ID_BRANCHES + ("jet_e", "truth_e")

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


# ---------------------------------------------------------------------------------------------
# energy flow polynomials
# ---------------------------------------------------------------------------------------------

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
        wrapped into [-pi, pi)), and the ``(n,)`` counts M.
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


def default_n_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def compute_efps(constituents: Sequence[np.ndarray], efps, *, n_jobs: int | None = None) -> np.ndarray:
    """``(n, efps.count())`` EFPs of each constituent array (as :func:`cell_constituents` makes them).

    Empty arrays get the EFPs of one constituent (see the module docstring). With ``n_jobs`` > 1
    and enough jets, energyflow's ``batch_compute`` spreads the jets over a pool of processes.
    """
    n_jobs = default_n_jobs() if n_jobs is None else int(n_jobs)
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
                 chunk_entries: int = 2000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
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

    The defaults are the top preset (:data:`EFP_PRESETS`); ``**EFP_PRESETS["qg"]`` for q/g.

    Returns:
        ``(values, ids)``: ``values`` (n, K) float64, ``ids`` as in the module docstring, with
        ``n_cells`` (n,) the constituents used per row (0: no positive cell, see the module docstring).
    """
    _check_efp_arguments(dmax, beta, max_cells, n_jobs)
    efps = efp_set(dmax=dmax, beta=beta, extra=extra)
    values, ids = [], []
    for chunk, chunk_ids in _selected_chunks(paths, EFP_BRANCHES, replica, tree, mapping, chunk_entries):
        constituents, n_cells = cell_constituents(chunk, max_cells=max_cells)
        values.append(compute_efps(constituents, efps, n_jobs=n_jobs))
        ids.append({**chunk_ids, "n_cells": n_cells})
    return np.concatenate(values), _concatenate(ids)


# ---------------------------------------------------------------------------------------------
# energy baselines
# ---------------------------------------------------------------------------------------------

def layer_energies(paths, *, replica: int | None = 0, tree: str | None = None, mapping=None,
                   chunk_entries: int = 10_000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sum of the cell energies in each calorimeter layer for every entry of replica ``replica``.

    Calorimeter only (no track column): the standard per-layer calibration weights calorimeter
    energies, and a track-pT sum would double count the charged energy the cells already hold.

    Returns:
        ``(layer_e, ids)``: ``layer_e`` (n, 6) float64 [GeV], columns layers 0..5, rows in file
        order, each summing to the EM-scale ``jet_e`` (negative noise cells included); ``ids``
        as in the module docstring plus ``jet_e`` and ``truth_e`` (n,) float64 [GeV].
    """
    values, ids = [], []
    for chunk, chunk_ids in _selected_chunks(paths, LAYER_BRANCHES, replica, tree, mapping, chunk_entries):
        values.append(_layer_sums(chunk))
        ids.append({**chunk_ids, **_energies(chunk)})
    return np.concatenate(values), _concatenate(ids)


def _layer_sums(chunk: ak.Array) -> np.ndarray:
    num_records = len(chunk)
    counts = ak.to_numpy(ak.num(chunk["cell_e"], axis=1))
    layer = flat_values(chunk["cell_layer"]).astype(np.int64)
    if len(layer) and (layer.min() < 0 or layer.max() >= N_CALO_LAYERS):
        bad = int(np.flatnonzero((layer < 0) | (layer >= N_CALO_LAYERS))[0])
        record = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise ValueError(f"cell_layer {layer[bad]} outside 0..{N_CALO_LAYERS - 1} at "
                         f"file_index {int(chunk['source_file_index'][record])}, entry {int(chunk['entry'][record])}")
    record = np.repeat(np.arange(num_records), counts)
    sums = np.bincount(record * N_CALO_LAYERS + layer, weights=flat_values(chunk["cell_e"]).astype(np.float64),
                       minlength=num_records * N_CALO_LAYERS)
    return sums.reshape(num_records, N_CALO_LAYERS)  # (n, 6)


def em_scale_energy(paths, *, replica: int | None = 0, tree: str | None = None, mapping=None,
                    chunk_entries: int = 100_000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The EM-scale jet energy (branch ``jet_e``) of every entry of replica ``replica``: the
    uncalibrated baseline. Returns ``(jet_e (n,) float64 [GeV], ids)``, ids as for :func:`layer_energies`."""
    values, ids = [], []
    for chunk, chunk_ids in _selected_chunks(paths, EM_SCALE_BRANCHES, replica, tree, mapping, chunk_entries):
        energies = _energies(chunk)
        values.append(energies["jet_e"])
        ids.append({**chunk_ids, **energies})
    return np.concatenate(values), _concatenate(ids)


def _energies(chunk: ak.Array) -> dict[str, np.ndarray]:
    return {name: ak.to_numpy(chunk[name]).astype(np.float64) for name in ("jet_e", "truth_e")}


class LayerCalibration:
    r"""Per-layer linear calibration: :math:`E_\mathrm{calib} = \sum_L w_L E_L\ (+ b)`.

    Fitted by relative least squares,
    :math:`\min_{w, b} \sum_i s_i \big((\sum_L w_L E_{iL} + b - E_i^\mathrm{true}) / E_i^\mathrm{true}\big)^2`,
    so that every jet counts for its relative error and high-energy jets do not dominate.

    Args:
        fit_offset: fit the offset b [GeV] too (default: b = 0, a pure scale per layer).
        non_negative: constrain the weights to w_L >= 0 (the offset stays free). A layer's
            response cannot be negative; unconstrained fits give negative weights to layers
            that correlate with the others, which then extrapolate badly.

    Attributes (after :meth:`fit` or :meth:`from_dict`): ``weights`` (L,), ``offset`` [GeV].
    """

    def __init__(self, *, fit_offset: bool = False, non_negative: bool = True):
        if not isinstance(fit_offset, bool) or not isinstance(non_negative, bool):
            raise TypeError(f"'fit_offset' and 'non_negative' must be bools, not {fit_offset!r}, {non_negative!r}")
        self.fit_offset = fit_offset
        self.non_negative = non_negative
        self._weights: np.ndarray | None = None
        self._offset = 0.0

    def __repr__(self) -> str:
        if self._weights is None:
            fitted = "not fitted"
        else:
            fitted = f"weights=[{', '.join(f'{w:.4g}' for w in self._weights)}], offset={self._offset:.4g}"
        return f"LayerCalibration(fit_offset={self.fit_offset}, non_negative={self.non_negative}, {fitted})"

    @property
    def weights(self) -> np.ndarray:
        """(L,) weight of each layer (a copy)."""
        return self._fitted_weights().copy()

    @property
    def offset(self) -> float:
        """The offset b [GeV] (0 unless ``fit_offset``)."""
        self._fitted_weights()
        return self._offset

    def _fitted_weights(self) -> np.ndarray:
        if self._weights is None:
            raise RuntimeError("LayerCalibration is not fitted: call fit(layer_e, e_true) or from_dict(...) first")
        return self._weights

    def fit(self, layer_e, e_true, *, sample_weight=None) -> LayerCalibration:
        """Fit on ``layer_e`` (n, L) [GeV] and ``e_true`` (n,) [GeV, > 0]; returns ``self``.

        ``sample_weight`` (n,), >= 0, multiplies each jet's squared relative residual.
        """
        layer_e = _check_matrix("layer_e", layer_e)
        n, num_layers = layer_e.shape
        e_true = _check_vector("e_true", e_true, n)
        if (e_true <= 0).any():
            bad = int(np.flatnonzero(e_true <= 0)[0])
            raise ValueError(f"'e_true' must be > 0 (the fit minimises relative residuals); row {bad} is {e_true[bad]}")
        num_parameters = num_layers + self.fit_offset
        if n < num_parameters:
            raise ValueError(f"'layer_e' has {n} rows: need at least {num_parameters} jets to fit {num_parameters} "
                             f"parameters")
        design = layer_e / e_true[:, None]  # (n, L): residual_i = design_i . w + b / E_i - 1
        if self.fit_offset:
            design = np.column_stack([design, 1.0 / e_true])  # (n, L + 1)
        target = np.ones(n)
        if sample_weight is not None:
            sample_weight = _check_vector("sample_weight", sample_weight, n)
            if (sample_weight < 0).any():
                bad = int(np.flatnonzero(sample_weight < 0)[0])
                raise ValueError(f"'sample_weight' must be >= 0; row {bad} is {sample_weight[bad]}")
            if not (sample_weight > 0).any():
                raise ValueError("'sample_weight' is 0 for every row: nothing to fit")
            root = np.sqrt(sample_weight)
            design, target = design * root[:, None], target * root
        if self.non_negative:
            lower = np.zeros(num_parameters)
            if self.fit_offset:
                lower[-1] = -np.inf
            solution = scipy.optimize.lsq_linear(design, target, bounds=(lower, np.inf), method="bvls").x
        else:
            solution = np.linalg.lstsq(design, target, rcond=None)[0]
        self._weights = np.array(solution[:num_layers], dtype=np.float64)
        self._offset = float(solution[num_layers]) if self.fit_offset else 0.0
        return self

    def predict(self, layer_e) -> np.ndarray:
        """(n,) calibrated energies [GeV] of ``layer_e`` (n, L)."""
        weights = self._fitted_weights()
        layer_e = _check_matrix("layer_e", layer_e)
        if layer_e.shape[1] != len(weights):
            raise ValueError(f"'layer_e' has {layer_e.shape[1]} columns, the calibration {len(weights)} layers")
        return layer_e @ weights + self._offset  # (n,)

    def to_dict(self) -> dict:
        """Plain data for JSON: ``weights`` (list; None unfitted), ``offset``, ``fit_offset``, ``non_negative``."""
        weights = None if self._weights is None else [float(w) for w in self._weights]
        return {"weights": weights, "offset": float(self._offset), "fit_offset": self.fit_offset,
                "non_negative": self.non_negative}

    @classmethod
    def from_dict(cls, data: Mapping) -> LayerCalibration:
        """The calibration :meth:`to_dict` wrote."""
        if not isinstance(data, Mapping):
            raise TypeError(f"LayerCalibration.from_dict needs a dict, not {type(data).__name__}")
        allowed = ("weights", "offset", "fit_offset", "non_negative")
        for key in data:
            if key not in allowed:
                raise ValueError(f"unknown LayerCalibration key {key!r}{close_matches(str(key), allowed)} "
                                 f"Allowed: {', '.join(allowed)}")
        if "weights" not in data:
            raise ValueError("LayerCalibration.from_dict: missing 'weights'")
        calibration = cls(fit_offset=data.get("fit_offset", False), non_negative=data.get("non_negative", True))
        if data["weights"] is not None:
            weights = np.asarray(data["weights"], dtype=np.float64)
            if weights.ndim != 1 or len(weights) == 0 or not np.isfinite(weights).all():
                raise ValueError(f"'weights' must be a non-empty list of finite numbers, not {data['weights']!r}")
            offset = float(data.get("offset", 0.0))
            if not math.isfinite(offset):
                raise ValueError(f"'offset' must be finite, not {offset}")
            calibration._weights, calibration._offset = weights, offset
        return calibration


def _check_matrix(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name!r} must be 2-d (jets, layers), not of shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name!r} is empty (shape {array.shape}): need at least one jet and one layer")
    _check_finite(name, array)
    return array


def _check_vector(name: str, value, length: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name!r} must be 1-d (one value per jet), not of shape {array.shape}")
    if len(array) != length:
        raise ValueError(f"{name!r} has {len(array)} values but 'layer_e' has {length} rows")
    _check_finite(name, array)
    return array


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        where = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name!r} holds {array[tuple(where)]} at index {tuple(int(i) for i in where)}; "
                         f"inputs must be finite")


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _selected_chunks(paths, branches, replica, tree, mapping,
                     chunk_entries) -> Iterator[tuple[ak.Array, dict[str, np.ndarray]]]:
    """(chunk, ids) for the entries of replica ``replica`` (``None``: all), in file order."""
    if replica is not None and (isinstance(replica, bool) or not isinstance(replica, (int, np.integer)) or replica < 0):
        raise ValueError(f"'replica' must be a non-negative int or None (every entry), not {replica!r}")
    if isinstance(chunk_entries, bool) or not isinstance(chunk_entries, (int, np.integer)) or chunk_entries < 1:
        raise ValueError(f"'chunk_entries' must be a positive int, not {chunk_entries!r}")
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


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
