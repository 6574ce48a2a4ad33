"""The ROOT file contract shared by the writer (``detector_sim``) and the reader (``gnnjets.io``).

One TTree ``jets``, one entry per jet *replica*; the replicas of one jet are adjacent entries
(replica 0, 1, ..., R-1). Units: energies and momenta in GeV, angles in radians, lengths in mm.

Jagged branches come in groups that share one counter branch (``ncell``, ``ntrack``,
``nparticle``), the layout uproot writes for a record of lists: ``cell_e`` and ``cell_eta`` are
the fields ``e`` and ``eta`` of the collection ``cell``.

Provenance (the resolved simulation config, seeds, package versions, jet counts) is stored as a
JSON string in the ``TObjString`` named :data:`PROVENANCE_KEY` next to the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TREE_NAME = "jets"
PROVENANCE_KEY = "provenance"
SCHEMA_VERSION = 1
N_CALO_LAYERS = 6


@dataclass(frozen=True)
class Field:
    """One branch: its name in the file, numpy dtype, unit and meaning."""

    name: str
    dtype: str
    unit: str
    doc: str


ID_FIELDS = (
    Field("event_id", "int64", "", "index of the generated event (global, independent of sharding)"),
    Field("jet_index", "int32", "", "index of the truth jet within its event (pT ordered)"),
    Field("replica", "int32", "", "detector replica index 0..R-1; replicas of one jet are adjacent"),
    Field("sim_seed", "int64", "", "base seed of the simulation; (sim_seed, event_id, replica) fixes every draw"),
)

TRUTH_FIELDS = (
    Field("truth_pt", "float32", "GeV", "particle-level jet transverse momentum"),
    Field("truth_eta", "float32", "", "particle-level jet pseudorapidity"),
    Field("truth_phi", "float32", "rad", "particle-level jet azimuth in (-pi, pi]"),
    Field("truth_e", "float32", "GeV", "particle-level jet energy"),
    Field("truth_m", "float32", "GeV", "particle-level jet mass"),
    Field("label", "int32", "", "qg: quark=1, gluon=0; top/qcd: top=1, qcd=0"),
    Field("parton_pdgid", "int32", "", "PDG id of the matched hard parton (6 for top jets, 0 if none)"),
)

RECO_FIELDS = (
    Field("jet_pt", "float32", "GeV", "reconstructed (topocluster anti-kT) jet pT at the EM scale"),
    Field("jet_eta", "float32", "", "reconstructed jet pseudorapidity"),
    Field("jet_phi", "float32", "rad", "reconstructed jet azimuth"),
    Field("jet_e", "float32", "GeV", "reconstructed jet energy at the EM scale"),
    Field("jet_m", "float32", "GeV", "reconstructed jet mass at the EM scale"),
)

CELL_FIELDS = (
    Field("cell_e", "float32", "GeV", "cell energy at the EM scale, noise included (may be negative)"),
    Field("cell_eta", "float32", "", "cell centre pseudorapidity"),
    Field("cell_phi", "float32", "rad", "cell centre azimuth"),
    Field("cell_layer", "int32", "", "calorimeter layer 0..5 (ECAL1, ECAL2, ECAL3, HCAL1, HCAL2, HCAL3)"),
    Field("cell_sigma", "float32", "GeV", "electronic noise sigma of the cell"),
    Field("cell_topo_idx", "int32", "", "index of the cell's topocluster within the jet"),
)

TRACK_FIELDS = (
    Field("track_pt", "float32", "GeV", "reconstructed track transverse momentum"),
    Field("track_eta", "float32", "", "track pseudorapidity at the perigee"),
    Field("track_phi", "float32", "rad", "track azimuth at the perigee"),
    Field("track_charge", "int32", "e", "track charge (+1 or -1)"),
    Field("track_d0", "float32", "mm", "transverse impact parameter"),
    Field("track_z0", "float32", "mm", "longitudinal impact parameter"),
) + tuple(
    Field(f"track_{coord}_layer{layer}", "float32", "rad" if coord == "phi" else "",
          f"track {coord} extrapolated to the middle of calorimeter layer {layer}")
    for layer in range(N_CALO_LAYERS)
    for coord in ("eta", "phi")
)

PARTICLE_FIELDS = (
    Field("particle_pt", "float32", "GeV", "truth constituent pT"),
    Field("particle_eta", "float32", "", "truth constituent pseudorapidity"),
    Field("particle_phi", "float32", "rad", "truth constituent azimuth"),
    Field("particle_e", "float32", "GeV", "truth constituent energy"),
    Field("particle_pdgid", "int32", "", "truth constituent PDG id"),
)

SCALAR_FIELDS = ID_FIELDS + TRUTH_FIELDS + RECO_FIELDS

#: jagged collections: prefix -> (counter branch, fields)
COLLECTIONS = {
    "cell": ("ncell", CELL_FIELDS),
    "track": ("ntrack", TRACK_FIELDS),
    "particle": ("nparticle", PARTICLE_FIELDS),
}

ALL_FIELDS = SCALAR_FIELDS + CELL_FIELDS + TRACK_FIELDS + PARTICLE_FIELDS
FIELDS_BY_NAME = {field.name: field for field in ALL_FIELDS}
BRANCH_NAMES = tuple(field.name for field in ALL_FIELDS)


def dtype_of(name: str) -> np.dtype:
    """The numpy dtype of branch ``name``."""
    try:
        return np.dtype(FIELDS_BY_NAME[name].dtype)
    except KeyError:
        raise KeyError(f"{name!r} is not a branch of the gnnjets schema") from None


def collection_of(name: str) -> str | None:
    """``'cell'`` for ``'cell_e'``, ``None`` for a per-jet scalar branch."""
    for prefix, (_, fields) in COLLECTIONS.items():
        if any(field.name == name for field in fields):
            return prefix
    return None
