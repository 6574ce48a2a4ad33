"""Foreign files through YAML branch mappings: identity, COCOA (per event, MeV, perigee tracks), custom."""

from __future__ import annotations

import re
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from conftest import write_synthetic_jets
from detector_sim import geometry
from gnnjets.base import kinematics
from gnnjets.base.kinematics import perigee_to_pt_eta_charge, wrap_phi
from gnnjets.io import (MappingError, MissingBranchError, MissingTreeError, NonFiniteValueError, count_entries,
                        read_all, read_jets, schema)
from gnnjets.io.assign import assign_within_delta_r
from gnnjets.io.mapping import IDENTITY, load_mapping, mapping_from_dict, shipped_mappings
from gnnjets.io.plan import track_at_radius


def theta_of(eta):
    return 2 * np.arctan(np.exp(-np.asarray(eta, dtype=np.float64)))


#: two COCOA events with hand-placed objects (energies in MeV, q/p in 1/MeV)
COCOA_EVENTS = [
    dict(  # event 0: a jet near phi = +pi, one at (1, -1); cells wrap around phi = pi
        topo_jet=dict(pt=[100e3, 50e3], eta=[0.0, 1.0], phi=[3.0, -1.0], m=[10e3, 5e3]),
        cell=dict(e=[1000.0, 2000.0, 3000.0, 4000.0], eta=[0.1, 1.2, -2.0, 0.0],
                  phi=[-3.1, -1.1, 0.0, 2.7], layer=[0, 3, 1, 5], topo_idx=[0, 1, 2, 0]),
        track=dict(qoverp=[1 / 10e3, -1 / 5e3], theta=theta_of([0.05, 1.1]), phi=[3.1, -0.95],
                   d0=[0.01, -0.02], z0=[0.5, -0.5]),
    ),
    dict(  # event 1: one jet; cells at Delta R 0.39 (in) and 0.41 (out)
        topo_jet=dict(pt=[200e3], eta=[-0.5], phi=[0.0], m=[20e3]),
        cell=dict(e=[500.0, 600.0], eta=[-0.5 + 0.39, -0.5 - 0.41], phi=[0.0, 0.0], layer=[2, 4], topo_idx=[3, 4]),
        track=dict(qoverp=[], theta=[], phi=[], d0=[], z0=[]),
    ),
]


def write_cocoa_file(path, events=COCOA_EVENTS):
    """A file in COCOA's layout: TTree Out_Tree, one entry per event, jagged per-event collections."""
    groups = {}
    for group in ("topo_jet", "cell", "track"):
        fields = events[0][group].keys()
        dtypes = {"layer": np.int32, "topo_idx": np.int32}
        groups[group] = ak.zip({name: ak.Array([np.asarray(event[group][name], dtype=dtypes.get(name, np.float32))
                                                for event in events]) for name in fields})
    with uproot.recreate(path) as file:
        file.mktree("Out_Tree", {group: array.type.content for group, array in groups.items()})
        file["Out_Tree"].extend(groups)
    return path


def test_shipped_identity_mapping_is_the_default(synthetic_jets_file):
    assert "gnnjets" in shipped_mappings() and "cocoa" in shipped_mappings()
    assert load_mapping("gnnjets").is_identity and load_mapping(None) is IDENTITY
    assert ak.to_list(read_all(synthetic_jets_file, mapping="gnnjets")) == ak.to_list(read_all(synthetic_jets_file))


def test_cocoa_constants_match_the_simulated_geometry():
    cocoa = load_mapping("cocoa")
    assert cocoa.b_field_t == geometry.B_FIELD_T and cocoa.calo_front_mm == geometry.CALO_FRONT_MM
    np.testing.assert_allclose(cocoa.cell_sigma_per_layer, geometry.NOISE_GEV)
    np.testing.assert_allclose(cocoa.layer_radius_mm, geometry.R_MID_MM)


def test_cocoa_assigns_cells_and_tracks_by_delta_r(tmp_path):
    path = write_cocoa_file(tmp_path / "cocoa.root")
    jets = read_all(path, mapping="cocoa")
    assert jets.fields == list(schema.BRANCH_NAMES) + ["source_file_index", "entry"]
    assert len(jets) == 3 and count_entries(path, mapping="cocoa") == 3
    assert jets.entry.tolist() == [0, 0, 1] and jets.event_id.tolist() == [0, 0, 1]
    assert jets.jet_index.tolist() == [0, 1, 0] and jets.replica.tolist() == [0, 0, 0]
    # jet 0 (phi 3.0): the cell at phi -3.1 is at Delta phi 0.18 through the wrap, the one at 2.7 at 0.3
    np.testing.assert_allclose(jets.cell_e[0].tolist(), [1.0, 4.0])  # MeV -> GeV
    np.testing.assert_allclose(jets.cell_e[1].tolist(), [2.0])
    np.testing.assert_allclose(jets.cell_e[2].tolist(), [0.5])  # Delta R 0.39 in, 0.41 out
    assert jets.cell_layer.tolist() == [[0, 5], [3], [2]]
    assert jets.cell_topo_idx.tolist() == [[0, 0], [1], [3]]
    np.testing.assert_allclose(jets.cell_sigma[0].tolist(), [0.013, 0.025], rtol=1e-6)
    np.testing.assert_allclose(jets.jet_pt.tolist(), [100.0, 50.0, 200.0])
    np.testing.assert_allclose(jets.jet_m.tolist(), [10.0, 5.0, 20.0])
    np.testing.assert_allclose(jets.jet_e.tolist(), np.hypot([100.0, 50 * np.cosh(1.0), 200 * np.cosh(0.5)],
                                                             [10.0, 5.0, 20.0]), rtol=1e-6)
    # tracks: q/p [1/MeV] -> pt = |1/(q/p)| sin(theta) in GeV, charge = sign, eta from theta
    assert ak.num(jets.track_pt).tolist() == [1, 1, 0]
    np.testing.assert_allclose(jets.track_pt[0].tolist(), [10.0 * np.sin(theta_of(0.05))], rtol=1e-5)
    np.testing.assert_allclose(jets.track_pt[1].tolist(), [5.0 * np.sin(theta_of(1.1))], rtol=1e-5)
    np.testing.assert_allclose(ak.flatten(jets.track_eta).tolist(), [0.05, 1.1], atol=1e-5)
    assert jets.track_charge.tolist() == [[1], [-1], []]
    np.testing.assert_allclose(ak.flatten(jets.track_d0).tolist(), [0.01, -0.02], rtol=1e-6)
    # filled: truth copies reco, label unknown, no particles
    assert jets.truth_pt.tolist() == jets.jet_pt.tolist() and jets.label.tolist() == [-1, -1, -1]
    assert ak.num(jets.particle_pt).tolist() == [0, 0, 0]
    # extrapolated track positions follow the simulation's helix-then-straight-line extrapolation
    eta3, phi3 = kinematics.calo_eta_phi_at_radius(
        ak.flatten(jets.track_pt).to_numpy(), ak.flatten(jets.track_eta).to_numpy(),
        ak.flatten(jets.track_phi).to_numpy(), ak.flatten(jets.track_charge).to_numpy(), geometry.R_MID_MM[3])
    np.testing.assert_allclose(ak.flatten(jets.track_eta_layer3).tolist(), eta3, atol=1e-5)
    np.testing.assert_allclose(ak.flatten(jets.track_phi_layer3).tolist(), phi3, atol=1e-5)


def test_cocoa_chunks_subsets_and_min_pt(tmp_path):
    path = write_cocoa_file(tmp_path / "cocoa.root")
    chunks = list(read_jets(path, mapping="cocoa", step_size=1))  # one event per chunk
    assert [len(chunk) for chunk in chunks] == [2, 1]
    subset = read_all(path, mapping="cocoa", branches=["cell_sigma", "track_pt"])
    assert subset.fields == ["cell_sigma", "track_pt", "source_file_index", "entry"]
    assert ak.num(subset.cell_sigma).tolist() == [2, 1, 1]
    mapping = load_mapping("cocoa")
    hard = mapping_from_dict({**yaml.safe_load(Path(mapping.source).read_text()), "jet_min_pt": 150.0}, name="hard")
    jets = read_all(path, mapping=hard)
    assert jets.jet_index.tolist() == [0] and jets.entry.tolist() == [1]
    assert count_entries(path, mapping=hard) == 1


def test_cocoa_zero_qoverp_names_file_event_and_jet(tmp_path):
    events = [dict(COCOA_EVENTS[0], track=dict(COCOA_EVENTS[0]["track"], qoverp=[1e-4, 0.0]))]
    path = write_cocoa_file(tmp_path / "inf.root", events)
    with pytest.raises(NonFiniteValueError) as error:
        read_all(path, mapping="cocoa")
    message = str(error.value)
    assert f"{path}:Out_Tree entry 0" in message and "'track_pt'" in message and "inf" in message
    assert "jet_index 1" in message


def test_custom_per_event_mapping_with_mev_factors(tmp_path):
    """Tracks as (pt, eta, phi) in MeV, an event number broadcast to its jets, particles cut by Delta R."""
    path = tmp_path / "events.root"
    events = dict(
        evt=np.array([17, 42], dtype=np.int64),
        jet=ak.zip({"pt": [[30e3, 80e3], [60e3]], "eta": [[0.0, 2.0], [-1.0]], "phi": [[0.0, 1.0], [-2.0]]}),
        clu=ak.zip({"e": [[1e3, 2e3], [3e3]], "eta": [[0.1, 2.1], [-1.1]], "phi": [[0.1, 0.9], [-2.1]],
                    "lay": ak.values_astype(ak.Array([[1, 2], [3]]), np.int32)}),
        trk=ak.zip({"pt": [[5e3], [7e3, 9e3]], "eta": [[1.95], [-1.0, 1.0]], "phi": [[1.0], [-2.0, 0.0]],
                    "q": ak.values_astype(ak.Array([[-1], [1, 1]]), np.int32)}),
        gen=ak.zip({"pt": [[], [6e3]], "eta": [[], [-0.9]], "phi": [[], [-1.9]], "e": [[], [6.5e3]]}),
    )
    with uproot.recreate(path) as file:
        file.mktree("events", {name: ak.Array(array).type.content if not isinstance(array, np.ndarray) else array.dtype
                               for name, array in events.items()})
        file["events"].extend(events)
    mapping_path = tmp_path / "custom.yaml"
    names = {"jet_pt": "jet_pt", "jet_eta": "jet_eta", "jet_phi": "jet_phi", "event_id": "evt",
             "cell_e": "clu_e", "cell_eta": "clu_eta", "cell_phi": "clu_phi", "cell_layer": "clu_lay",
             "track_pt": "trk_pt", "track_eta": "trk_eta", "track_phi": "trk_phi", "track_charge": "trk_q",
             "particle_pt": "gen_pt", "particle_eta": "gen_eta", "particle_phi": "gen_phi", "particle_e": "gen_e"}
    mapping_path.write_text(yaml.safe_dump({
        "tree": "events", "layout": "events", "jet_radius": 0.3, "branches": names,
        "units": {"jet_pt": 1e-3, "cell_e": 1e-3, "track_pt": 1e-3, "particle_pt": 1e-3, "particle_e": 1e-3},
        "fill": {"label": 1, "sim_seed": 7}}))
    jets = read_all(path, mapping=mapping_path)
    assert jets.event_id.tolist() == [17, 17, 42] and jets.entry.tolist() == [0, 0, 1]
    assert jets.label.tolist() == [1, 1, 1] and jets.sim_seed.tolist() == [7, 7, 7]
    np.testing.assert_allclose(jets.jet_pt.tolist(), [30.0, 80.0, 60.0])
    assert jets.cell_e.tolist() == [[1.0], [2.0], [3.0]]
    assert jets.cell_layer.tolist() == [[1], [2], [3]]
    np.testing.assert_allclose(jets.cell_sigma.tolist(), [[0.034], [0.041], [0.075]], rtol=1e-6)
    assert jets.track_pt.tolist() == [[], [5.0], [7.0]]  # the track at (1, 0) of event 1 is near no jet
    assert jets.track_charge.tolist() == [[], [-1], [1]]
    assert jets.particle_pt.tolist() == [[], [], [6.0]] and jets.particle_pdgid.tolist() == [[], [], [0]]
    assert jets.jet_m.tolist() == [0.0, 0.0, 0.0] and jets.cell_topo_idx.tolist() == [[-1], [-1], [-1]]


def test_per_jet_foreign_file_with_renames(tmp_path, synthetic_jets_file):
    """A per-jet file with other names and MeV energies reads back to our file's values."""
    raw = uproot.open(synthetic_jets_file)["jets"].arrays(library="ak")
    renamed = {"jet_pt": "JetPt", "cell_e": "CellEnergy"}
    path = tmp_path / "foreign.root"
    columns = {renamed.get(name, name): raw[name] * (1e3 if name in renamed else 1) for name in schema.BRANCH_NAMES}
    with uproot.recreate(path) as file:
        file.mktree("T", {name: column.type.content for name, column in columns.items()})
        file["T"].extend(columns)
    mapping = mapping_from_dict({"tree": "T", "branches": renamed, "units": {"jet_pt": 1e-3, "cell_e": 1e-3}})
    jets = read_all(path, mapping=mapping)
    ours = read_all(synthetic_jets_file)
    np.testing.assert_allclose(jets.jet_pt.to_numpy(), ours.jet_pt.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ak.flatten(jets.cell_e).to_numpy(), ak.flatten(ours.cell_e).to_numpy(), rtol=1e-6)
    assert ak.to_list(jets.track_eta_layer2) == ak.to_list(ours.track_eta_layer2)
    # a wrong foreign name: file, close match and the fix
    broken = mapping_from_dict({"tree": "T", "branches": {"jet_pt": "JetPT"}}, name="broken")
    with pytest.raises(MissingBranchError) as error:
        read_jets(path, mapping=broken)
    message = str(error.value)
    assert "no branch 'JetPT' (schema branch 'jet_pt'" in message and f"{path}:T" in message
    assert "did you mean 'JetPt'?" in message


def test_mapping_errors_suggest_close_matches(tmp_path):
    with pytest.raises(MappingError, match="unknown key 'branchs'; did you mean 'branches'?"):
        mapping_from_dict({"branchs": {}})
    with pytest.raises(MappingError, match="'cell_en' is not a schema branch; did you mean 'cell_e'?"):
        mapping_from_dict({"branches": {"cell_en": "x"}})
    with pytest.raises(MappingError, match="'layout' must be one of jets, events, not 'event'; did you mean 'events'?"):
        mapping_from_dict({"layout": "event"})
    with pytest.raises(MappingError, match="'cell_layer' is an integer branch"):
        mapping_from_dict({"units": {"cell_layer": 2}})
    with pytest.raises(MappingError, match="'jet_radius' must be > 0"):
        mapping_from_dict({"layout": "events", "jet_radius": 0})
    with pytest.raises(MappingError, match="track_perigee: unknown key 'theat'; did you mean 'theta'?"):
        mapping_from_dict({"track_perigee": {"qoverp": "a", "theat": "b"}})
    with pytest.raises(MappingError, match="'cell_sigma_per_layer' must be a list of 6"):
        mapping_from_dict({"cell_sigma_per_layer": [1, 2]})
    with pytest.raises(MappingError, match="mapping 'cocao' is neither a YAML file nor a shipped mapping; "
                                           "did you mean 'cocoa'?"):
        load_mapping("cocao")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tree: [unclosed")
    with pytest.raises(MappingError, match="bad.yaml: not valid YAML"):
        load_mapping(bad)


def test_perigee_conversion_closed_forms():
    pt, eta, charge = perigee_to_pt_eta_charge([0.1, -0.05], [np.pi / 2, theta_of(2.0)])
    np.testing.assert_allclose(pt, [10.0, 20.0 * np.sin(theta_of(2.0))])
    np.testing.assert_allclose(eta, [0.0, 2.0], atol=1e-12)
    assert charge.tolist() == [1, -1]


def test_track_extrapolation_matches_simulation_and_stays_finite():
    pt = np.array([0.5, 2.0, 20.0, 5.0])
    eta, phi, charge = np.array([0.3, -1.0, 2.0, 0.5]), np.array([3.1, -3.1, 0.0, 1.0]), np.array([1, -1, 1, 0])
    got_eta, got_phi = track_at_radius(pt, eta, phi, charge, 3198.0, 3.8, 1500.0)
    want_eta, want_phi = kinematics.calo_eta_phi_at_radius(pt, eta, phi, charge, 3198.0)
    reach = np.isfinite(want_eta)
    assert reach.tolist() == [False, True, True, True]
    np.testing.assert_allclose(got_eta[reach], want_eta[reach], atol=1e-12)
    np.testing.assert_allclose(wrap_phi(got_phi[reach] - want_phi[reach]), 0, atol=1e-12)
    assert (got_eta[0], got_phi[0]) == (0.3, 3.1)  # curls up before the layer: perigee direction


def test_delta_r_assignment_wraps_phi_and_respects_budget():
    jet_eta, jet_phi = np.array([0.0, 0.0, 1.0]), np.array([3.1, 0.0, -3.1])
    obj_eta = np.array([0.0, 0.0, 0.0, 1.0, 5.0])
    obj_phi = np.array([-3.1, 0.2, 3.0, 3.1, 0.0])
    per_event = dict(jets_per_event=[2, 1], objs_per_event=[3, 2])
    full = assign_within_delta_r(jet_eta, jet_phi, per_event["jets_per_event"], obj_eta, obj_phi,
                                 per_event["objs_per_event"], 0.4)
    assert full[0].tolist() == [0, 2, 1, 3] and full[1].tolist() == [2, 1, 1]
    for budget in (1, 2, 5):
        sliced = assign_within_delta_r(jet_eta, jet_phi, per_event["jets_per_event"], obj_eta, obj_phi,
                                       per_event["objs_per_event"], 0.4, pair_budget=budget)
        assert [part.tolist() for part in sliced] == [part.tolist() for part in full]


def test_cocoa_file_read_without_mapping_points_to_it(tmp_path):
    path = write_cocoa_file(tmp_path / "cocoa.root")
    with pytest.raises(MissingTreeError, match="trees in the file: Out_Tree. Pass tree='Out_Tree', or mapping=<yaml>"):
        read_jets(path)


def test_per_event_mapping_needs_jet_axis(tmp_path):
    path = write_cocoa_file(tmp_path / "cocoa.root")
    mapping = mapping_from_dict({"tree": "Out_Tree", "layout": "events", "branches": {"jet_pt": "topo_jet_pt"}})
    with pytest.raises(MissingBranchError, match="no branch 'jet_eta'.*It is never filled in"):
        read_jets(path, mapping=mapping)


def test_identity_mapping_on_synthetic_files_keeps_every_field(tmp_path):
    path = write_synthetic_jets(tmp_path / "x.root", n_jets=2)
    assert count_entries(path, mapping="gnnjets") == 4


def test_cocoa_nan_direction_is_reported_not_dropped(tmp_path):
    events = [COCOA_EVENTS[1], dict(COCOA_EVENTS[0], cell=dict(COCOA_EVENTS[0]["cell"], eta=[0.1, np.nan, 0, 0]))]
    path = write_cocoa_file(tmp_path / "nan.root", events)
    with pytest.raises(NonFiniteValueError, match=f"nan in 'cell_eta' .* at {re.escape(str(path))}:Out_Tree entry 1"):
        read_all(path, mapping="cocoa")


def test_cocoa_truth_jets_give_truth_and_labels_and_the_dropped_energy_is_reported(tmp_path, caplog):
    """Issue case 9: the file's own truth jets are read; the Delta R selection's losses are counted."""
    events = [dict(event, true_jet=truth) for event, truth in zip(COCOA_EVENTS, [
        dict(pt=[90e3, 45e3, 10e3], eta=[0.05, 1.02, -2.0], phi=[3.05, -1.01, 0.0], m=[8e3, 4e3, 1e3],
             truth_id=[21, 2, 1]),  # gluon near jet 0 (through the phi wrap), quark near jet 1
        dict(pt=[150e3], eta=[1.5], phi=[0.0], m=[15e3], truth_id=[1]),  # nothing within 0.2 of jet 0
    ])]
    path = tmp_path / "cocoa_truth.root"
    groups = {}
    for group in ("topo_jet", "cell", "track", "true_jet"):
        dtypes = {"layer": np.int32, "topo_idx": np.int32, "truth_id": np.int32}
        groups[group] = ak.zip({name: ak.Array([np.asarray(event[group][name], dtype=dtypes.get(name, np.float32))
                                                for event in events]) for name in events[0][group]})
    with uproot.recreate(path) as file:
        file.mktree("Out_Tree", {group: array.type.content for group, array in groups.items()})
        file["Out_Tree"].extend(groups)
    with caplog.at_level("INFO", logger="gnnjets.io.reader"):
        jets = read_all(path, mapping="cocoa")
    assert jets.label.tolist() == [0, 1, -1] and jets.parton_pdgid.tolist() == [21, 2, 0]
    np.testing.assert_allclose(jets.truth_pt.tolist(), [90.0, 45.0, 200.0])  # the last keeps reco: no match
    np.testing.assert_allclose(jets.truth_eta.tolist()[:2], [0.05, 1.02], rtol=1e-6)
    np.testing.assert_allclose(jets.truth_e.tolist()[0], np.hypot(90 * np.cosh(0.05), 8.0), rtol=1e-5)
    # cells outside every jet: event 0's cell at eta -2 (3 GeV), event 1's at Delta R 0.41 (0.6 GeV)
    chunks = read_jets(path, mapping="cocoa")
    list(chunks)
    assert chunks.selection["cells"] == 6 and chunks.selection["cells_dropped"] == 2
    assert chunks.selection["cell_energy_dropped_gev"] == pytest.approx(3.6)
    assert "dropped 2 of 6 cells, 3.6 of 11.1 GeV (32.4% of the cell energy)" in caplog.text
