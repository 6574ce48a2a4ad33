"""Downstream building blocks: metrics (against scikit-learn and closed forms), tasks, heads, jet sets."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from gnnjets.nn.heads import Head, HeadConfig
from gnnjets.data import JetSet, align_rows
from gnnjets.tasks.metrics import classification_metrics, rejection_at_efficiency, response_summary, response_table
from gnnjets.tasks.tasks import get_task


def test_auc_and_rejection_match_scikit_learn_and_the_threshold_definition():
    rng = np.random.default_rng(0)
    label = np.r_[np.ones(20000), np.zeros(20000)].astype(int)
    score = np.r_[rng.normal(1.0, 1.0, 20000), rng.normal(0.0, 1.0, 20000)]
    metrics = classification_metrics(label, score)
    assert metrics["auc"] == pytest.approx(roc_auc_score(label, score), abs=1e-12)
    # Gaussian closed form: AUC = Phi(1 / sqrt(2)); eps_b(eps_s=0.5) = P(N(0,1) > 1) = 0.1587
    assert metrics["auc"] == pytest.approx(0.7602, abs=0.005)
    assert 1 / metrics["rejection@0.5"] == pytest.approx(0.1587, abs=0.006)
    # eps_s = 0.3: threshold 1 + 0.5244, eps_b = P(N(0,1) > 1.5244) = 0.0637
    assert 1 / metrics["rejection@0.3"] == pytest.approx(0.0637, abs=0.004)
    # the same as counting background above the signal-efficiency threshold
    threshold = np.quantile(score[label == 1], 0.5)
    assert 1 / metrics["rejection@0.5"] == pytest.approx(np.mean(score[label == 0] > threshold), abs=2e-3)
    assert metrics["n_signal"] == metrics["n_background"] == 20000


def test_rejection_interpolates_the_roc_curve_exactly():
    label = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.4, 0.3, 0.7, 0.35, 0.2, 0.1])
    fpr, tpr, _ = roc_curve(label, score)
    assert rejection_at_efficiency(label, score, 0.5) == pytest.approx(1 / np.interp(0.5, tpr, fpr))
    assert rejection_at_efficiency(label, score, 0.25) == float("inf")  # no background above 0.8


def test_classification_metrics_refuse_bad_input():
    with pytest.raises(ValueError, match="labels 0 and 1"):
        classification_metrics(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="non-finite"):
        classification_metrics(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="one length"):
        classification_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2]))


def test_response_table_of_a_known_gaussian_response():
    rng = np.random.default_rng(1)
    e_true = rng.uniform(100, 1000, 200000)
    e_pred = e_true * rng.normal(0.9, 0.05, len(e_true))
    table = response_table(e_pred, e_true, [100, 400, 1000])
    for row in table["bins"] + [table["all"]]:
        assert row["median"] == pytest.approx(0.9, abs=0.002)
        assert row["iqr_sigma"] == pytest.approx(0.05, rel=0.02)
        assert row["width68"] == pytest.approx(0.05, rel=0.02)
        assert row["resolution_iqr"] == pytest.approx(0.05 / 0.9, rel=0.02)
    assert sum(row["n"] for row in table["bins"]) == table["all"]["n"]
    assert [row["lo"] for row in table["bins"]] == [100, 400]


def test_response_summary_matches_numpy_quantiles_and_small_bins_are_nan():
    response = np.random.default_rng(2).lognormal(0, 0.2, 500)
    q = np.quantile(response, [0.16, 0.25, 0.5, 0.75, 0.84])
    summary = response_summary(response)
    assert summary["median"] == pytest.approx(q[2])
    assert summary["iqr_sigma"] == pytest.approx((q[3] - q[1]) / 1.349)
    assert summary["width68"] == pytest.approx((q[4] - q[0]) / 2)
    assert np.isnan(response_summary(response[:5])["median"])
    with pytest.raises(ValueError, match="increasing"):
        response_table(response, response, [10, 5])


def test_energy_task_target_and_prediction_invert_each_other():
    attrs = {"label": np.zeros(3), "truth_e": np.array([100.0, 250.0, 900.0]), "jet_e": np.array([80.0, 200.0, 760.0])}
    for target in ("ratio", "absolute"):
        task = get_task("energy", energy_target=target)
        assert np.allclose(task.predict(task.target(attrs), attrs), attrs["truth_e"], rtol=1e-6)
    attrs["jet_e"][1] = 0.0
    assert get_task("energy").usable(attrs).tolist() == [True, False, True]
    assert get_task("energy", energy_target="absolute").usable(attrs).all()


def test_classification_tasks_check_labels():
    task = get_task("qg")
    assert task.signal == "quark" and task.classification
    assert task.predict(np.array([0.0]), {})[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        task.target({"label": np.array([0, 2])})
    with pytest.raises(ValueError, match="unknown task"):
        get_task("higgs")


def test_heads_standardise_inputs_and_rescale_outputs():
    x = torch.randn(64, 5) * 100 + 50
    for kind in ("linear", "mlp"):
        head = Head(5, HeadConfig(kind=kind, hidden=8, layers=2))
        head.set_input_scaling(x)
        head.set_output_scaling(torch.full((64,), 3.0) + torch.randn(64))
        assert torch.allclose(((x - head.in_mean) / head.in_scale).mean(0), torch.zeros(5), atol=1e-4)
        assert head(x).shape == (64,)
        state = head.state_dict()
        assert {"in_mean", "in_scale", "out_shift", "out_scale"} <= set(state)
    assert sum(p.numel() for p in Head(5, HeadConfig("linear")).parameters()) == 6
    with pytest.raises(ValueError, match="head.kind"):
        HeadConfig(kind="bdt")


def test_fit_head_learns_a_separable_and_a_linear_problem():
    from gnnjets.train.heads import fit_head, head_outputs
    from gnnjets.tasks.config import HeadOptim

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 4)).astype(np.float32)
    label = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    task = get_task("qg")
    head, info = fit_head(x[:1500], label[:1500], x[1500:], label[1500:], task=task, head_config=HeadConfig(),
                          optim=HeadOptim(max_epochs=100, min_steps=1000, patience=10), seed=0, device=torch.device("cpu"))
    assert roc_auc_score(label[1500:], head_outputs(head, x[1500:])) > 0.99
    assert info["best_epoch"] >= 1
    y = (2.0 * x[:, 2] - x[:, 3] + 5.0).astype(np.float32)
    energy = get_task("energy")
    head, _ = fit_head(x[:1500], y[:1500], x[1500:], y[1500:], task=energy, head_config=HeadConfig(),
                       optim=HeadOptim(max_epochs=100, min_steps=2000, patience=20), seed=0, device=torch.device("cpu"))
    assert np.abs(head_outputs(head, x[1500:]) - y[1500:]).max() < 0.05


def test_jet_set_rows_follow_the_file_and_batches_keep_track_of_order():
    jets = JetSet.load("data/qg_small.root", replica=0)
    assert len(jets) == 343 and jets.skipped == 0  # the jets of data/qg_small.root (data/README.md)
    assert (np.diff(jets.attrs["entry"]) > 0).all()  # file order
    import uproot

    with uproot.open("data/qg_small.root") as handle:
        truth = handle["jets"]["truth_e"].array(library="np")
    assert np.array_equal(jets.attrs["truth_e"], truth[jets.attrs["entry"]])
    order, batch = jets.batch([300, 2, 7])
    assert order.tolist() == [2, 7, 300]
    assert batch.entry.view(-1).tolist() == jets.attrs["entry"][order].tolist()
    sub = jets.subset(np.array([7, 2]))
    assert sub.attrs["entry"].tolist() == jets.attrs["entry"][[7, 2]].tolist()
    seen = np.concatenate([o for o, _ in jets.batches(100, shuffle=True, seed=4)])
    assert sorted(seen.tolist()) == list(range(len(jets)))
    n_entries = 2 * len(jets)  # two replicas per jet
    ids = {"file_index": np.zeros(n_entries, dtype=int), "entry": np.arange(n_entries)[::-1].copy()}
    rows = align_rows(jets, ids)
    assert np.array_equal(ids["entry"][rows], jets.attrs["entry"])
    with pytest.raises(ValueError, match="no row in the features"):
        align_rows(jets, {"file_index": np.zeros(3, dtype=int), "entry": np.arange(3)})


def test_atomic_output_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    from gnnjets.base.outputs import atomic_output

    target = tmp_path / "sub" / "results.json"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("whole")
    assert target.read_text() == "whole" and len(list(target.parent.iterdir())) == 1
    with atomic_output(tmp_path / "plot.png", keep_suffix=True) as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"png")
