"""Pretraining: config, schedule, checkpoints, exact resume, bad input, DDP on CPU."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from detector_sim.config import ConfigError
from gnnjets.checkpoint import load_checkpoint
from gnnjets.cli import pretrain as pretrain_cli
from gnnjets.config import config_from_dict, load_config
from gnnjets.data import ReplicaGroupError
from gnnjets.train.pretrain import TrainingError, lr_factor, pretrain

from conftest import simulate_file


def small_config(train_file, out_dir, **sections) -> dict:
    config = {
        "data": {"train": [str(train_file)], "num_workers": 0, "shuffle_buffer": 64, "chunk_jets": 16},
        "model": {"backbone": {"hidden": 16, "layers": 2, "embedding_dim": 16}, "projection_dim": 16,
                  "projection_hidden": 16},
        "optim": {"batch_size": 8, "max_steps": 6, "warmup_steps": 2, "lr": 3e-3},
        "train": {"out_dir": str(out_dir), "log_every": 1, "checkpoint_every": 2, "probe_every": 0, "progress": False,
                  "threads": 1},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def test_shipped_default_config_loads():
    config = load_config("configs/pretrain/default.yaml")
    assert config.loss.kind == "ntxent" and config.loss.temperature == 0.1
    backbone = config.model["backbone"]
    assert backbone["kind"] == "sage" and backbone["embedding_dim"] == 64 and backbone["append_jet_features"]
    assert config.graph["remainder_nodes"] and config.graph["scaling"]["energy_reference"] == "jet"
    assert [step["name"] for step in config.augment] == ["RotateJet", "ScaleJetEnergy"]
    old = load_config("configs/pretrain/v0.1.yaml")  # the version-0.1 default, kept selectable
    assert old.model["backbone"]["kind"] == "edgeconv" and old.model["backbone"]["embedding_dim"] == 128
    assert not old.graph["remainder_nodes"] and old.graph["scaling"]["energy_reference"] == "absolute"


@pytest.mark.parametrize("data, message", [
    ({"optim": {"batch_sise": 4}}, "did you mean 'batch_size'"),
    ({"loss": {"kind": "triplet"}}, "loss.kind must be one of ntxent, vicreg"),
    ({"data": {"replicas": 1}}, "data.replicas must be at least 2"),
    ({"model": {"backbone": {"kind": "transformer"}}}, "model:"),
    ({"augment": [{"name": "RotateJett"}]}, "did you mean 'RotateJet'"),
    ({"train": {"probe_every": 15, "log_every": 10}}, "multiple of train.log_every"),
])
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_learning_rate_warms_up_then_decays_with_a_cosine():
    factors = [lr_factor(step, 10, 110, 0.1) for step in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[60] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)


@pytest.mark.slow
def test_pretrain_writes_metrics_config_and_a_self_describing_checkpoint(sim_qg_file, tmp_path):
    result = pretrain(small_config(sim_qg_file, tmp_path / "run"))
    assert result.step == 6 and result.checkpoint.exists()
    payload = load_checkpoint(result.checkpoint)
    assert payload["step"] == 6
    assert payload["config"]["model"]["backbone"]["hidden"] == 16
    assert "scaling" in payload["config"]["graph"]  # feature scaling travels with the weights
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(float(r["loss"]) > 0 for r in rows)
    assert 0 < float(rows[-1]["effective_rank_h"]) <= 16
    assert (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.slow
def test_killed_and_resumed_run_ends_at_the_same_weights(sim_qg_file, tmp_path):
    straight = pretrain(small_config(sim_qg_file, tmp_path / "straight"))
    # a "kill" after step 5: the last checkpoint is step 4; resuming repeats step 5 and goes on
    pretrain(small_config(sim_qg_file, tmp_path / "killed"), stop_after=5)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["step"] == 4
    resumed = pretrain(small_config(sim_qg_file, tmp_path / "killed"), resume=True)
    assert resumed.step == 6
    a = load_checkpoint(straight.checkpoint)["model"]
    b = load_checkpoint(resumed.checkpoint)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    with (tmp_path / "killed" / "metrics.csv").open() as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_resume_refuses_an_incompatible_config(sim_qg_file, tmp_path):
    pretrain(small_config(sim_qg_file, tmp_path / "run"), stop_after=2)
    changed = small_config(sim_qg_file, tmp_path / "run", loss={"temperature": 0.5})
    with pytest.raises(TrainingError, match=r"incompatible config \(loss.temperature: checkpoint 0.1, now 0.5"):
        pretrain(changed, resume=True)


def test_resume_without_a_checkpoint_says_so(sim_qg_file, tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint"):
        pretrain(small_config(sim_qg_file, tmp_path / "empty"), resume=True)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(sim_qg_file, tmp_path, monkeypatch):
    from gnnjets.train import pretrain as module

    real = module.make_loss

    def poisoned(config):
        loss = real(config)
        calls = {"n": 0}

        def forward(z):
            calls["n"] += 1
            value = loss(z)
            return value * float("nan") if calls["n"] == 3 else value
        return forward

    monkeypatch.setattr(module, "make_loss", poisoned)
    with pytest.raises(TrainingError, match="non-finite loss .* at step 3"):
        pretrain(small_config(sim_qg_file, tmp_path / "run"))
    payload = load_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["step"] == 2
    assert all(torch.isfinite(t).all() for t in payload["model"].values())


def test_batch_larger_than_the_data_is_refused(sim_qg_file, tmp_path):
    with pytest.raises(TrainingError, match="optim.batch_size=100000 is larger than the"):
        pretrain(small_config(sim_qg_file, tmp_path / "run", optim={"batch_size": 100000}))


def test_missing_data_file_is_a_clear_cli_error(tmp_path, capsys):
    code = pretrain_cli.main(["--config", "configs/pretrain/default.yaml", "--set", f"train.out_dir={tmp_path}",
                              "--set", "data.train=[data/nope.root]"])
    assert code == 2
    err = capsys.readouterr().err
    assert "data/nope.root" in err and err.count("\n") == 1


def test_file_with_one_replica_per_jet_is_refused(tmp_path):
    single = simulate_file(tmp_path / "single.root", "configs/sim/qg.yaml", 10, replicas=1,
                           overrides=["generator.pthat_slices=[[200,400]]", "jets.pt_min_gev=150",
                                      "sharding.events_per_shard=10"])
    with pytest.raises(ReplicaGroupError, match="1 replica"):
        pretrain(small_config(single, tmp_path / "run"))


@pytest.mark.slow
def test_torchrun_ddp_on_two_cpu_processes(sim_qg_file, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "gnnjets.cli.pretrain", "--config", "configs/pretrain/default.yaml",
               "--set", f"data.train=[{sim_qg_file}]", "--set", "data.val=null", "--set", "data.num_workers=0",
               "--set", "data.chunk_jets=4", "--set", "optim.batch_size=4", "--set", "optim.max_steps=3",
               "--set", "train.log_every=1", "--set", "train.probe_every=0", "--set", "train.progress=false",
               "--set", "train.threads=1", "--set", f"train.out_dir={out}",
               "--set", "model.backbone.hidden=16", "--set", "model.backbone.layers=1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(out / "last.pt")["data_position"]["world_size"] == 2


def test_scalars_go_to_tensorboard_when_it_is_installed(sim_qg_file, tmp_path, monkeypatch):
    from gnnjets.train import pretrain as module

    class Recorder:
        def __init__(self):
            self.scalars, self.closed = [], False

        def add_scalar(self, key, value, step):
            self.scalars.append((key, step))

        def close(self):
            self.closed = True

    recorder = Recorder()
    monkeypatch.setattr(module, "_tensorboard", lambda out_dir: recorder)
    pretrain(small_config(sim_qg_file, tmp_path / "run", optim={"max_steps": 2}))
    assert ("loss", 1) in recorder.scalars and ("pos_cosine", 2) in recorder.scalars
    assert recorder.closed
