"""The chunked reader on our own files: round trip, chunking, entry ranges, subsets, errors."""

from __future__ import annotations

import re

import awkward as ak
import numpy as np
import pytest
import uproot

from conftest import write_synthetic_jets
from detector_sim.writer import JetWriter
from gnnjets.io import (EmptySelectionError, JetFileNotFoundError, MissingBranchError, MissingTreeError,
                        NonFiniteValueError, count_entries, read_all, read_jets, schema)
from gnnjets.io.errors import UnknownBranchError, UnreadableFileError
from gnnjets.io.reader import LOCATION_FIELDS


def _hand_batch() -> dict:
    """Three entries with hand-picked values in every schema branch (the second jet has no tracks)."""
    n_cells, n_tracks, n_particles = (2, 3, 1), (1, 0, 2), (1, 1, 0)
    batch = {}
    for i, field in enumerate(schema.SCALAR_FIELDS):
        scale = 0.1 if field.dtype[0] == "f" else 1  # inside the physical ranges (|phi| <= 2 pi, ...)
        batch[field.name] = np.array([i, i + 0.5, -i], dtype=np.float64).astype(field.dtype) * scale
    for prefix, counts in (("cell", n_cells), ("track", n_tracks), ("particle", n_particles)):
        for j, field in enumerate(schema.COLLECTIONS[prefix][1]):
            step = (j % 4 + 1) if field.dtype[0] == "f" else j + 1  # |values| <= 6.25: inside every range
            batch[field.name] = ak.Array([np.arange(n, dtype=field.dtype) * step + 0.25 * (field.dtype[0] == "f")
                                          for n in counts])
    batch["cell_layer"] = ak.Array([np.arange(n, dtype=np.int32) for n in n_cells])  # layers 0..5
    batch["track_charge"] = ak.Array([np.arange(n, dtype=np.int32) - 1 for n in n_tracks])  # charges -1..1
    return batch


def test_round_trip_values_and_dtypes(tmp_path):
    batch = _hand_batch()
    path = tmp_path / "hand.root"
    with JetWriter(path) as writer:
        writer.write(batch)
    jets = read_all(path)
    assert jets.fields == list(schema.BRANCH_NAMES) + list(LOCATION_FIELDS)
    for field in schema.ALL_FIELDS:
        column = jets[field.name]
        assert ak.to_list(column) == ak.to_list(ak.values_astype(ak.Array(batch[field.name]), field.dtype)), field.name
        leaf = ak.flatten(column, axis=None) if column.ndim > 1 else column
        assert ak.to_numpy(leaf).dtype == np.dtype(field.dtype), field.name
    assert jets.source_file_index.tolist() == [0, 0, 0]
    assert jets.entry.tolist() == [0, 1, 2]
    assert ak.to_numpy(jets.entry).dtype == np.int64


def test_synthetic_file_matches_raw_uproot(synthetic_jets_file):
    jets = read_all(synthetic_jets_file)
    raw = uproot.open(synthetic_jets_file)["jets"].arrays(library="ak")
    for name in schema.BRANCH_NAMES:
        assert ak.to_list(jets[name]) == ak.to_list(raw[name]), name


def test_chunked_iteration_equals_full_read(tmp_path):
    path = write_synthetic_jets(tmp_path / "a.root", n_jets=9, n_replicas=2)
    chunks = list(read_jets(path, step_size=4))
    assert [len(chunk) for chunk in chunks] == [4, 4, 4, 4, 2]
    full = read_all(path, step_size=1000)
    assert ak.to_list(ak.concatenate(chunks)) == ak.to_list(full)


def test_read_entries_of_one_file_reuse_the_open_tree(tmp_path):
    import pickle

    paths = [write_synthetic_jets(tmp_path / name, n_jets=6, n_replicas=2, seed=seed)
             for seed, name in enumerate(("a.root", "b.root"))]
    chunks = read_jets(paths, step_size=3)
    part = chunks.read_entries(1, 2, 9)
    assert ak.to_list(part) == ak.to_list(read_all(paths, entry_start=12 + 2, entry_stop=12 + 9))
    assert part["source_file_index"].tolist() == [1] * 7 and part["entry"].tolist() == list(range(2, 9))
    tree = chunks._tree(1)
    chunks.read_entries(1, 0, 3)
    assert chunks._tree(1) is tree  # not opened again
    clone = pickle.loads(pickle.dumps(chunks))  # open files stay behind
    assert ak.to_list(clone.read_entries(1, 2, 9)) == ak.to_list(part)
    chunks.close()
    assert ak.to_list(chunks.read_entries(1, 2, 9)) == ak.to_list(part)
    with pytest.raises(EmptySelectionError, match="select nothing"):
        chunks.read_entries(0, 12, 20)
    with pytest.raises(IndexError, match="file_index 2"):
        chunks.read_entries(2, 0, 1)


def test_files_are_written_with_lz4_by_default(tmp_path):
    path = write_synthetic_jets(tmp_path / "a.root", n_jets=3)
    with uproot.open(path) as file:
        assert isinstance(file.file.compression, uproot.LZ4)
    with pytest.raises(TypeError, match="uproot compression"):
        JetWriter(tmp_path / "b.root", compression="lz4")


def test_entry_range_spans_two_files(tmp_path):
    a = write_synthetic_jets(tmp_path / "a.root", n_jets=4, n_replicas=2, seed=1)  # 8 entries
    b = write_synthetic_jets(tmp_path / "b.root", n_jets=3, n_replicas=2, seed=2)  # 6 entries
    chunks = read_jets([a, b], entry_start=5, entry_stop=11, step_size=100)
    assert chunks.files == (str(a), str(b))
    assert chunks.entry_offsets.tolist() == [0, 8, 14]
    parts = list(chunks)
    assert [set(part.source_file_index.tolist()) for part in parts] == [{0}, {1}]  # a chunk never spans files
    jets = ak.concatenate(parts)
    assert jets.source_file_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert jets.entry.tolist() == [5, 6, 7, 0, 1, 2]
    assert ak.to_list(jets.cell_e[:3]) == ak.to_list(read_all(a).cell_e[5:8])
    assert ak.to_list(jets.cell_e[3:]) == ak.to_list(read_all(b).cell_e[0:3])
    assert chunks.locate(jets.source_file_index[4], jets.entry[4]) == f"{b}:jets entry 1"
    assert count_entries([a, b]) == 14
    assert len(read_all(str(tmp_path / "*.root"))) == 14  # globs, sorted


def test_branch_subset(synthetic_jets_file):
    jets = read_all(synthetic_jets_file, branches=["cell_e", "jet_pt", "track_eta_layer3"])
    assert jets.fields == ["jet_pt", "cell_e", "track_eta_layer3", "source_file_index", "entry"]  # schema order
    assert ak.to_list(jets.cell_e) == ak.to_list(read_all(synthetic_jets_file).cell_e)


def test_unknown_branch_suggests_close_match(synthetic_jets_file):
    with pytest.raises(UnknownBranchError, match="'cell_en' is not a schema branch; did you mean 'cell_e'"):
        read_jets(synthetic_jets_file, branches=["cell_en"])
    with pytest.raises(UnknownBranchError, match=r"counters are dropped, use ak.num\(chunk.cell_e\)"):
        read_jets(synthetic_jets_file, branches=["ncell"])


def test_missing_file_names_it_and_the_close_match(tmp_path):
    write_synthetic_jets(tmp_path / "qg_train.root", n_jets=1)
    with pytest.raises(JetFileNotFoundError) as error:
        read_jets(tmp_path / "qg_trian.root")
    assert str(tmp_path / "qg_trian.root") in str(error.value)
    assert "did you mean 'qg_train.root'" in str(error.value)
    with pytest.raises(JetFileNotFoundError, match="no file matches"):
        read_jets(str(tmp_path / "missing_*.root"))
    with pytest.raises(JetFileNotFoundError, match="no input files"):
        read_jets([])


def test_not_a_root_file(tmp_path):
    path = tmp_path / "broken.root"
    path.write_bytes(b"not a root file")
    with pytest.raises(UnreadableFileError, match="broken.root is not a readable ROOT file"):
        read_jets(path)


def test_missing_tree_lists_the_trees_there(tmp_path):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as file:
        file.mktree("Out_Tree", {"x": np.float32})
        file["Out_Tree"].extend({"x": np.zeros(2, np.float32)})
    with pytest.raises(MissingTreeError) as error:
        read_jets(path)
    message = str(error.value)
    assert str(path) in message and "no TTree 'jets'" in message
    assert "trees in the file: Out_Tree" in message and "tree='Out_Tree'" in message


def test_missing_branch_names_file_close_match_and_available(tmp_path, synthetic_jets_file):
    raw = uproot.open(synthetic_jets_file)["jets"].arrays(library="ak")
    path = tmp_path / "renamed.root"
    with uproot.recreate(path) as file:  # cell_e renamed: a file that breaks the contract
        columns = {("cell_en" if name == "cell_e" else name): raw[name] for name in schema.BRANCH_NAMES}
        file.mktree("jets", {name: column.type.content for name, column in columns.items()})
        file["jets"].extend(columns)
    with pytest.raises(MissingBranchError) as error:
        read_jets(path)
    message = str(error.value)
    assert f"no branch 'cell_e' in {path}:jets; did you mean 'cell_en'?" in message
    assert "Available:" in message and "cell_eta" in message
    # a subset that does not need the branch reads fine
    assert len(read_all(path, branches=["jet_pt"])) == 16


def test_nan_names_file_entry_and_branch(tmp_path):
    good = write_synthetic_jets(tmp_path / "good.root", n_jets=3)
    bad = write_synthetic_jets(tmp_path / "bad.root", n_jets=3, nan_entry=3)
    chunks = read_jets([good, bad])
    with pytest.raises(NonFiniteValueError) as error:
        list(chunks)
    message = str(error.value)
    assert f"{bad}:jets entry 3" in message and "'cell_e'" in message and "nan" in message
    assert "global entry 9" in message
    # reading around it works
    assert len(read_all([good, bad], entry_stop=9)) == 9


def test_empty_file_and_empty_selection(tmp_path, synthetic_jets_file):
    empty = tmp_path / "empty.root"
    with JetWriter(empty):
        pass
    with pytest.raises(EmptySelectionError, match=f"{re.escape(str(empty))}:jets has no entries"):
        read_jets(empty)
    with pytest.raises(EmptySelectionError, match="select no entries of the 16"):
        read_jets(synthetic_jets_file, entry_start=16)
    with pytest.raises(EmptySelectionError):
        read_jets(synthetic_jets_file, entry_start=4, entry_stop=4)
    # an empty file among others is skipped
    assert len(read_all([empty, synthetic_jets_file])) == 16


def test_bad_arguments_say_what_arrived(synthetic_jets_file):
    with pytest.raises(ValueError, match="'entry_start' must be a non-negative int"):
        read_jets(synthetic_jets_file, entry_start=-1)
    with pytest.raises(ValueError, match="'step_size' must be a positive"):
        read_jets(synthetic_jets_file, step_size=0)
    with pytest.raises(TypeError, match="'tree' must be a str, not 3"):
        read_jets(synthetic_jets_file, tree=3)
    with pytest.raises(TypeError, match=r"write \['cell_e'\]"):
        read_jets(synthetic_jets_file, branches="cell_e")


def test_empty_jets_read_as_empty_lists(tmp_path):
    path = write_synthetic_jets(tmp_path / "e.root", n_jets=3, empty_jets=(1,))
    jets = read_all(path)
    assert ak.num(jets.cell_e).tolist()[2:4] == [0, 0]
    assert ak.num(jets.track_pt).tolist()[2:4] == [0, 0]
