"""Nothing lost, nothing silent: run folders, unreadable inputs and small test sets (issue cases 1, 2, 4, 8)."""

from __future__ import annotations

import json

import pytest

from conftest import write_synthetic_jets
from gnnjets.cli import downstream as downstream_cli
from gnnjets.cli import pretrain as pretrain_cli
from gnnjets.train.downstream import DownstreamError, run_downstream
from gnnjets.train.pretrain import TrainingError, pretrain
from test_downstream import make_config, tiny_checkpoint  # noqa: F401 - the fixture
from test_pretrain import small_config


def truncated_copy(source, path, fraction=0.5):
    data = source.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


# ---------------------------------------------------------------------------------- case 4
@pytest.mark.slow
def test_pretraining_never_replaces_an_earlier_run_unasked(sim_qg_file, tmp_path, capsys):
    run = tmp_path / "run"
    pretrain(small_config(sim_qg_file, run, optim={"max_steps": 2}))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(TrainingError, match=r"train.out_dir .*run already holds an earlier run \(config.yaml, last.pt, "
                                            r"metrics.csv.*\); pass --resume to continue it or --overwrite"):
        pretrain(small_config(sim_qg_file, run, optim={"max_steps": 1}))
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    code = pretrain_cli.main(["--config", "default", "--set", f"data.train=[{sim_qg_file}]",
                              "--set", f"train.out_dir={run}", "--set", "data.val=null"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--overwrite" in err
    result = pretrain(small_config(sim_qg_file, run, optim={"max_steps": 1}), overwrite=True)
    assert result.step == 1
    # the checkpoint explains itself: versions, code, training files with their signatures, config
    from gnnjets.checkpoint import load_checkpoint
    from gnnjets.modelcard import content_signature

    card = load_checkpoint(result.checkpoint)["model_card"]
    assert card["kind"] == "pretraining" and card["versions"]["torch"].startswith("2.13")
    assert card["training_files"] == [{"path": str(sim_qg_file), "signature": content_signature(sim_qg_file)}]
    assert card["config"]["optim"]["max_steps"] == 1 and "git_commit" in card


def test_downstream_never_replaces_an_earlier_run_and_says_when_nothing_resumes(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text("{}")
    with pytest.raises(DownstreamError, match=r"run.out_dir .* already holds an earlier run \(results.json\); pass "
                                              r"--resume to continue it or --overwrite"):
        run_downstream(make_config(tmp_path, tiny_checkpoint))
    assert (out / "results.json").read_text() == "{}"
    # case 8: --resume with nothing to resume
    empty = tmp_path / "empty"
    code = downstream_cli.main(["--task", "qg", "--backbone", str(tiny_checkpoint), "--train", "data/qg_small.root",
                                "--out", str(empty), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and "--resume: nothing to resume in run.out_dir" in err and err.count("\n") == 1
    assert not empty.exists()


# ---------------------------------------------------------------------------------- case 2
def test_truncated_training_file_writes_nothing_and_is_one_line(sim_qg_file, tmp_path, capsys):
    broken = truncated_copy(sim_qg_file, tmp_path / "broken.root", 0.6)
    run = tmp_path / "run"
    code = pretrain_cli.main(["--config", "default", "--set", f"data.train=[{broken}]", "--set", f"train.out_dir={run}",
                              "--set", "data.val=null", "--set", "data.num_workers=0", "--set", "optim.batch_size=4",
                              "--set", "train.progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "broken.root" in err
    assert "Traceback" not in err and not run.exists()  # no config.yaml, no empty metrics.csv


def test_truncated_downstream_file_is_one_line(sim_qg_file, tmp_path, tiny_checkpoint, capsys):
    broken = truncated_copy(sim_qg_file, tmp_path / "broken.root", 0.6)
    code = downstream_cli.main(["--task", "qg", "--backbone", str(tiny_checkpoint), "--train", str(broken),
                                "--out", str(tmp_path / "run"), "--set", f"run.cache_dir={tmp_path / 'cache'}",
                                "--set", "run.progress=false"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "broken.root" in err and "regenerate" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------- case 1
@pytest.mark.slow
def test_energy_task_with_every_bin_under_the_minimum_keeps_its_results(tmp_path, tiny_checkpoint):
    small = write_synthetic_jets(tmp_path / "small.root", n_jets=40, n_replicas=1)
    config = make_config(tmp_path, tiny_checkpoint, task="energy", baselines=["em", "calib"],
                         data={"train": [str(small)], "test_fraction": 0.3})
    summary = run_downstream(config)
    out = tmp_path / "run"
    saved = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in saved["results"]} == {"pretrained", "em", "calib"}
    assert all(r["n"] < 20 for r in saved["results"][0]["metrics"]["bins"])  # every bin under the minimum
    assert (out / "predictions.npz").exists() and (out / "response.png").exists() and (out / "response.pdf").exists()
    assert summary["files"]["response"].endswith("response.png")
