"""The fair evaluation protocol: balanced disjoint label subsets, cross-validated linear heads,
the nine observables, and the study's aggregation and target checks."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from gnnjets.study.report import aggregate
from gnnjets.study.targets import check_targets
from gnnjets.study.config import config_from_dict
from gnnjets.tasks.baselines.observables import OBSERVABLE_NAMES, observables_of_chunk
from gnnjets.tasks.tasks import get_task
from gnnjets.train.errors import DownstreamError
from gnnjets.train.linear import fit_linear, logistic_newton
from gnnjets.train.splits import balance_classes, disjoint_label_subsets


def test_balanced_disjoint_subsets():
    labels = np.array([0] * 300 + [1] * 100)
    subsets = disjoint_label_subsets(len(labels), 40, 5, seed=0, labels=labels)
    assert subsets.disjoint and len(subsets.subsets) == 5
    for rows in subsets.subsets:
        assert len(rows) == 40 and (labels[rows] == 1).sum() == 20
    assert len(np.unique(np.concatenate(subsets.subsets))) == 200  # no row twice
    overlapping = disjoint_label_subsets(len(labels), 60, 5, seed=0, labels=labels)  # 5 x 30 quarks > 100
    assert not overlapping.disjoint and all((labels[r] == 1).sum() == 30 for r in overlapping.subsets)
    everything = disjoint_label_subsets(len(labels), 0, 3, seed=0, labels=labels)
    assert everything.count == 400 and all(len(r) == 400 for r in everything.subsets)
    with pytest.raises(DownstreamError, match="cannot be split evenly"):
        disjoint_label_subsets(len(labels), 41, 2, seed=0, labels=labels)
    again = disjoint_label_subsets(len(labels), 40, 5, seed=0, labels=labels)
    assert all(np.array_equal(a, b) for a, b in zip(again.subsets, subsets.subsets))  # seeded


def test_balance_classes():
    labels = np.array([1] * 86 + [0] * 14)
    rows = balance_classes(labels, seed=3)
    assert len(rows) == 28 and labels[rows].sum() == 14 and np.all(np.diff(rows) > 0)


def test_newton_logistic_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(size=200) > 0).astype(float)
    for c in (1e-3, 0.1, 10.0):
        theta = logistic_newton(x, y, c)
        reference = LogisticRegression(C=c, tol=1e-12, max_iter=100_000).fit(x, y)
        np.testing.assert_allclose(theta[:-1], reference.coef_[0], atol=1e-6)
        np.testing.assert_allclose(theta[-1], reference.intercept_[0], atol=1e-6)


def test_cross_validated_penalty_grows_with_noise():
    """Pure-noise features get a strong penalty (no overfit); a clean signal gets a weak one."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 60))
    noise_head, noise = fit_linear(x, (rng.random(120) > 0.5).astype(float), task=get_task("qg"), seed=0)
    signal_head, signal = fit_linear(x, (x[:, 0] > 0).astype(float), task=get_task("qg"), seed=0)
    assert noise["penalty"] < signal["penalty"]
    assert np.abs(noise_head.coef).max() < np.abs(signal_head.coef).max()
    ridge, info = fit_linear(x, 3 * x[:, 1] + 0.1 * rng.normal(size=120), task=get_task("energy"))
    assert np.argmax(np.abs(ridge.coef)) == 1 and info["cv_folds"] == "leave-one-out"
    with pytest.raises(DownstreamError, match="only class"):
        fit_linear(x, np.ones(120), task=get_task("qg"))


def test_observables_of_a_hand_made_jet():
    chunk = ak.Array([dict(jet_pt=100.0, jet_eta=0.0, jet_phi=0.0, cell_e=[10.0, 5.0, -0.1],
                           cell_eta=[0.1, -0.1, 0.0], cell_phi=[0.0, 0.0, 0.3], cell_layer=[0, 4, 1],
                           cell_topo_idx=[3, 3, 7], track_pt=[6.0, 2.0], track_eta=[0.0, 0.2], track_phi=[0.1, 0.0])])
    values = dict(zip(OBSERVABLE_NAMES, observables_of_chunk(chunk)[0]))
    assert (values["n_tracks"], values["n_cells"], values["n_topoclusters"]) == (2, 3, 2)
    assert values["log_pt"] == pytest.approx(np.log(100.0))
    assert values["track_girth"] == pytest.approx((6 * 0.1 + 2 * 0.2) / 8)
    assert values["track_ptd"] == pytest.approx(np.sqrt(36 + 4) / 8)
    pt = np.array([10.0, 5.0]) / np.cosh([0.1, -0.1])
    assert values["cell_girth"] == pytest.approx(0.1)  # both positive cells at Delta R = 0.1
    assert values["ecal_fraction"] == pytest.approx(10.0 / 15.0)  # the negative cell does not count
    px, pz = pt.sum(), (pt * np.sinh([0.1, -0.1])).sum()
    assert values["cell_mass"] == pytest.approx(np.sqrt(15.0**2 - px**2 - pz**2), rel=1e-6)


def fit(task, method, labels, subset, auc=None, rejection=None, resolution=None):
    metrics = ({"all": {"resolution_iqr": resolution, "median": 1.0, "n": 100}} if task == "energy" else
               {"auc": auc, "rejection@0.5": rejection, "n_signal": 50, "n_background": 50})
    return {"task": task, "method": method, "labels": labels, "subset": subset, "disjoint": True, "metrics": metrics}


def test_aggregate_and_targets():
    fits = []
    for k, (a, b) in enumerate([(0.80, 0.76), (0.82, 0.78)]):
        fits += [fit("qg", "arm+scalars", 100, k, a, 10), fit("qg", "scratch", 100, k, b, 8),
                 fit("qg", "efp+observables", 100, k, 0.79, 9)]
    aggregated = aggregate(fits)
    entry = aggregated["qg"]["arm+scalars"][100]["auc"]
    assert entry["mean"] == pytest.approx(0.81) and entry["std"] == pytest.approx(np.std([0.8, 0.82], ddof=1))
    config = config_from_dict({"arms": [{"name": "arm"}], "tasks": {"qg": {"train": ["a"], "test": ["b"]}}})
    targets = {t["target"]: t for t in check_targets(config, aggregated)}
    first = next(t for name, t in targets.items() if "scratch + 0.02" in name)
    assert first["status"] == "met" and "0.810 vs 0.770" in first["detail"]
    efp = next(t for name, t in targets.items() if "EFP" in name)
    assert efp["status"] == "met"


def test_both_solvers_choose_the_same_penalty_and_head(monkeypatch):
    import gnnjets.train.linear as linear

    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 12))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.logistic(size=600) > 0).astype(float)
    newton, newton_info = fit_linear(x, y, task=get_task("qg"), seed=0)
    monkeypatch.setattr(linear, "NEWTON_MAX_WORK", 0)  # every fit to scikit-learn's L-BFGS
    lbfgs, lbfgs_info = fit_linear(x, y, task=get_task("qg"), seed=0)
    assert (newton_info["solver"], lbfgs_info["solver"]) == ("newton", "lbfgs")
    assert newton.penalty == lbfgs.penalty
    np.testing.assert_allclose(newton.output(x), lbfgs.output(x), atol=1e-2)  # L-BFGS stops at its tolerance
