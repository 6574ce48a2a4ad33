"""The non-GNN baselines: EFPs of the cells against closed forms and energyflow called directly,
reading conventions (order, ids, replicas), layer energies, and the per-layer calibration."""

from __future__ import annotations

import itertools
import json
import math

import awkward as ak
import numpy as np
import pytest

from conftest import write_synthetic_jets
from gnnjets.io import read_all
from gnnjets.io.errors import EmptySelectionError
from gnnjets.tasks.baselines.calibration import LayerCalibration, em_scale_energy, layer_energies
from gnnjets.tasks.baselines.efp import (EFP_PRESETS, cell_constituents, compute_efps, efp_features, efp_set,
                                         efp_settings)

energyflow = pytest.importorskip("energyflow")

BETA = 0.5


def hand_chunk(cells: list[list[tuple[float, float, float]]], jet_eta: list[float], jet_phi: list[float]) -> ak.Array:
    """Records with fields as read from a file: ``cells[j]`` = [(e, eta, phi), ...] of jet j."""
    return ak.Array({
        "cell_e": [[c[0] for c in jet] for jet in cells],
        "cell_eta": [[c[1] for c in jet] for jet in cells],
        "cell_phi": [[c[2] for c in jet] for jet in cells],
        "jet_eta": jet_eta, "jet_phi": jet_phi,
    })


def canonical(edges) -> tuple:
    """A multigraph's edge list up to relabelling of its vertices (brute force: small graphs)."""
    vertices = sorted({v for edge in edges for v in edge})
    return min((tuple(sorted(tuple(sorted((order[vertices.index(a)], order[vertices.index(b)]))) for a, b in edges))
                for order in itertools.permutations(range(len(vertices)))), default=())


def column_of(efps, edges) -> int:
    """Column of the EFP of the multigraph ``edges`` in ``efps``."""
    graphs = [canonical(graph) for graph in efps.graphs()]
    return graphs.index(canonical(edges))


def efps_of(chunk, *, dmax=3, max_cells=None, extra="", n_jobs=1):
    constituents, n_cells = cell_constituents(chunk, max_cells=max_cells)
    return compute_efps(constituents, efp_set(dmax=dmax, beta=BETA, extra=extra), n_jobs=n_jobs), n_cells


# ---------------------------------------------------------------- EFP values

def test_two_cell_efps_match_closed_forms():
    e1, e2, eta1, eta2, dphi = 30.0, 10.0, 0.3, 0.1, 0.2
    chunk = hand_chunk([[(e1, eta1, 1.0), (e2, eta2, 1.0 + dphi)]], [0.2], [1.1])
    values, _ = efps_of(chunk, dmax=2)
    efps = efp_set(dmax=2, beta=BETA)
    pt1, pt2 = e1 / math.cosh(eta1), e2 / math.cosh(eta2)
    z1, z2 = pt1 / (pt1 + pt2), pt2 / (pt1 + pt2)
    theta = math.hypot(eta1 - eta2, dphi)
    assert values[0, column_of(efps, [])] == pytest.approx(1.0)  # degree 0: sum of z = 1
    # sum over ordered pairs (i, j): 2 z1 z2 theta^beta; the diagonal has theta = 0
    assert values[0, column_of(efps, [(0, 1)])] == pytest.approx(2 * z1 * z2 * theta**BETA, rel=1e-9)
    assert values[0, column_of(efps, [(0, 1), (0, 1)])] == pytest.approx(2 * z1 * z2 * theta**(2 * BETA), rel=1e-9)
    # the chain i-j-k: sum_j z_j (sum_{i != j} z_i theta^beta)^2 = z1 z2 (z1 + z2) theta^(2 beta)
    assert values[0, column_of(efps, [(0, 1), (1, 2)])] == pytest.approx(z1 * z2 * theta**(2 * BETA), rel=1e-9)
    # a disconnected graph is the product of its components
    assert values[0, column_of(efps, [(0, 1), (2, 3)])] == pytest.approx((2 * z1 * z2 * theta**BETA)**2, rel=1e-9)


def test_efps_match_energyflow_called_directly():
    rng = np.random.default_rng(3)
    n = 25
    e, eta, phi = rng.exponential(10, n), rng.normal(0.5, 0.2, n), rng.normal(-0.4, 0.2, n)
    chunk = hand_chunk([list(zip(e, eta, phi))], [0.5], [-0.4])
    values, n_cells = efps_of(chunk, dmax=4, extra="chi<=2")
    direct = energyflow.EFPSet("d<=4", "c<=2", measure="hadr", beta=BETA, normed=True, coords="ptyphim")
    expected = direct.compute(np.column_stack([e / np.cosh(eta), eta, phi]))
    assert n_cells.tolist() == [n]
    np.testing.assert_allclose(values[0], expected, rtol=1e-10, atol=1e-14)
    # one EFP on its own, as energyflow.EFP computes it
    triangle = energyflow.EFP([(0, 1), (1, 2), (0, 2)], measure="hadr", beta=BETA, normed=True, coords="ptyphim")
    column = column_of(efp_set(dmax=4, beta=BETA, extra="c<=3"), [(0, 1), (0, 2), (1, 2)])
    full, _ = efps_of(chunk, dmax=4, extra="c<=3")
    assert full[0, column] == pytest.approx(triangle.compute(np.column_stack([e / np.cosh(eta), eta, phi])), rel=1e-10)


def test_efps_invariant_under_phi_rotation_across_pi():
    rng = np.random.default_rng(5)
    n = 30
    e, eta, dphi = rng.exponential(5, n), rng.normal(0, 0.15, n), rng.normal(0, 0.15, n)

    def jet(phi_axis):
        phi = np.mod(phi_axis + dphi + np.pi, 2 * np.pi) - np.pi  # stored wrapped, as in the files
        return hand_chunk([list(zip(e, eta, phi))], [0.0], [float(np.mod(phi_axis + np.pi, 2 * np.pi) - np.pi)])

    central, _ = efps_of(jet(0.3), dmax=4)
    for axis in (np.pi - 0.02, -np.pi + 0.01, np.pi, 2.0):
        chunk = jet(axis)
        assert (np.abs(ak.to_numpy(chunk.cell_phi[0])) > 3.0).any() or axis == 2.0
        constituents, _ = cell_constituents(chunk, max_cells=None)
        assert np.abs(constituents[0][:, 2]).max() < 1.0  # measured from the axis: no 2 pi jumps
        values, _ = efps_of(chunk, dmax=4)
        np.testing.assert_allclose(values, central, rtol=1e-9, atol=1e-12)


def test_max_cells_keeps_the_most_energetic_positive_cells():
    cells = [(1.0, 0.0, 0.1), (5.0, 0.1, 0.0), (-3.0, 0.2, 0.0), (2.0, 0.0, 0.2), (5.0, 0.3, 0.1), (0.5, 0.1, 0.1)]
    chunk = hand_chunk([cells], [0.0], [0.0])
    constituents, n_cells = cell_constituents(chunk, max_cells=3)
    assert n_cells.tolist() == [3]
    # decreasing energy, ties in file order: cells 1, 4, 3
    np.testing.assert_allclose(constituents[0][:, 0], [5.0 / math.cosh(0.1), 5.0 / math.cosh(0.3), 2.0])
    np.testing.assert_allclose(constituents[0][:, 1], [0.1, 0.3, 0.0])
    everything, n_all = cell_constituents(chunk, max_cells=None)
    assert n_all.tolist() == [5]  # the negative cell is never a constituent
    energies = everything[0][:, 0] * np.cosh(everything[0][:, 1])  # jet_eta = 0: y is eta
    np.testing.assert_allclose(energies, [5.0, 5.0, 2.0, 1.0, 0.5])
    assert len(cell_constituents(chunk, max_cells=100)[0][0]) == 5
    # the EFPs of the truncated jet are those of its three cells
    kept = [cells[1], cells[4], cells[3]]
    values, _ = efps_of(chunk, dmax=3, max_cells=3)
    expected, _ = efps_of(hand_chunk([kept], [0.0], [0.0]), dmax=3)
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_jets_without_positive_cells_get_the_one_constituent_values():
    jets = [[], [(-1.0, 0.0, 0.0), (-2.0, 0.1, 0.1)], [(4.0, 0.2, 0.3)], [(1.0, 0.0, 0.0), (1.0, 0.1, 0.0)]]
    chunk = hand_chunk(jets, [0.0] * 4, [0.0] * 4)
    values, n_cells = efps_of(chunk, dmax=3)
    assert n_cells.tolist() == [0, 0, 1, 2]
    expected = np.zeros(values.shape[1])
    expected[0] = 1.0  # degree 0
    for row in range(3):
        np.testing.assert_array_equal(values[row], expected)
    assert (values[3, 1:] > 0).any()


def test_batch_compute_with_a_pool_equals_the_loop():
    rng = np.random.default_rng(7)
    jets = [[(float(rng.exponential(5)), float(rng.normal(0, 0.2)), float(rng.normal(0, 0.2)))
             for _ in range(rng.integers(1, 15))] for _ in range(12)]
    jets[4] = []
    chunk = hand_chunk(jets, [0.0] * 12, [0.0] * 12)
    serial, _ = efps_of(chunk, dmax=3, n_jobs=1)
    pooled, _ = efps_of(chunk, dmax=3, n_jobs=2)
    np.testing.assert_allclose(pooled, serial, rtol=1e-12)


# ---------------------------------------------------------------- presets and settings

def test_presets_select_the_documented_numbers_of_efps():
    def count(preset):
        return efp_set(dmax=preset["dmax"], beta=preset["beta"], extra=preset["extra"]).count()

    assert count(EFP_PRESETS["qg"]) == 102
    assert count(EFP_PRESETS["top"]) == 995
    assert efp_set(dmax=7, extra="chi<=3").count() == 995
    assert efp_set(dmax=5, extra=["p==1", "c<=2"]).count() == efp_set(dmax=5, extra="p==1 ").count() - 16


def test_efp_settings_apply_overrides_and_reject_bad_ones():
    assert efp_settings("top") == dict(EFP_PRESETS["top"])
    assert efp_settings("qg", {"max_cells": 50})["max_cells"] == 50
    with pytest.raises(ValueError, match="did you mean 'max_cells'"):
        efp_settings("qg", {"max_cell": 50})
    with pytest.raises(ValueError, match="no EFP preset for task 'energy'"):
        efp_settings("energy")
    with pytest.raises(ValueError, match="'extra' selection 'chj<=3': unknown column 'chj'; did you mean 'chi'"):
        efp_settings("top", {"extra": "chj<=3"})
    with pytest.raises(ValueError, match="not of the form"):
        efp_settings("top", {"extra": "c<3.5"})
    with pytest.raises(ValueError, match="'dmax' must be an int in 1..10"):
        efp_settings("top", {"dmax": 11})
    with pytest.raises(ValueError, match="'beta' must be a positive number"):
        efp_settings("top", {"beta": 0})
    with pytest.raises(ValueError, match="'max_cells' must be a positive int or None"):
        efp_settings("top", {"max_cells": 0})
    with pytest.raises(ValueError, match="select no EFP"):
        efp_set(dmax=2, extra="n>9")


# ---------------------------------------------------------------- reading files

def test_efp_rows_follow_file_order_with_ids(sim_qg_file, tmp_path):
    other = write_synthetic_jets(tmp_path / "other.root", n_jets=3, n_replicas=2, cells_per_jet=(5, 30))
    values, ids = efp_features([sim_qg_file, other], dmax=3, max_cells=40, n_jobs=1, chunk_entries=7)
    records = [read_all(path, branches=["event_id", "jet_index", "replica"]) for path in (sim_qg_file, other)]
    replica0 = [r[r.replica == 0] for r in records]
    assert len(values) == len(ids["entry"]) == sum(len(r) for r in replica0)
    expected_file = np.concatenate([np.full(len(r), index) for index, r in enumerate(replica0)])
    np.testing.assert_array_equal(ids["file_index"], expected_file)
    for name in ("event_id", "jet_index", "replica"):
        np.testing.assert_array_equal(ids[name], np.concatenate([ak.to_numpy(r[name]) for r in replica0]))
    np.testing.assert_array_equal(ids["entry"], np.concatenate([np.flatnonzero(ak.to_numpy(r.replica) == 0)
                                                                for r in records]))
    assert set(ids) == {"file_index", "entry", "event_id", "jet_index", "replica", "label", "n_cells"}
    assert np.isfinite(values).all() and values.dtype == np.float64
    # reading in chunks changes nothing: the first file at once, through the building blocks
    chunk = read_all(sim_qg_file, branches=["cell_e", "cell_eta", "cell_phi", "jet_eta", "jet_phi", "replica"])
    chunk = chunk[chunk.replica == 0]
    direct, n_cells = efps_of(chunk, dmax=3, max_cells=40)
    first = ids["file_index"] == 0
    np.testing.assert_allclose(values[first], direct, rtol=1e-12)
    np.testing.assert_array_equal(ids["n_cells"][first], n_cells)
    assert (n_cells == 40).all()


def test_replica_selection(synthetic_jets_file):
    _, ids1 = efp_features(synthetic_jets_file, replica=1, dmax=2, max_cells=10, n_jobs=1)
    assert (ids1["replica"] == 1).all() and len(ids1["entry"]) == 8
    np.testing.assert_array_equal(ids1["entry"], np.arange(1, 16, 2))
    _, everything = efp_features(synthetic_jets_file, replica=None, dmax=2, max_cells=10, n_jobs=1)
    np.testing.assert_array_equal(everything["entry"], np.arange(16))
    with pytest.raises(EmptySelectionError, match="no entry with replica == 5 .* replicas there: 0, 1"):
        efp_features(synthetic_jets_file, replica=5, dmax=2, n_jobs=1)
    with pytest.raises(ValueError, match="'replica' must be a non-negative int or None"):
        layer_energies(synthetic_jets_file, replica=-1)


def test_empty_jets_in_a_file_are_kept_and_marked(tmp_path):
    path = write_synthetic_jets(tmp_path / "empty.root", n_jets=4, empty_jets=(2,))
    values, ids = efp_features(path, dmax=2, max_cells=10, n_jobs=1)
    assert ids["n_cells"].tolist() == [10, 10, 0, 10]
    assert values[2, 0] == 1.0 and (values[2, 1:] == 0).all()
    layers, _ = layer_energies(path)
    assert (layers[2] == 0).all()


# ---------------------------------------------------------------- energy baselines

def test_layer_energies_sum_to_the_cell_energy(sim_qg_file):
    layers, ids = layer_energies(sim_qg_file, replica=None)
    records = read_all(sim_qg_file, branches=["cell_e", "cell_layer", "jet_e", "truth_e"])
    assert layers.shape == (len(records), 6) and layers.dtype == np.float64
    total = ak.to_numpy(ak.sum(ak.values_astype(records.cell_e, np.float64), axis=1))
    np.testing.assert_allclose(layers.sum(axis=1), total, rtol=1e-12)
    np.testing.assert_allclose(layers.sum(axis=1), ak.to_numpy(records.jet_e), rtol=1e-5)
    hadronic = ak.sum(ak.values_astype(records.cell_e, np.float64) * (records.cell_layer >= 3), axis=1)
    np.testing.assert_allclose(layers[:, 3:].sum(axis=1), ak.to_numpy(hadronic), rtol=1e-12, atol=1e-9)
    assert (layers[:, 3:].sum(axis=1) > 0).any() and (layers[:, :3].sum(axis=1) > 0).all()
    np.testing.assert_array_equal(ids["truth_e"], ak.to_numpy(records.truth_e).astype(np.float64))
    em, em_ids = em_scale_energy(sim_qg_file, replica=None)
    np.testing.assert_array_equal(em, ids["jet_e"])
    np.testing.assert_array_equal(em_ids["entry"], ids["entry"])


def synthetic_layers(rng, n=200):
    return rng.exponential(1.0, (n, 6)) * np.array([20.0, 60.0, 10.0, 40.0, 15.0, 3.0])  # (n, 6) GeV


def test_calibration_recovers_known_weights_exactly():
    layers = synthetic_layers(np.random.default_rng(0))
    true_weights = np.array([1.2, 1.0, 1.1, 1.5, 1.4, 1.3])
    e_true = layers @ true_weights
    for non_negative in (True, False):
        calibration = LayerCalibration(non_negative=non_negative).fit(layers, e_true)
        np.testing.assert_allclose(calibration.weights, true_weights, rtol=1e-9)
        assert calibration.offset == 0.0
        np.testing.assert_allclose(calibration.predict(layers), e_true, rtol=1e-9)
    with_offset = LayerCalibration(fit_offset=True).fit(layers, e_true + 7.0)
    np.testing.assert_allclose(with_offset.weights, true_weights, rtol=1e-8)
    assert with_offset.offset == pytest.approx(7.0, rel=1e-7)


def test_calibration_minimises_relative_residuals():
    rng = np.random.default_rng(1)
    layers = synthetic_layers(rng)[:, :1]  # one layer: w = sum(r) / sum(r^2) with r = E / E_true
    e_true = layers[:, 0] * rng.uniform(0.8, 1.6, len(layers))
    ratio = layers[:, 0] / e_true
    calibration = LayerCalibration().fit(layers, e_true)
    assert calibration.weights[0] == pytest.approx(ratio.sum() / (ratio**2).sum(), rel=1e-10)
    weight = rng.uniform(0, 2, len(layers))
    weighted = LayerCalibration().fit(layers, e_true, sample_weight=weight)
    assert weighted.weights[0] == pytest.approx((weight * ratio).sum() / (weight * ratio**2).sum(), rel=1e-10)
    # weight 0 is the same as leaving the jet out
    weight = (np.arange(len(layers)) % 3 != 0).astype(float)
    np.testing.assert_allclose(LayerCalibration().fit(layers, e_true, sample_weight=weight).weights,
                               LayerCalibration().fit(layers[weight > 0], e_true[weight > 0]).weights, rtol=1e-12)


def test_calibration_is_scale_covariant():
    rng = np.random.default_rng(2)
    layers = synthetic_layers(rng)
    e_true = layers @ np.array([1.2, 1.0, 1.1, 1.5, 1.4, 1.3]) * rng.normal(1, 0.1, len(layers)) + 5.0
    base = LayerCalibration(fit_offset=True).fit(layers, e_true)
    scaled_target = LayerCalibration(fit_offset=True).fit(layers, 3.0 * e_true)
    np.testing.assert_allclose(scaled_target.weights, 3.0 * base.weights, rtol=1e-7)
    both = LayerCalibration(fit_offset=True).fit(2.0 * layers, 2.0 * e_true)
    np.testing.assert_allclose(both.weights, base.weights, rtol=1e-7)
    assert both.offset == pytest.approx(2.0 * base.offset, rel=1e-7)


def test_non_negative_weights():
    layers = synthetic_layers(np.random.default_rng(3))[:, :2]
    e_true = layers @ np.array([2.0, -0.1]) + 50.0  # + 50: keeps e_true > 0
    free = LayerCalibration(non_negative=False, fit_offset=True).fit(layers, e_true)
    np.testing.assert_allclose(free.weights, [2.0, -0.1], rtol=1e-8)
    bounded = LayerCalibration(fit_offset=True).fit(layers, e_true)
    assert (bounded.weights >= 0).all() and bounded.weights[1] == 0.0


def test_calibration_dict_round_trip():
    layers = synthetic_layers(np.random.default_rng(4))
    calibration = LayerCalibration(fit_offset=True).fit(layers, layers.sum(axis=1) * 1.3 + 2.0)
    data = json.loads(json.dumps(calibration.to_dict()))
    restored = LayerCalibration.from_dict(data)
    np.testing.assert_array_equal(restored.predict(layers), calibration.predict(layers))
    assert restored.to_dict() == calibration.to_dict()
    assert "weights=[" in repr(restored)
    unfitted = LayerCalibration.from_dict(LayerCalibration().to_dict())
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.predict(layers)
    with pytest.raises(ValueError, match="unknown LayerCalibration key 'weight'; did you mean 'weights'"):
        LayerCalibration.from_dict({"weight": [1.0]})


def test_calibration_input_errors_name_the_field():
    layers = synthetic_layers(np.random.default_rng(5), n=10)
    e_true = layers.sum(axis=1)
    with pytest.raises(ValueError, match="'e_true' has 9 values but 'layer_e' has 10 rows"):
        LayerCalibration().fit(layers, e_true[:9])
    with pytest.raises(ValueError, match="'sample_weight' has 3 values"):
        LayerCalibration().fit(layers, e_true, sample_weight=np.ones(3))
    bad = layers.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"'layer_e' holds nan at index \(4, 2\)"):
        LayerCalibration().fit(bad, e_true)
    with pytest.raises(ValueError, match=r"'e_true' holds inf at index \(3,\)"):
        LayerCalibration().fit(layers, np.where(np.arange(10) == 3, np.inf, e_true))
    with pytest.raises(ValueError, match="'layer_e' is empty"):
        LayerCalibration().fit(np.zeros((0, 6)), np.zeros(0))
    with pytest.raises(ValueError, match="'layer_e' must be 2-d"):
        LayerCalibration().fit(e_true, e_true)
    with pytest.raises(ValueError, match="'e_true' must be > 0"):
        LayerCalibration().fit(layers, -e_true)
    with pytest.raises(ValueError, match="need at least 7 jets"):
        LayerCalibration(fit_offset=True).fit(layers[:6], e_true[:6])
    with pytest.raises(ValueError, match="'sample_weight' must be >= 0"):
        LayerCalibration().fit(layers, e_true, sample_weight=-np.ones(10))
    fitted = LayerCalibration().fit(layers, e_true)
    with pytest.raises(ValueError, match="'layer_e' has 5 columns, the calibration 6 layers"):
        fitted.predict(layers[:, :5])
