"""The study runner end to end on the bundled samples (configs/study/quick.yaml, shortened)."""

from __future__ import annotations

import json

import pytest

from gnnjets.base.config import ConfigError
from gnnjets.cli import study as study_cli
from gnnjets.study.config import load_study_config
from gnnjets.study.runner import run_study
from gnnjets.train.errors import DownstreamError

SHORT = ["pretrain.optim.max_steps=6", "pretrain.train.checkpoint_every=6", "pretrain.train.log_every=3",
         "tasks.top.max_train=120", "supervised.min_steps=4", "supervised.max_steps=4"]


@pytest.mark.slow
def test_quick_study_runs_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["--config", "configs/study/quick.yaml", "--set", f"out_dir={out}", "-q"] + [
        arg for item in SHORT for arg in ("--set", item)]
    assert study_cli.main(argv) == 0
    summary = json.loads((out / "results.json").read_text())
    methods = summary["aggregate"]["qg"]
    for name in ("untrained", "replicas", "replicas+aug", "replicas+aug+scalars", "observables",
                 "efp+observables", "scratch", "finetuned"):
        assert name in methods, name
    assert summary["aggregate"]["energy"]["calibration"]["60"]["resolution"]["n"] == 2
    assert set(summary["aggregate"]) == {"qg", "top", "energy"}
    assert (out / "results.md").read_text().startswith("# Study `quick`")
    assert (out / "label_efficiency_qg.png").exists() and (out / "ablation_qg.pdf").exists()
    assert (out / "arms" / "replicas" / "last.pt").exists() and not (out / "arms" / "untrained").exists()
    fits = (out / "fits.jsonl").read_text().splitlines()
    # a second run without --resume refuses the folder; with --resume it redoes nothing
    assert study_cli.main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    config = load_study_config("configs/study/quick.yaml", [f"out_dir={out}"] + SHORT)
    again = run_study(config, resume=True)
    assert (out / "fits.jsonl").read_text().splitlines() == fits
    # the times add up over the runs: the resumed run pretrained nothing
    assert again["timings"]["pretrain replicas"] == summary["timings"]["pretrain replicas"] > 0
    assert again["timings"]["total"] > summary["timings"]["total"]
    # --report writes the report of the fits so far and runs nothing
    (out / "results.md").unlink()
    assert study_cli.main(["--config", "configs/study/quick.yaml", "--set", f"out_dir={out}", "--report", "-q"]) == 0
    assert (out / "results.md").exists() and (out / "fits.jsonl").read_text().splitlines() == fits
    assert study_cli.main(["--config", "configs/study/quick.yaml", "--set", f"out_dir={tmp_path / 'none'}",
                           "--report", "-q"]) == 2
    # another arm config under the same name is refused, not silently reused
    changed = load_study_config("configs/study/quick.yaml", [f"out_dir={out}"] + SHORT + ["pretrain.optim.lr=0.01"])
    with pytest.raises(DownstreamError, match="arm replicas: .* was pretrained with another config"):
        run_study(changed, resume=True)


def test_study_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'config.arms\\[0\\].overide'; did you mean 'overrides'"):
        load_study_config("configs/study/quick.yaml", ["arms=[{name: a, overide: []}]"])
    with pytest.raises(ConfigError, match="unknown task 'qgg'; did you mean 'qg'"):
        load_study_config("configs/study/quick.yaml", ["tasks={qgg: {train: [a], test: [b]}}"])
    with pytest.raises(ConfigError, match="ablation: both: 'nothing' must map a role"):
        load_study_config("configs/study/quick.yaml", ["ablation={both: nothing}"])
    assert study_cli.main(["--config", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("name", ["quick", "representation", "full", "top"])
def test_shipped_study_configs_load(name):
    config = load_study_config(f"configs/study/{name}.yaml")
    assert config.arms and config.tasks and config.name == name


@pytest.mark.slow
def test_overlapping_subsets_fit_once_where_the_pool_holds_no_disjoint_sets(tmp_path):
    config = load_study_config("configs/study/quick.yaml", [
        f"out_dir={tmp_path / 'study'}", "arms=[{name: untrained, pretrain: false}]", "baselines=[observables]",
        "tasks={qg: {train: [data/qg_small.root], test: [data/qg_test_small.root]}}", "labels=[20, 0]",
        "subsets=2", "overlapping_subsets=1", "ablation={}"])
    summary = run_study(config)
    per_count = {}
    for fit in summary["fits"]:
        per_count.setdefault((fit["method"], fit["labels"]), []).append(fit["subset"])
    pool = max(labels for _, labels in per_count)
    for method in ("untrained", "observables"):
        assert sorted(per_count[(method, 20)]) == [0, 1] and per_count[(method, pool)] == [0]
    with pytest.raises(ConfigError, match="overlapping_subsets must be a count"):
        load_study_config("configs/study/quick.yaml", ["overlapping_subsets=0"])
