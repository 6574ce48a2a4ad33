"""The Embedding API: checkpoint -> Embedder -> rows in file order, output files, clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch
import uproot
from torch_geometric.data import Batch

from gnnjets.checkpoint import FORMAT, FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from gnnjets.cli import embed as embed_cli
from gnnjets.config import config_from_dict
from gnnjets.embed import (
    EMBEDDING_TREE, EmptyJetsWarning, Embedder, output_format, read_embeddings, write_embeddings,
)
from gnnjets.io.errors import SchemaVersionError
from gnnjets.io.provenance import file_schema_version
from gnnjets.data import JetDataset, make_loader
from gnnjets.io.errors import JetFileNotFoundError, MissingTreeError
from gnnjets.nn import build_model

from conftest import write_synthetic_jets

D = 8
# a non-default scaling: proves the embedder takes the checkpoint's, not the defaults
SCALING = {"log_energy_scale": 3.0, "angle_scale": 0.5}


def tiny_config() -> dict:
    return config_from_dict({
        "graph": {"max_cells": 32, "max_tracks": 8, "scaling": SCALING},
        "model": {"backbone": {"hidden": 8, "layers": 2, "embedding_dim": D, "pooling": "mean",
                               "append_jet_features": False}, "projection_dim": 4,
                  "projection_hidden": 8},
    }).to_dict()


def make_checkpoint(path: Path, config: dict | None = None, *, state: dict | None = None, **fields) -> Path:
    config = tiny_config() if config is None else config
    if state is None:
        state = build_model(config["model"], seed=0).state_dict()
    return save_checkpoint(path, {"config": config, "model": state, **fields})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("embed") / "tiny.pt")


@pytest.fixture(scope="module")
def embedder(checkpoint) -> Embedder:
    return Embedder.from_checkpoint(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def embedded(embedder, sim_qg_file):
    return embedder.embed_file(sim_qg_file)


def file_ids(path) -> dict:
    with uproot.open(path) as file:
        return file["jets"].arrays(["event_id", "jet_index", "replica"], library="np")


# ---------------------------------------------------------------------------------------- loading
def test_embedder_takes_everything_from_the_checkpoint(embedder, checkpoint):
    payload = load_checkpoint(checkpoint)
    assert embedder.dim == D and embedder.device == torch.device("cpu") and not embedder.backbone.training
    assert embedder.graph_config.to_dict() == payload["config"]["graph"]
    assert embedder.graph_config.scaling.log_energy_scale == 3.0
    assert embedder.model_config.to_dict() == payload["config"]["model"]
    assert embedder.checkpoint == checkpoint and embedder.schema_version == payload["schema_version"]
    weights = embedder.backbone.state_dict()
    assert weights and all(torch.equal(value, payload["model"][f"backbone.{key}"]) for key, value in weights.items())


def test_downstream_checkpoint_with_a_head_is_accepted(tmp_path, embedder, embedded, sim_qg_file):
    config = tiny_config()
    model = build_model(config["model"], seed=0)
    head = torch.nn.Linear(D, 2)
    state = {**{f"backbone.{k}": v for k, v in model.backbone.state_dict().items()},
             **{f"head.{k}": v for k, v in head.state_dict().items()}}
    downstream = Embedder.from_checkpoint(make_checkpoint(tmp_path / "down.pt", config, state=state), device="cpu")
    h, _ = downstream.embed_file(sim_qg_file)
    np.testing.assert_array_equal(h, embedded[0])


def test_lazy_export_keeps_import_gnnjets_free_of_torch():
    code = ("import sys, gnnjets, gnnjets.io.schema; assert 'torch' not in sys.modules, 'torch imported'; "
            "from gnnjets import Embedder; assert Embedder.__module__ == 'gnnjets.embed'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ---------------------------------------------------------------------------------------- rows
def test_rows_follow_the_file_and_ids_match_its_branches(embedded, sim_qg_file):
    h, ids = embedded
    branches = file_ids(sim_qg_file)
    n = len(branches["event_id"])
    assert h.shape == (n, D) and h.dtype == np.float32 and np.isfinite(h).all()
    assert set(ids) == {"entry", "event_id", "jet_index", "replica"}
    np.testing.assert_array_equal(ids["entry"], np.arange(n))
    for name in ("event_id", "jet_index", "replica"):
        np.testing.assert_array_equal(ids[name], branches[name])
    assert ids["event_id"].dtype == np.int64 and ids["replica"].dtype == np.int32


def test_same_jets_give_the_same_rows(embedder, embedded, sim_qg_file):
    h, _ = embedder.embed_file(sim_qg_file)
    np.testing.assert_array_equal(h, embedded[0])
    dataset = JetDataset(sim_qg_file, graph_config=embedder.graph_config, skip_empty=False)
    by_graphs = torch.cat([embedder.embed_graphs(batch) for batch in make_loader(dataset, batch_size=512)])
    assert by_graphs.dtype == torch.float32 and by_graphs.device.type == "cpu"
    np.testing.assert_array_equal(by_graphs.numpy(), embedded[0])


@pytest.mark.parametrize("batch_size", [1, 7])
def test_batch_size_does_not_change_the_rows(embedder, embedded, sim_qg_file, batch_size):
    h, ids = embedder.embed_file(sim_qg_file, batch_size=batch_size)
    np.testing.assert_allclose(h, embedded[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ids["entry"], embedded[1]["entry"])


def test_worker_processes_keep_the_file_order(embedder, embedded, sim_qg_file):
    h, ids = embedder.embed_file(sim_qg_file, batch_size=5, num_workers=1)
    np.testing.assert_allclose(h, embedded[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ids["entry"], embedded[1]["entry"])


def test_one_graph_and_a_batch_agree(embedder, sim_qg_file):
    dataset = JetDataset(sim_qg_file, graph_config=embedder.graph_config)
    graphs = [graph for graph, _ in zip(dataset, range(3))]
    batch = embedder.embed_graphs(Batch.from_data_list(graphs))
    single = embedder.embed_graphs(graphs[1])
    assert batch.shape == (3, D) and single.shape == (1, D)
    torch.testing.assert_close(single[0], batch[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="PyG Batch"):
        embedder.embed_graphs(np.zeros((3, 14)))


def test_replica_keeps_one_row_per_jet(embedder, embedded, sim_qg_file):
    h, ids = embedder.embed_file(sim_qg_file, replica=1)
    first = embedded[1]["replica"] == 1
    assert (ids["replica"] == 1).all() and len(h) == first.sum()
    np.testing.assert_array_equal(ids["entry"], embedded[1]["entry"][first])
    np.testing.assert_allclose(h, embedded[0][first], rtol=1e-5, atol=1e-6)


def test_several_files_are_embedded_in_order_with_a_file_index(embedder, embedded, sim_qg_file):
    h, ids = embedder.embed_file([sim_qg_file, sim_qg_file])
    n = len(embedded[0])
    np.testing.assert_array_equal(ids["file_index"], np.repeat([0, 1], n))
    np.testing.assert_array_equal(ids["entry"], np.tile(embedded[1]["entry"], 2))
    np.testing.assert_allclose(h, np.concatenate([embedded[0]] * 2), rtol=1e-5, atol=1e-6)


def test_jets_without_nodes_get_nan_rows_and_leave_the_others_alone(embedder, tmp_path):
    path = write_synthetic_jets(tmp_path / "empty.root", n_jets=4, empty_jets=(1,))
    with pytest.warns(EmptyJetsWarning, match=f"2 of 8 records of {path}"):
        h, ids = embedder.embed_file(path, batch_size=3)
    empty = np.isin(ids["entry"], [2, 3])
    assert np.isnan(h[empty]).all() and np.isfinite(h[~empty]).all()
    dataset = JetDataset(path, graph_config=embedder.graph_config, skip_empty=False)
    graphs = [graph for graph in dataset if graph.num_nodes > 0]
    alone = embedder.embed_graphs(Batch.from_data_list(graphs)).numpy()
    np.testing.assert_allclose(h[~empty], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_rows_equal_cpu_rows(checkpoint, embedded, sim_qg_file):
    gpu = Embedder.from_checkpoint(checkpoint, device="cuda")
    assert next(gpu.backbone.parameters()).device.type == "cuda"
    h, _ = gpu.embed_file(sim_qg_file)
    np.testing.assert_allclose(h, embedded[0], rtol=1e-4, atol=1e-5)
    batch = next(iter(make_loader(JetDataset(sim_qg_file, graph_config=gpu.graph_config), batch_size=4)))
    assert gpu.embed_graphs(batch).device.type == "cpu" and batch.x.device.type == "cpu"  # caller's batch stays


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused(checkpoint):
    with pytest.raises(ValueError, match="no GPU is usable here"):
        Embedder.from_checkpoint(checkpoint, device="cuda")


# ---------------------------------------------------------------------------------------- output files
def test_root_output_is_a_friend_tree_equal_to_embed_file(checkpoint, embedded, sim_qg_file, tmp_path, capsys):
    out = tmp_path / "emb.root"
    assert embed_cli.main([str(checkpoint), str(sim_qg_file), "--out", str(out), "--device", "cpu"]) == 0
    summary = capsys.readouterr().out
    assert f"embedded {len(embedded[0])} jets (D = {D})" in summary and "jets/s" in summary and str(out) in summary
    assert sorted(os.listdir(tmp_path)) == ["emb.root"]  # no temp file left behind
    with uproot.open(sim_qg_file) as source, uproot.open(out) as file:
        jets, tree = source["jets"], file[EMBEDDING_TREE]
        assert tree.num_entries == jets.num_entries
        assert tree.typenames()["h"] == f"float[{D}]"
        friend = ak.zip({"jet": jets.arrays(["event_id", "replica"]), "emb": tree.arrays()}, depth_limit=1)
        provenance = json.loads(str(file["provenance"]))
    np.testing.assert_array_equal(friend.jet.event_id, friend.emb.event_id)
    np.testing.assert_array_equal(friend.jet.replica, friend.emb.replica)
    assert provenance["checkpoint"] == str(checkpoint) and provenance["dim"] == D
    h, ids = read_embeddings(out)
    np.testing.assert_array_equal(h, embedded[0])
    for name, values in embedded[1].items():
        np.testing.assert_array_equal(ids[name], values)


@pytest.mark.parametrize("name, fmt", [("emb.npz", None), ("emb.parquet", None), ("emb.out", "npz")])
def test_npz_and_parquet_round_trip(checkpoint, embedded, sim_qg_file, tmp_path, name, fmt):
    out = tmp_path / name
    argv = [str(checkpoint), str(sim_qg_file), "--out", str(out), "--device", "cpu"]
    assert embed_cli.main(argv + (["--format", fmt] if fmt else [])) == 0
    assert sorted(os.listdir(tmp_path)) == [name]
    h, ids = read_embeddings(out, format=fmt)
    np.testing.assert_array_equal(h, embedded[0])
    assert set(ids) == set(embedded[1])
    for key, values in embedded[1].items():
        np.testing.assert_array_equal(ids[key], values)


@pytest.mark.slow
def test_module_entry_point_writes_npz(checkpoint, sim_qg_file, tmp_path):
    out = tmp_path / "emb.npz"
    done = subprocess.run([sys.executable, "-m", "gnnjets.cli.embed", str(checkpoint), str(sim_qg_file), "--out",
                           str(out), "--device", "cpu", "--batch-size", "64"], capture_output=True, text=True,
                          timeout=300, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr[-2000:]
    with np.load(out, allow_pickle=False) as data:
        assert data["h"].shape[1] == D and json.loads(str(data["provenance"]))["format"] == "gnnjets-embedding"


def test_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "emb.parquet"
    out.write_text("previous")

    def fail(array, destination, **kwargs):
        Path(destination).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ak, "to_parquet", fail)
    with pytest.raises(OSError, match="disk full"):
        write_embeddings(out, np.zeros((3, D), np.float32), {"entry": np.arange(3)})
    assert sorted(os.listdir(tmp_path)) == ["emb.parquet"] and out.read_text() == "previous"


def test_output_format_follows_the_suffix_and_refuses_contradictions():
    assert output_format("a.root") == "root" and output_format("a.pq") == "parquet"
    assert output_format("a.h5", "npz") == "npz"
    with pytest.raises(ValueError, match=r"a.csv: the suffix '.csv' names no embedding format; use .root"):
        output_format("a.csv")  # never a ROOT file named .csv
    with pytest.raises(ValueError, match="suffix of npz but the format asked for is root"):
        output_format("a.npz", "root")


# ---------------------------------------------------------------------------------------- refusals
def test_missing_checkpoint_is_refused(tmp_path, sim_qg_file, capsys):
    with pytest.raises(CheckpointError, match="does not exist"):
        Embedder.from_checkpoint(tmp_path / "nope.pt")
    assert embed_cli.main([str(tmp_path / "nope.pt"), str(sim_qg_file), "--out", str(tmp_path / "e.root")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gnnjets-embed: error: ") and "nope.pt does not exist" in err
    assert os.listdir(tmp_path) == []


def test_a_file_that_is_no_checkpoint_is_refused(sim_qg_file, tmp_path):
    with pytest.raises(CheckpointError, match="is not a gnnjets checkpoint: it is a ROOT file"):
        Embedder.from_checkpoint(sim_qg_file)
    other = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="is not a gnnjets checkpoint"):
        Embedder.from_checkpoint(other)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_with_a_pickled_object_cannot_run_code(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "shared.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "config": tiny_config(),
                "payload": _RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(CheckpointError, match="holds Python objects besides tensors") as error:
        Embedder.from_checkpoint(path)
    assert not marker.exists()
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)  # never the unsafe advice


def test_checkpoint_of_another_schema_version_is_refused(tmp_path):
    path = make_checkpoint(tmp_path / "old.pt", schema_version=99)
    with pytest.raises(CheckpointError, match="schema version 99"):
        Embedder.from_checkpoint(path)


def test_file_of_another_schema_version_than_the_checkpoint_is_refused(tmp_path, sim_qg_file, monkeypatch, capsys):
    import gnnjets.checkpoint

    monkeypatch.setattr(gnnjets.checkpoint, "SCHEMA_VERSION", 2)  # a gnnjets that reads schema 2
    path = make_checkpoint(tmp_path / "v2.pt")
    embedder = Embedder.from_checkpoint(path, device="cpu")
    assert embedder.schema_version == 2 and file_schema_version(sim_qg_file) == 1
    with pytest.raises(SchemaVersionError, match=rf"{sim_qg_file} was written with ROOT schema version 1, but "
                                              rf"checkpoint {path} was trained on schema version 2.*regenerate"):
        embedder.embed_file(sim_qg_file)
    assert embed_cli.main([str(path), str(sim_qg_file), "--out", str(tmp_path / "e.root"), "--device", "cpu"]) == 2
    assert "schema version 1" in capsys.readouterr().err


def test_files_without_provenance_are_not_checked(embedder, tmp_path):
    path = tmp_path / "foreign.root"
    with uproot.recreate(path) as file:
        file.mktree("events", {"x": np.float32})
        file["events"].extend({"x": np.zeros(2, np.float32)})
    assert file_schema_version(path) is None
    embedder.check_schema(path)  # nothing to compare: no error


@pytest.mark.parametrize("change, message", [
    (lambda config, state: (dict(config, graph=None), state), "no config.graph"),
    (lambda config, state: ({k: v for k, v in config.items() if k != "model"}, state), "no config.model"),
    (lambda config, state: (config, {k: v for k, v in state.items() if k.startswith("projector.")}),
     "no backbone weights .* projector"),
    (lambda config, state: ({**config, "model": {"backbone": {"hidden": 16, "embedding_dim": D}}}, state),
     "do not fit config.model.backbone .*wrong shape"),
])
def test_incomplete_checkpoints_say_what_is_missing(tmp_path, change, message):
    config = tiny_config()
    config, state = change(config, build_model(config["model"], seed=0).state_dict())
    path = save_checkpoint(tmp_path / "bad.pt", {"config": config, "model": state})
    with pytest.raises(CheckpointError, match=message):
        Embedder.from_checkpoint(path)


def test_missing_input_file_and_wrong_tree_are_clear(embedder, checkpoint, sim_qg_file, tmp_path, capsys):
    with pytest.raises(JetFileNotFoundError, match="no such file"):
        embedder.embed_file(tmp_path / "nope.root")
    with pytest.raises(MissingTreeError, match="no TTree 'jet'.*did you mean 'jets'"):
        embedder.embed_file(sim_qg_file, tree="jet")
    for argv, text in (([str(tmp_path / "nope.root")], "nope.root"), ([str(sim_qg_file), "--tree", "jet"], "'jet'")):
        code = embed_cli.main([str(checkpoint), *argv, "--out", str(tmp_path / "e.root"), "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("gnnjets-embed: error: ") and text in err
    assert not (tmp_path / "e.root").exists()


def test_threads_option_sets_torch_threads_and_refuses_zero(checkpoint, sim_qg_file, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        out = tmp_path / "one.npz"
        assert embed_cli.main([str(checkpoint), str(sim_qg_file), "--out", str(out), "--device", "cpu",
                               "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1 and out.exists()
    finally:
        torch.set_num_threads(before)
    code = embed_cli.main([str(checkpoint), str(sim_qg_file), "--out", str(tmp_path / "x.npz"), "--threads", "0"])
    assert code == 2 and "--threads must be at least 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- arrays, streaming, CLI mistakes
def test_iter_embed_streams_the_rows_of_embed_file(embedder, embedded, sim_qg_file):
    h, ids = embedded
    parts = list(embedder.iter_embed(sim_qg_file, step_size=7))
    assert len(parts) > 1 and all(len(part[0]) <= 7 for part in parts)
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), h, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.concatenate([p[1]["entry"] for p in parts]), ids["entry"])


def test_embed_arrays_of_jets_in_memory(embedder, embedded, sim_qg_file):
    from gnnjets.io import read_all

    h, _ = embedded
    jets = read_all(sim_qg_file)
    same, ids = embedder.embed_arrays(jets)
    np.testing.assert_allclose(same, h, rtol=1e-5, atol=1e-6)
    assert ids["entry"].tolist() == list(range(len(jets)))
    # an analysis's own records: only the jet axis, cells and tracks; the rest is filled
    names = ["jet_pt", "jet_eta", "jet_phi", "cell_e", "cell_eta", "cell_phi", "cell_layer", "track_pt", "track_eta",
             "track_phi"]
    minimal = ak.zip({name: jets[name] for name in names}, depth_limit=1)
    rows, _ = embedder.embed_arrays(minimal)
    assert rows.shape == h.shape and np.isfinite(rows).all()
    broken = ak.zip({**{name: jets[name] for name in names}, "jet_pt": jets["jet_pt"] * 0 + 1e9}, depth_limit=1)
    with pytest.raises(ValueError, match="1e\\+09 in branch 'jet_pt' at record 0 of the array: outside the physical"):
        embedder.embed_arrays(broken)
    with pytest.raises(TypeError, match="awkward Array of records"):
        embedder.embed_arrays(np.zeros(3))


def test_swapped_arguments_and_unknown_suffixes_are_refused(checkpoint, sim_qg_file, tmp_path, capsys):
    """Issue case 8: arguments swapped; --out x.csv."""
    code = embed_cli.main([str(sim_qg_file), str(checkpoint), "--out", str(tmp_path / "e.root")])
    err = capsys.readouterr().err
    assert code == 2 and "the checkpoint comes first" in err and err.count("\n") == 1
    code = embed_cli.main([str(checkpoint), str(sim_qg_file), "--out", str(tmp_path / "e.csv"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "'.csv' names no embedding format" in err
    assert os.listdir(tmp_path) == []


def test_a_text_file_as_checkpoint_is_one_line(sim_qg_file, tmp_path, capsys):
    """Issue case 7: no torch internals, no advice to load unsafely."""
    text = tmp_path / "notes.pt"
    text.write_text("my checkpoint notes\n")
    code = embed_cli.main([str(text), str(sim_qg_file), "--out", str(tmp_path / "e.root")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a PyTorch file at all" in err and "weights_only" not in err


def test_outputs_record_the_checkpoint_signature_and_info_shows_the_card(checkpoint, sim_qg_file, tmp_path, capsys):
    from gnnjets.checkpoint import file_hash

    out = tmp_path / "e.npz"
    assert embed_cli.main([str(checkpoint), str(sim_qg_file), "--out", str(out), "--device", "cpu", "-q"]) == 0
    with np.load(out) as saved:
        provenance = json.loads(str(saved["provenance"]))
    assert provenance["checkpoint_signature"] == file_hash(checkpoint)
    capsys.readouterr()
    assert embed_cli.main(["--info", str(checkpoint)]) == 0
    info = capsys.readouterr().out
    assert f"signature {file_hash(checkpoint)}" in info and "ROOT schema 1" in info
