"""``detector-sim generate`` end to end: determinism, replicas, workers, atomic output, bad input."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import gnnjets
from detector_sim import cli
from detector_sim.writer import read_provenance
from gnnjets.io import schema

SMALL = ["--set", "generator.pthat_slices=[[200,400]]", "--set", "jets.pt_min_gev=150",
         "--set", "jets.pt_max_gev=500", "--set", "sharding.events_per_shard=15"]


def generate(out, *extra, events=30, replicas=2, seed=5, config="configs/sim/qg.yaml"):
    argv = ["generate", "--config", str(config), "--events", str(events), "--replicas", str(replicas),
            "--seed", str(seed), "--out", str(out), "--quiet", *SMALL, *extra]
    return cli.main(argv)


def read(path):
    return uproot.open(path)["jets"].arrays()


@pytest.fixture(scope="module")
def qg_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "qg.root"
    assert generate(out) == 0
    return out


def test_file_has_every_schema_branch_and_complete_replica_groups(qg_file):
    jets = read(qg_file)
    assert set(schema.BRANCH_NAMES) <= set(jets.fields)
    assert len(jets) > 0 and len(jets) % 2 == 0
    replica = np.asarray(jets.replica)
    np.testing.assert_array_equal(replica, np.tile([0, 1], len(jets) // 2))
    for name in ("event_id", "jet_index"):
        values = np.asarray(jets[name])
        np.testing.assert_array_equal(values[0::2], values[1::2])
    assert np.all(np.asarray(jets.ncell) > 0)


def test_truth_is_identical_across_replicas_and_the_detector_is_not(qg_file):
    jets = read(qg_file)
    a, b = jets[0::2], jets[1::2]
    for name in ("truth_pt", "truth_eta", "truth_phi", "truth_e", "truth_m", "label", "parton_pdgid",
                 "particle_pt", "particle_eta", "particle_pdgid"):
        assert ak.all(a[name] == b[name]), name
    assert not ak.all(a.jet_e == b.jet_e)
    # noise and showers differ cell by cell
    assert np.mean(np.asarray(ak.num(a.cell_e)) != np.asarray(ak.num(b.cell_e))) > 0.5


def test_same_seed_gives_identical_file_contents(qg_file, tmp_path):
    again = tmp_path / "again.root"
    assert generate(again) == 0
    first, second = read(qg_file), read(again)
    for name in first.fields:
        assert ak.all(ak.flatten(first[name], axis=None) == ak.flatten(second[name], axis=None)), name
    assert read_provenance(again)["counts"] == read_provenance(qg_file)["counts"]


def test_another_seed_gives_other_events(qg_file, tmp_path):
    other = tmp_path / "other.root"
    assert generate(other, seed=6) == 0
    assert not np.array_equal(np.asarray(read(other).truth_pt[:4]), np.asarray(read(qg_file).truth_pt[:4]))


def test_labels_and_units(qg_file):
    jets = read(qg_file)
    assert set(np.unique(jets.label)) <= {0, 1}
    assert np.all((np.asarray(jets.truth_pt) > 150) & (np.asarray(jets.truth_pt) < 500))
    assert ak.all(np.abs(jets.cell_phi) <= np.pi) and ak.all((jets.cell_layer >= 0) & (jets.cell_layer < 6))
    response = np.asarray(jets.jet_e / jets.truth_e)
    assert 0.5 < np.median(response) < 1.0  # EM scale: below one


def test_provenance_records_config_seeds_versions_and_counts(qg_file):
    provenance = read_provenance(qg_file)
    assert provenance["seed"] == 5 and provenance["replicas"] == 2
    assert provenance["config"]["process"] == "qg"
    assert provenance["config"]["sharding"]["events_per_shard"] == 15
    assert provenance["versions"]["pythia8mc"]
    counts = provenance["counts"]
    assert counts["events"] == 30
    assert counts["jets_written"] == len(read(qg_file)) // 2
    assert counts["truth_jets"] == counts["jets_written"] + counts["jets_dropped_unmatched"]


@pytest.mark.slow
def test_workers_do_not_change_the_file(qg_file, tmp_path):
    parallel = tmp_path / "parallel.root"
    assert generate(parallel, "--workers", "2") == 0
    first, second = read(qg_file), read(parallel)
    for name in first.fields:
        assert ak.all(ak.flatten(first[name], axis=None) == ak.flatten(second[name], axis=None)), name


def test_interrupted_run_leaves_no_file(tmp_path, monkeypatch):
    from detector_sim import backends, simulate

    real = simulate.simulate_shard
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(backends, "simulate_shard", failing)
    out = tmp_path / "partial.root"
    assert generate(out) == 130
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, config_text, message", [
    (["--set", "jets.radious=0.4"], None, "did you mean 'radius'"),
    (["--set", "process=quarks"], None, "unknown process 'quarks'"),
    ([], "process: qg\njets: [radius\n", "not valid YAML"),
    ([], "process: qg\ndetektor: {}\n", "did you mean 'detector'"),
    (["--set", "jets.radius=big"], None, "jets.radius must be a number"),
])
def test_bad_config_is_a_one_line_error_with_exit_2(tmp_path, capsys, extra, config_text, message):
    config = "configs/sim/qg.yaml"
    if config_text is not None:
        config = tmp_path / "bad.yaml"
        config.write_text(config_text)
    out = tmp_path / "out.root"
    assert generate(out, *extra, config=config) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("argv_change, message", [
    ({"--replicas": "0"}, "--replicas must be at least 1"),
    ({"--events": "0"}, "--events must be at least 1"),
    ({"--config": "configs/sim/nope.yaml"}, "does not exist"),
    ({"--out": "/nonexistent-folder/x.root"}, "does not exist"),
    ({"--out": "x.txt"}, "must be a .root file"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, argv_change, message):
    args = {"--config": "configs/sim/qg.yaml", "--events": "5", "--replicas": "2", "--out": str(tmp_path / "o.root")}
    args.update(argv_change)
    argv = ["generate", "--quiet"] + [item for pair in args.items() for item in pair]
    with pytest.raises(SystemExit) if argv_change.keys() & {"--replicas", "--events"} else _no_exit():
        code = cli.main(argv)
        assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_output_path_that_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "x.root"
    folder.mkdir()
    assert generate(folder) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [folder] and list(folder.iterdir()) == []


@pytest.mark.parametrize("content, message", [
    (b"not a root file", "is not a readable detector-sim file"),
    (b"", "is not a readable detector-sim file"),
    ("truncated", "is not a readable detector-sim file"),
    ("no jets", "holds no TTree 'jets'"),
])
def test_info_on_broken_or_foreign_files_is_one_line(qg_file, tmp_path, capsys, content, message):
    """Issue case 3: detector-sim info never shows a traceback."""
    path = tmp_path / "bad.root"
    if content == "truncated":
        path.write_bytes(qg_file.read_bytes()[:2000])
    elif content == "no jets":
        with uproot.recreate(path) as file:
            file.mktree("events", {"x": np.float32})
            file["events"].extend({"x": np.zeros(2, np.float32)})
    else:
        path.write_bytes(content)
    assert cli.main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("detector-sim: error: ") and message in err and err.count("\n") == 1


def test_info_on_a_file_without_provenance_says_so(tmp_path, capsys):
    path = tmp_path / "plain.root"
    with uproot.recreate(path) as file:
        file.mktree("jets", {name: np.int32 if name in ("label", "ncell", "ntrack") else np.float32
                             for name in ("label", "jet_pt", "truth_pt", "ncell", "ntrack")})
        file["jets"].extend({name: np.ones(3, np.int32 if name in ("label", "ncell", "ntrack") else np.float32)
                             for name in ("label", "jet_pt", "truth_pt", "ncell", "ntrack")})
    assert cli.main(["info", str(path)]) == 0
    assert "no provenance" in capsys.readouterr().out
    assert cli.main(["info", str(path), "-q"]) == 0  # -v/-q on every subcommand, as on every command


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and f"gnnjets {gnnjets.__version__}" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["hadronization", "particle-augmented"])
def test_replica_mode_flag_is_recorded_and_changes_the_truth(tmp_path, mode):
    out = tmp_path / f"{mode}.root"
    assert generate(out, "--replica-mode", mode) == 0
    provenance = read_provenance(out)
    assert provenance["replica_mode"] == mode == provenance["config"]["replicas"]["mode"]
    jets = read(out)
    assert len(jets) > 0
    assert not ak.all(jets.truth_pt[0::2] == jets.truth_pt[1::2])  # each replica has its own truth jet
    assert ak.all(jets.label[0::2] == jets.label[1::2])


def test_detector_mode_is_the_default_and_recorded(qg_file):
    assert read_provenance(qg_file)["replica_mode"] == "detector"
