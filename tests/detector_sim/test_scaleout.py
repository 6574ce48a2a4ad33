"""Scale-out: --shard i/N parts and merge, the Dask backend, balanced files, workers that die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from detector_sim import cli
from detector_sim.balance import Balancer
from detector_sim.run import RUN_KEYS, part_of_plan
from detector_sim.writer import read_provenance

# MPI off: these tests are about where the shards run, and MPI's initialisation per shard costs ~0.5 s
SMALL = ["--set", "generator.pthat_slices=[[200,400]]", "--set", "jets.pt_min_gev=150",
         "--set", "jets.pt_max_gev=500", "--set", "sharding.events_per_shard=6", "--set", "generator.mpi=false"]
EVENTS = 24  # four shards


def generate(out, *extra, config="configs/sim/qg.yaml", events=EVENTS, seed=3):
    argv = ["generate", "--config", config, "--events", str(events), "--replicas", "2", "--seed", str(seed),
            "--out", str(out), "--quiet", *SMALL, *extra]
    return cli.main(argv)


def assert_same_file(a: Path, b: Path) -> None:
    """Same entries (every branch, bit for bit) and the same provenance but for how each was run."""
    first, second = uproot.open(a)["jets"].arrays(), uproot.open(b)["jets"].arrays()
    assert len(first) == len(second) > 0
    for name in first.fields:
        assert ak.all(ak.flatten(first[name], axis=None) == ak.flatten(second[name], axis=None)), name
    pa, pb = read_provenance(a), read_provenance(b)
    assert {k: v for k, v in pa.items() if k not in RUN_KEYS} == {k: v for k, v in pb.items() if k not in RUN_KEYS}
    assert pa["entries"] == pb["entries"] == len(first)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "qg.root"
    assert generate(out) == 0
    return out


def test_parts_merge_into_the_single_run_file(single, tmp_path):
    parts = [tmp_path / f"part{i}.root" for i in range(3)]
    for i, part in enumerate(parts):
        assert generate(part, "--shard", f"{i}/3") == 0
        assert read_provenance(part)["part"]["index"] == i
    merged = tmp_path / "merged.root"
    assert cli.main(["merge", "--quiet", "--out", str(merged), *map(str, reversed(parts))]) == 0
    assert_same_file(single, merged)
    assert read_provenance(merged)["run"]["backend"] == "merge"


def test_more_parts_than_shards_leaves_empty_parts_that_merge_too(single, tmp_path):
    parts = [tmp_path / f"part{i}.root" for i in range(5)]  # 4 shards in 5 parts: one is empty
    for i, part in enumerate(parts):
        assert generate(part, "--shard", f"{i}/5") == 0
    assert any(read_provenance(p)["entries"] == 0 for p in parts)
    merged = tmp_path / "merged.root"
    assert cli.main(["merge", "--quiet", "--out", str(merged), *map(str, parts)]) == 0
    assert_same_file(single, merged)


def test_part_of_plan_is_contiguous_and_covers_the_plan():
    plan = [(shard, 10) for shard in range(7)]
    blocks = [part_of_plan(plan, i, 3) for i in range(3)]
    assert sum(blocks, []) == plan and [len(b) for b in blocks] == [2, 2, 3]


def test_merge_refuses_parts_of_different_runs_or_missing_parts(tmp_path, capsys):
    a, b, other = tmp_path / "a.root", tmp_path / "b.root", tmp_path / "other.root"
    assert generate(a, "--shard", "0/2") == 0 and generate(b, "--shard", "1/2") == 0
    assert generate(other, "--shard", "1/2", seed=4) == 0
    out = tmp_path / "merged.root"
    assert cli.main(["merge", "--quiet", "--out", str(out), str(a)]) == 2
    assert "missing [1]" in capsys.readouterr().err
    assert cli.main(["merge", "--quiet", "--out", str(out), str(a), str(other)]) == 2
    assert "seed differ" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("shard", ["3/3", "1", "a/b", "-1/2"])
def test_bad_shard_is_a_usage_error(tmp_path, shard):
    with pytest.raises(SystemExit) as exit_info:
        generate(tmp_path / "x.root", "--shard", shard)
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_dask_local_cluster_writes_the_single_run_file(single, tmp_path):
    out = tmp_path / "dask.root"
    assert generate(out, "--scheduler", "local", "--workers", "2") == 0
    assert_same_file(single, out)
    assert read_provenance(out)["run"]["backend"].startswith("dask")


def test_dask_on_a_given_scheduler(single, tmp_path):
    """A scheduler given by address: a small in-process cluster (threads) stands in for a real one."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        out = tmp_path / "dask.root"
        assert generate(out, "--scheduler", cluster.scheduler_address) == 0
    assert_same_file(single, out)


# ----------------------------------------------------------------------------- balance

def _batch(labels, replicas=2, start=0):
    labels = np.repeat(np.asarray(labels), replicas)
    ids = np.repeat(np.arange(start, start + len(labels) // replicas), replicas)
    return {"label": labels, "event_id": ids, "cell_e": ak.Array([[float(i)] * (i % 3) for i in ids])}


def test_balancer_pairs_labels_in_stream_order_and_drops_the_surplus():
    balancer = Balancer((0, 1), 2)
    out = balancer.push(_batch([1, 1, 0, 1]))
    assert out["event_id"].tolist() == [2, 2, 0, 0]  # gluon (0) first, then the waiting quark
    out = balancer.push(_batch([0, 0], start=4))
    assert out["event_id"].tolist() == [4, 4, 1, 1, 5, 5, 3, 3]
    assert ak.to_list(out["cell_e"][0]) == [4.0]
    assert balancer.push(_batch([1], start=6)) is None
    assert balancer.finish() == 1 and balancer.jets_written == 6


def test_balancer_does_not_depend_on_the_batch_boundaries():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    whole = Balancer().push(_batch(labels))
    pieces, start, balancer = [], 0, Balancer()
    for size in (7, 1, 20, 0, 32):
        out = balancer.push(_batch(labels[start:start + size], start=start))
        start += size
        if out is not None:
            pieces.append(out["event_id"])
    np.testing.assert_array_equal(np.concatenate(pieces), whole["event_id"])


def test_a_balanced_config_writes_equal_labels_and_merges_alike(tmp_path):
    config = "configs/sim/qg_balanced_200_400.yaml"
    extra = ["--set", "sharding.events_per_shard=6"]
    single = tmp_path / "single.root"
    assert generate(single, *extra, config=config, events=24) == 0
    labels = uproot.open(single)["jets"]["label"].array(library="np")
    assert len(labels) > 0 and np.sum(labels == 0) == np.sum(labels == 1)
    counts = read_provenance(single)["counts"]
    assert counts["jets_written"] == len(labels) // 2
    parts = [tmp_path / f"part{i}.root" for i in range(2)]
    for i, part in enumerate(parts):
        assert generate(part, *extra, "--shard", f"{i}/2", config=config, events=24) == 0
    merged = tmp_path / "merged.root"
    assert cli.main(["merge", "--quiet", "--out", str(merged), *map(str, parts)]) == 0
    assert_same_file(single, merged)


def test_balance_needs_two_labels(tmp_path, capsys):
    assert generate(tmp_path / "x.root", "--set", "jets.balance=true", config="configs/sim/qcd.yaml") == 2
    assert "needs two labels" in capsys.readouterr().err


# ----------------------------------------------------------------------------- workers and leftovers

def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and prctl")
def test_workers_die_with_their_parent_and_the_next_run_removes_its_leftovers(tmp_path):
    out = tmp_path / "killed.root"
    # a run long enough to be killed in the middle, with two worker processes
    code = ("import sys; from detector_sim import cli; sys.exit(cli.main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "generate", "--config", "configs/sim/top.yaml", "--events", "4000",
            "--replicas", "2", "--seed", "1", "--out", str(out), "--workers", "2", "--quiet"]
    parent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)  # let them run into the simulation
        leftovers = list(tmp_path.glob("killed.root.tmp-*"))
        assert leftovers, "the run writes to a temporary file"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived their parent"
    finally:
        for pid in [parent.pid, *_children(parent.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not out.exists() and leftovers[0].exists()  # a dead writer leaves its temporary file
    assert generate(out, events=6) == 0  # the next run at that path removes it
    assert out.exists() and not leftovers[0].exists()


def test_a_stale_temporary_of_a_dead_process_is_removed(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid now belongs to no process
    out = tmp_path / "qg.root"
    stale = tmp_path / f"qg.root.tmp-{finished.pid}"
    stale.write_bytes(b"half a file")
    live = tmp_path / f"qg.root.tmp-{os.getppid()}"  # another writer still running: left alone
    live.write_bytes(b"being written")
    assert generate(out, events=6) == 0
    assert out.exists() and not stale.exists() and live.exists()


@pytest.mark.parametrize("extra", [
    ["--replica-mode", "hadronization"],
    ["--replica-mode", "particle-augmented", "--set", "pileup.mu=3", "--set", "pileup.pool_events=10"],
], ids=["hadronization", "augmented-with-pileup"])
def test_every_replica_mode_keeps_the_seeding_contract_across_parts(tmp_path, extra):
    single = tmp_path / "single.root"
    assert generate(single, *extra, events=12) == 0
    parts = [tmp_path / f"part{i}.root" for i in range(2)]
    for i, part in enumerate(parts):
        assert generate(part, *extra, "--shard", f"{i}/2", events=12) == 0
    merged = tmp_path / "merged.root"
    assert cli.main(["merge", "--quiet", "--out", str(merged), *map(str, parts)]) == 0
    assert_same_file(single, merged)


@pytest.mark.slow
def test_workers_do_not_change_a_hadronization_file(tmp_path):
    single, pooled = tmp_path / "single.root", tmp_path / "pooled.root"
    assert generate(single, "--replica-mode", "hadronization", events=12) == 0
    assert generate(pooled, "--replica-mode", "hadronization", "--workers", "2", events=12) == 0
    assert_same_file(single, pooled)


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    from detector_sim import backends

    monkeypatch.setattr(backends, "SCHEDULER_TIMEOUT_S", 1)
    out = tmp_path / "x.root"
    assert generate(out, "--scheduler", "tcp://127.0.0.1:9", events=6) == 2
    err = capsys.readouterr().err.strip()
    assert "no Dask scheduler answered" in err and len(err.splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []
