r"""The energy baselines: the EM-scale jet energy and a per-layer linear calibration.

``layer_energies`` -> ``(n, 6)`` float64 [GeV]
    the sum of cell energies (EM scale, noise included) in each calorimeter layer 0..5 (ECAL1-3,
    HCAL1-3); a row sums to ``jet_e``.
``em_scale_energy`` -> ``(n,)`` float64 [GeV]
    the ``jet_e`` branch: the EM-scale sum of the jet's clusters, the uncalibrated baseline.
ids
    as every baseline reader (:mod:`gnnjets.tasks.baselines.reading`), plus ``jet_e`` and
    ``truth_e`` [GeV, float64].

>>> layers, info = layer_energies("data/qg_small.root")                            # doctest: +SKIP
>>> calibration = LayerCalibration().fit(layers, info["truth_e"])                   # doctest: +SKIP
>>> e_calibrated = calibration.predict(layers)                                     # (n,) GeV
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import awkward as ak
import numpy as np
import scipy.optimize

from gnnjets.base.hints import close_matches
from gnnjets.io.arrays import flat_values
from gnnjets.io.schema import N_CALO_LAYERS
from gnnjets.tasks.baselines.reading import ID_BRANCHES, concatenate, selected_chunks

LAYER_BRANCHES = ID_BRANCHES + ("jet_e", "truth_e", "cell_e", "cell_layer")
EM_SCALE_BRANCHES = ID_BRANCHES + ("jet_e", "truth_e")


def layer_energies(paths, *, replica: int | None = 0, tree: str | None = None, mapping=None,
                   chunk_entries: int = 10_000, tracks: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sum of the cell energies in each calorimeter layer for every entry of replica ``replica``.

    With ``tracks`` a seventh column holds the summed track momenta ``sum p = sum pT cosh(eta)``:
    the calorimeter already holds the charged energy, so this column does not add energy but
    tells the fit how much of the jet is charged (and measured better by the tracker), which
    the layer weights alone cannot know; the linear fit decides how much weight it deserves.

    Returns:
        ``(layer_e, ids)``: ``layer_e`` (n, 6) (or (n, 7)) float64 [GeV], columns layers 0..5
        (then the track sum), rows in file order, the layer columns summing to the EM-scale
        ``jet_e`` (negative noise cells included); ``ids`` as in the module docstring plus
        ``jet_e`` and ``truth_e`` (n,) float64 [GeV].
    """
    values, ids = [], []
    branches = LAYER_BRANCHES + (("track_pt", "track_eta") if tracks else ())
    for chunk, chunk_ids in selected_chunks(paths, branches, replica, tree, mapping, chunk_entries):
        sums = _layer_sums(chunk)
        if tracks:
            momentum = ak.sum(chunk["track_pt"] * np.cosh(chunk["track_eta"]), axis=1)
            sums = np.column_stack([sums, ak.to_numpy(momentum).astype(np.float64)])
        values.append(sums)
        ids.append({**chunk_ids, **_energies(chunk)})
    return np.concatenate(values), concatenate(ids)


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
    for chunk, chunk_ids in selected_chunks(paths, EM_SCALE_BRANCHES, replica, tree, mapping, chunk_entries):
        energies = _energies(chunk)
        values.append(energies["jet_e"])
        ids.append({**chunk_ids, **energies})
    return np.concatenate(values), concatenate(ids)


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
