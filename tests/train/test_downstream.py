"""gnnjets-downstream end to end on the bundled samples: frozen heads, scratch, baselines, resume, errors."""

import copy
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from gnnjets.checkpoint import load_checkpoint, save_checkpoint
from gnnjets.config import config_from_dict as pretrain_config
from gnnjets.nn.model import build_model
from gnnjets.tasks.config import config_from_dict
from gnnjets.data import JetSet
from gnnjets.tasks.metrics import classification_metrics, response_table
from gnnjets.tasks.tasks import get_task
from gnnjets.train import downstream
from gnnjets.train.downstream import DownstreamError, run_downstream

SMALL_MODEL = {"backbone": {"hidden": 16, "layers": 2, "embedding_dim": 16}, "projection_dim": 16,
               "projection_hidden": 16}
FAST = {"head_optim": {"max_epochs": 30, "min_steps": 60, "patience": 5},
        "supervised": {"batch_size": 32, "epochs": 1, "min_steps": 4, "warmup_steps": 1}}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A pretraining checkpoint with random weights of a small backbone."""
    config = pretrain_config({"data": {"train": ["data/qg_small.root"]}, "model": SMALL_MODEL})
    model = build_model(config.model, seed=0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt",
                           {"config": config.to_dict(), "model": model.state_dict(), "step": 0})


def make_config(tmp_path, checkpoint=None, **sections):
    config = {"task": "qg", "data": {"train": ["data/qg_small.root"], "test_fraction": 0.3},
              "backbone": {"checkpoint": str(checkpoint) if checkpoint else None},
              "run": {"out_dir": str(tmp_path / "run"), "cache_dir": str(tmp_path / "cache"), "progress": False,
                      "threads": 1, "device": "cpu"}, **copy.deepcopy(FAST)}
    if checkpoint is None:
        config["model"] = SMALL_MODEL
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config_from_dict(config)


@pytest.mark.slow
def test_qg_frozen_head_and_scratch_over_two_label_counts(tmp_path, tiny_checkpoint):
    config = make_config(tmp_path, tiny_checkpoint, baselines=["scratch"], data={"labels": [60, 120]})
    summary = run_downstream(config)
    rows = {(r["method"], r["labels"]) for r in summary["results"]}
    assert rows == {("pretrained", 60), ("pretrained", 120), ("scratch", 60), ("scratch", 120)}
    out = tmp_path / "run"
    assert json.loads((out / "results.json").read_text())["task"] == "qg"
    for name in ("roc.png", "label_efficiency.png", "predictions.npz"):
        assert (out / name).stat().st_size > 0
    # the reported metrics are those of the saved predictions on the saved test jets
    with np.load(out / "predictions.npz") as npz:
        saved = dict(npz)
    for method in ("pretrained", "scratch"):
        reported = next(r for r in summary["results"] if r["method"] == method and r["labels"] == 120)
        expected = classification_metrics(saved["test_label"], saved[f"pred_{method}"])
        assert reported["metrics"]["auc"] == pytest.approx(roc_auc_score(saved["test_label"], saved[f"pred_{method}"]))
        assert reported["metrics"] == pytest.approx(expected)
    # 343 jets in data/qg_small.root: 30% test, 20% validation (fractions of all of data.train), the rest training
    assert summary["data"]["test"] == 103 and summary["data"]["val"] == 69 and summary["data"]["train"] == 171
    # the frozen head's checkpoint holds the pretrained backbone unchanged
    model = load_checkpoint(out / "models" / "pretrained-linear-N120.pt")["model"]
    pretrained = load_checkpoint(tiny_checkpoint)["model"]
    for key, value in pretrained.items():
        if key.startswith("backbone."):
            assert torch.equal(model[key], value)
    # the Embedder reads a downstream checkpoint as well: same backbone, same rows
    from gnnjets import Embedder

    jets = JetSet.load("data/qg_small.root").subset(np.arange(5))
    _, batch = jets.batch(np.arange(5))
    from_head = Embedder.from_checkpoint(out / "models" / "pretrained-linear-N120.pt", device="cpu")
    from_pretraining = Embedder.from_checkpoint(tiny_checkpoint, device="cpu")
    assert torch.equal(from_head.embed_graphs(batch), from_pretraining.embed_graphs(batch))
    # the second run reads the cached embeddings
    cached = sorted((tmp_path / "cache").glob("embed-*.npy"))
    assert len(cached) == 3
    again = run_downstream(make_config(tmp_path, tiny_checkpoint, data={"labels": [120]}), overwrite=True)
    assert again["results"][0]["metrics"] == pytest.approx(summary["results"][1]["metrics"])


@pytest.mark.slow
def test_energy_baselines_score_the_same_test_jets(tmp_path, tiny_checkpoint):
    config = make_config(tmp_path, tiny_checkpoint, task="energy", baselines=["em"],
                         energy={"bins": [100, 300, 2500]})
    summary = run_downstream(config)
    with np.load(tmp_path / "run" / "predictions.npz") as npz:
        saved = dict(npz)
    em = next(r for r in summary["results"] if r["method"] == "em")
    assert np.array_equal(saved["pred_em"], saved["test_jet_e"].astype(np.float64))
    expected = response_table(saved["test_jet_e"], saved["test_truth_e"], [100, 300, 2500])
    for got, want in zip(em["metrics"]["bins"] + [em["metrics"]["all"]], expected["bins"] + [expected["all"]]):
        assert got == pytest.approx(want, nan_ok=True)
    head = next(r for r in summary["results"] if r["method"] == "pretrained")
    assert 0.5 < head["metrics"]["all"]["median"] < 1.5  # the head learnt the overall scale
    assert (tmp_path / "run" / "response.png").exists()


def test_supervised_training_resumes_exactly(tmp_path):
    task = get_task("qg")
    jets = JetSet.load("data/qg_small.root")
    train, val = jets.subset(np.arange(64)), jets.subset(np.arange(64, 96))
    y_train, y_val = task.target(train.attrs), task.target(val.attrs)
    source = downstream.BackboneSource({}, config_from_dict({"data": {"train": ["x"]}, "task": "qg",
                                                             "model": SMALL_MODEL, "baselines": ["scratch"]}).model)
    from gnnjets.train.supervised import train_supervised
    optim = config_from_dict({"data": {"train": ["x"], "test_fraction": 0.2}, "baselines": ["scratch"],
                              "supervised": {"batch_size": 16, "epochs": 3, "min_steps": 0, "warmup_steps": 1}}).supervised

    def model():
        from gnnjets.nn.heads import BackboneWithHead, Head, HeadConfig

        backbone = source.make(pretrained=False, seed=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return BackboneWithHead(backbone, Head(backbone.config.output_dim, HeadConfig()))

    def train_run(path, **kwargs):
        return train_supervised(model(), train, y_train, val, y_val, task=task, optim=optim,
                                           backbone_lr_factor=1.0, device=torch.device("cpu"), seed=0,
                                           checkpoint=path, run_key={"method": "scratch"}, **kwargs)

    straight, info = train_run(tmp_path / "straight.pt")
    train_run(tmp_path / "killed.pt", stop_after=1)
    assert load_checkpoint(tmp_path / "killed.pt")["epoch"] == 1
    resumed, resumed_info = train_run(tmp_path / "killed.pt", resume=True)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert resumed_info["val_loss"] == info["val_loss"] and len(resumed_info["history"]) == 3
    with pytest.raises(DownstreamError, match="belongs to another run"):
        train_supervised(model(), train, y_train, val, y_val, task=task, optim=optim, backbone_lr_factor=1.0,
                                    device=torch.device("cpu"), seed=0, checkpoint=tmp_path / "killed.pt",
                                    run_key={"method": "finetuned"}, resume=True)


def test_config_errors_name_the_field_and_the_fix(tmp_path, tiny_checkpoint):
    from gnnjets.base.config import ConfigError

    with pytest.raises(ConfigError, match="baseline 'em' does not apply to task qg"):
        make_config(tmp_path, tiny_checkpoint, baselines=["em"])
    with pytest.raises(ConfigError, match="nothing to run"):
        config_from_dict({"data": {"train": ["a.root"], "test_fraction": 0.2}})
    with pytest.raises(ConfigError, match="does not exist; pretrain one"):
        make_config(tmp_path, tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="supervised.epoch'; did you mean 'epochs'"):
        make_config(tmp_path, tiny_checkpoint, supervised={"epoch": 3})
    with pytest.raises(ConfigError, match="head: head.kind must be one of linear, mlp"):
        make_config(tmp_path, tiny_checkpoint, head={"kind": "bdt"})
    with pytest.raises(ConfigError, match="data.test is empty"):
        make_config(tmp_path, tiny_checkpoint, data={"test_fraction": 0.0})
    with pytest.raises(DownstreamError, match=r"data.labels \[5000\] exceed the 171 training jets"):
        run_downstream(make_config(tmp_path, tiny_checkpoint, data={"labels": [5000]}))


def test_top_needs_both_classes_and_missing_files_are_named(tmp_path, tiny_checkpoint):
    config = make_config(tmp_path, tiny_checkpoint, task="top", data={"train": ["data/top_small.root"]})
    with pytest.raises(DownstreamError, match="give the top and the QCD files together"):
        run_downstream(config)
    from gnnjets.io.errors import JetFileNotFoundError

    config = make_config(tmp_path, tiny_checkpoint, data={"train": [str(tmp_path / "nope.root")]})
    with pytest.raises((FileNotFoundError, JetFileNotFoundError), match="nope.root"):
        run_downstream(config)


def test_cli_prints_a_table_and_returns_2_on_bad_input(tmp_path, tiny_checkpoint, capsys):
    from gnnjets.cli.downstream import main

    code = main(["--task", "qg", "--backbone", str(tiny_checkpoint), "--labels", "80", "--out", str(tmp_path / "cli"),
                 "--set", "baselines=[]", "--set", f"run.cache_dir={tmp_path / 'cache'}", "--set", "run.progress=false",
                 "--set", "head_optim.max_epochs=20", "--set", "head_optim.min_steps=40"])
    out = capsys.readouterr().out
    assert code == 0 and "pretrained (linear)" in out and "AUC" in out
    assert (tmp_path / "cli" / "results.json").exists()
    code = main(["--task", "energy", "--baseline", "efp", "--out", str(tmp_path / "x")])
    assert code == 2 and "baseline 'efp' does not apply to task energy" in capsys.readouterr().err


@pytest.mark.slow
def test_finetuning_moves_the_backbone_and_label_count_0_means_all(tmp_path, tiny_checkpoint):
    config = make_config(tmp_path, tiny_checkpoint, backbone={"finetune": True, "finetune_lr_factor": 0.5},
                         data={"labels": [0, 40]})
    summary = run_downstream(config)
    assert [(r["method"], r["labels"]) for r in summary["results"]] == [("finetuned", 40), ("finetuned", 171)]
    tuned = load_checkpoint(tmp_path / "run" / "models" / "finetuned-linear-N171.pt")["model"]
    pretrained = load_checkpoint(tiny_checkpoint)["model"]
    moved = [key for key, value in pretrained.items() if key.startswith("backbone.") and not torch.equal(tuned[key], value)]
    assert moved  # the backbone was trained, not only the head
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").glob("embed-*"))  # nothing frozen cached


def test_files_of_another_schema_version_are_refused(tmp_path, tiny_checkpoint, monkeypatch):
    import gnnjets.io.provenance

    monkeypatch.setattr(gnnjets.io.provenance, "file_schema_version", lambda path: 99)
    with pytest.raises(DownstreamError, match="written with ROOT schema version 99, but backbone checkpoint"):
        run_downstream(make_config(tmp_path, tiny_checkpoint))


@pytest.mark.slow
def test_top_with_the_efp_baseline_on_top_and_qcd_files(tmp_path, tiny_checkpoint):
    config = make_config(tmp_path, tiny_checkpoint, task="top", baselines=["efp"],
                         data={"train": ["data/top_small.root", "data/qcd_small.root"]},
                         efp={"dmax": 3, "max_cells": 20, "n_jobs": 1})
    summary = run_downstream(config)
    assert {r["method"] for r in summary["results"]} == {"pretrained", "efp"}
    efp = next(r for r in summary["results"] if r["method"] == "efp")
    assert efp["train"]["n_efps"] > 3
    with np.load(tmp_path / "run" / "predictions.npz") as npz:
        saved = dict(npz)
    assert set(np.unique(saved["test_label"])) == {0, 1}
    assert efp["metrics"] == pytest.approx(classification_metrics(saved["test_label"], saved["pred_efp"]))
    # top and QCD jets differ strongly in mass and prongs: even 20-cell EFPs of degree <= 3 separate them
    assert efp["metrics"]["auc"] > 0.8
    assert (tmp_path / "run" / "roc.png").exists()
    cached = list((tmp_path / "cache").glob("efp-*.npy"))
    assert len(cached) == 1  # train, val and test are carved from one file set: computed once


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, tiny_checkpoint):
    with pytest.raises(DownstreamError, match="run.device: .*no GPU is usable here"):
        run_downstream(make_config(tmp_path, tiny_checkpoint, run={"device": "cuda"}))
