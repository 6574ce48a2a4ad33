"""Damaged and implausible files: every reader fails with the package's error, never a traceback.

Issue cases: truncated files escape the error handling (2), finite garbage passes (6); and the
fuzzing of the reader and the Embedder with random damage (truncation, flipped bytes in baskets,
missing branches, wrong dtypes, empty and huge jagged lists, NaN/inf/huge values).
"""

from __future__ import annotations

import warnings

import awkward as ak
import numpy as np
import pytest
import uproot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_synthetic_jets
from gnnjets.base.errors import GnnjetsError
from gnnjets.embed import EmptyJetsWarning
from gnnjets.graphs import GRAPH_BRANCHES
from gnnjets.io import count_entries, read_all, read_jets, schema
from gnnjets.io.errors import (BranchTypeError, InvalidValueError, NonFiniteValueError, OutOfRangeValueError,
                               UnreadableFileError)
from gnnjets.io.mapping import mapping_from_dict


def _records(path) -> dict:
    """The branches of a file as a dict of arrays (the writer's input)."""
    with uproot.open(path) as file:
        arrays = file["jets"].arrays(library="ak")
    return {field.name: arrays[field.name] for field in schema.ALL_FIELDS}


def write_tree(path, columns: dict) -> None:
    """A ``jets`` TTree with each collection's lists under one counter, as the writer makes them."""
    groups, scalars = {}, {}
    for name, values in columns.items():
        prefix = schema.collection_of(name)
        if prefix is None or not isinstance(values, ak.Array) or values.ndim != 2:
            scalars[name] = values
        else:
            groups.setdefault(prefix, {})[name[len(prefix) + 1:]] = values
    data = {**scalars, **{prefix: ak.zip(fields) for prefix, fields in groups.items()}}
    with uproot.recreate(path) as file:
        file.mktree("jets", {name: (value.type.content if isinstance(value, ak.Array) else value.dtype)
                             for name, value in data.items()}, counter_name=lambda prefix: f"n{prefix}")
        file["jets"].extend(data)


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory):
    return write_synthetic_jets(tmp_path_factory.mktemp("damaged") / "clean.root", n_jets=12)


# ---------------------------------------------------------------------------------- issue case 2
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.7])
def test_truncated_file_names_file_entries_and_fix(clean_file, tmp_path, fraction):
    data = clean_file.read_bytes()
    path = tmp_path / "truncated.root"
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(UnreadableFileError) as error:
        read_all(path)
    message = str(error.value)
    assert "truncated.root" in message and "\n" not in message
    assert "regenerate" in message
    assert "cannot be read" in message or "not a readable ROOT file" in message
    if "cannot be read" in message:  # a basket failed: the entries and how to skip them are named
        assert "entries 0.." in message and "entry_start/entry_stop" in message


def test_a_damaged_basket_is_unreadable_not_a_traceback(clean_file, tmp_path):
    with uproot.open(clean_file) as file:
        branch = file["jets"]["cell_e"]
        seek = int(branch.member("fBasketSeek")[0])
    data = bytearray(clean_file.read_bytes())
    data[seek:seek + 32] = bytes(32)  # the basket's key: its length and compression header are gone
    path = tmp_path / "flipped.root"
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFileError, match="flipped.root:jets entries 0..23 cannot be read"):
        read_all(path)


# ---------------------------------------------------------------------------------- issue case 6
@pytest.mark.parametrize("value", [3e11, 1e30, -2e4])
def test_finite_garbage_is_refused_with_the_physical_range(clean_file, tmp_path, value):
    columns = _records(clean_file)
    cell_e = ak.to_list(columns["cell_e"])
    cell_e[5][3] = value
    columns["cell_e"] = ak.values_astype(ak.Array(cell_e), np.float32)
    path = tmp_path / "garbage.root"
    write_tree(path, columns)
    with pytest.raises(OutOfRangeValueError, match=r"element 3 of 'cell_e' at .*garbage.root:jets entry 5: outside "
                                                    r"the physical range -7000..7000 GeV of 'cell_e'"):
        read_all(path)
    # a mapping may widen a range on purpose (a 100 TeV collider, a file in MeV read without units)
    wide = mapping_from_dict({"limits": {"cell_e": [-1e31, 1e31]}})
    assert len(read_all(path, mapping=wide)) == 24


def test_out_of_range_integers_and_phi(clean_file, tmp_path):
    columns = _records(clean_file)
    layers = ak.to_list(columns["cell_layer"])
    layers[2][0] = 17
    columns["cell_layer"] = ak.values_astype(ak.Array(layers), np.int32)
    write_tree(tmp_path / "layer.root", columns)
    with pytest.raises(OutOfRangeValueError, match="17 in element 0 of 'cell_layer'.*range 0..5"):
        read_all(tmp_path / "layer.root")
    columns = _records(clean_file)
    columns["jet_phi"] = np.asarray(columns["jet_phi"]) * 0 + 99.0
    write_tree(tmp_path / "phi.root", columns)
    with pytest.raises(OutOfRangeValueError, match="99 in branch 'jet_phi'"):
        read_all(tmp_path / "phi.root")


def test_the_shipped_samples_lie_inside_every_range():
    for name in ("qg", "top", "qcd"):
        assert len(read_all(f"data/{name}_small.root")) > 0


# ---------------------------------------------------------------------------------- shapes and types
def test_wrong_shapes_and_dtypes_are_branch_type_errors(clean_file, tmp_path):
    columns = _records(clean_file)
    columns["cell_layer"] = ak.values_astype(columns["cell_layer"], np.float64) + 0.5  # not integers
    write_tree(tmp_path / "float_layer.root", columns)
    with pytest.raises(BranchTypeError, match=r"'cell_layer'.*non-integer \d\.5; the schema wants int32"):
        read_all(tmp_path / "float_layer.root")
    columns = _records(clean_file)
    columns["jet_pt"] = columns["cell_e"]  # lists where one number per jet belongs
    write_tree(tmp_path / "jagged_pt.root", columns)
    with pytest.raises(BranchTypeError, match="'jet_pt'.*one number per entry"):
        read_all(tmp_path / "jagged_pt.root")


def test_remote_and_tree_specs_go_to_uproot(clean_file, tmp_path):
    spec = f"{clean_file}:jets"  # uproot's file.root:tree
    assert len(read_all(spec)) == 24 and count_entries(spec) == 24
    with pytest.raises(UnreadableFileError, match=r"^cannot read root://127.0.0.1:1//nope.root .*check the address"):
        read_jets("root://127.0.0.1:1//nope.root")
    with pytest.raises(UnreadableFileError, match=r"cannot read http://127.0.0.1:1/nope.root .*check the address"):
        read_jets("http://127.0.0.1:1/nope.root")


# ---------------------------------------------------------------------------------- fuzzing
DAMAGES = ("truncate", "flip", "drop_branch", "wrong_dtype", "empty_lists", "huge_list", "bad_value", "none")
FLOATS = [f.name for f in schema.ALL_FIELDS if np.dtype(f.dtype).kind == "f"]


def damaged_file(path, clean, damage: str, draw) -> str | None:
    """Write ``clean`` with ``damage``; return the branch a check must refuse (a known-bad value), if any."""
    columns = _records(clean)
    must_fail = None
    if damage == "drop_branch":
        name = draw(st.sampled_from(sorted(columns)))
        del columns[name]
        must_fail = name
    elif damage == "wrong_dtype":
        name = draw(st.sampled_from(sorted(columns)))
        values = columns[name]
        columns[name] = (ak.values_astype(values, np.float64) if np.dtype(schema.dtype_of(name)).kind == "i"
                         else ak.values_astype(values, np.int64) if isinstance(values, ak.Array)
                         else np.asarray(values).astype(np.int64))
    elif damage in ("empty_lists", "huge_list"):
        prefix = draw(st.sampled_from(sorted(schema.COLLECTIONS)))
        entry = draw(st.integers(0, 23))
        size = 0 if damage == "empty_lists" else draw(st.integers(2_000, 5_000))
        for field in schema.COLLECTIONS[prefix][1]:
            lists = ak.to_list(columns[field.name])
            lists[entry] = ([] if size == 0 else list(np.resize(np.asarray(lists[entry] or [0.5]), size)))
            columns[field.name] = ak.values_astype(ak.Array(lists), field.dtype) if any(lists) else \
                ak.unflatten(np.zeros(0, field.dtype), np.zeros(len(lists), np.int64))
    elif damage == "bad_value":
        name = draw(st.sampled_from(FLOATS))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e30, 3e11]))
        values = columns[name]
        if isinstance(values, ak.Array) and values.ndim == 2:
            lists = ak.to_list(values)
            filled = [i for i, items in enumerate(lists) if items]
            if filled:
                lists[filled[0]][0] = value
                must_fail = name
            columns[name] = ak.values_astype(ak.Array(lists), np.float32)
        else:
            values = np.array(values, dtype=np.float32)
            values[draw(st.integers(0, len(values) - 1))] = value
            columns[name] = values
            must_fail = name
    write_tree(path, columns)
    if damage in ("truncate", "flip"):
        data = bytearray(path.read_bytes())
        if damage == "truncate":
            data = data[:int(len(data) * draw(st.floats(0.0, 0.99)))]
        else:
            for _ in range(draw(st.integers(1, 8))):
                position = draw(st.integers(0, len(data) - 1))
                data[position] ^= 1 << draw(st.integers(0, 7))
        path.write_bytes(bytes(data))
    return must_fail


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory):
    from gnnjets import Embedder
    from gnnjets.checkpoint import save_checkpoint
    from gnnjets.config import config_from_dict
    from gnnjets.nn.model import build_model

    config = config_from_dict({"data": {"train": ["data/qg_small.root"]},
                               "model": {"backbone": {"hidden": 8, "layers": 1, "embedding_dim": 8},
                                         "projection_dim": 8, "projection_hidden": 8}})
    path = save_checkpoint(tmp_path_factory.mktemp("fuzz") / "tiny.pt",
                           {"config": config.to_dict(), "model": build_model(config.model, seed=0).state_dict()})
    return Embedder.from_checkpoint(path, device="cpu")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(damage=st.sampled_from(DAMAGES), data=st.data())
def test_fuzzed_files_give_correct_output_or_a_documented_error(clean_file, tmp_path, tiny_embedder, damage, data):
    path = tmp_path / f"fuzz_{damage}.root"
    must_fail = damaged_file(path, clean_file, damage, data.draw)
    entry_points = {
        "read_all": lambda: read_all(path),
        "embed_file": lambda: tiny_embedder.embed_file(path),
        "iter_embed": lambda: list(tiny_embedder.iter_embed(path, step_size=7)),
    }
    for name, call in entry_points.items():
        try:
            with warnings.catch_warnings():  # a jet left without cells and tracks is a documented warning
                warnings.simplefilter("ignore", EmptyJetsWarning)
                result = call()
        except GnnjetsError as error:
            assert "\n" not in str(error), name
            continue
        except Exception as error:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name} on a file with damage {damage!r} raised {type(error).__name__}: {error}")
        reads = schema.BRANCH_NAMES if name == "read_all" else GRAPH_BRANCHES
        assert must_fail not in reads, f"{name} read a file with damage {damage!r} in {must_fail} without a word"
        if name == "read_all":
            assert len(result) == 24
        elif name == "embed_file":
            h, ids = result
            assert h.shape == (24, tiny_embedder.dim) and np.array_equal(ids["entry"], np.arange(24))


def test_invalid_value_errors_are_value_errors():
    assert issubclass(OutOfRangeValueError, InvalidValueError) and issubclass(NonFiniteValueError, ValueError)
