"""Read files written by others: a YAML branch mapping from a foreign layout to the gnnjets schema.

A mapping (``configs/schemas/<name>.yaml``) says where each schema branch of
:mod:`gnnjets.io.schema` comes from; :func:`load_mapping` reads and validates it, and
:meth:`BranchMapping.plan` turns it, for one file's list of branches, into a
:class:`~gnnjets.io.plan.ReadPlan` that converts chunks of foreign arrays into schema columns
(:mod:`gnnjets.io.plan`; per-event layouts are cut into jets by :mod:`gnnjets.io.assign`). Keys (all optional):

``tree``
    name of the TTree (default ``jets``).
``layout``
    ``jets``: one entry per jet (replica), like our own files. ``events``: one entry per event
    holding a jet collection and per-event cells, tracks (and optionally particles); each jet
    becomes one record whose cells/tracks/particles are those within ``Delta R < jet_radius`` of
    the jet axis (Delta phi wrapped; a cell near two jets goes to both), ``replica = 0``.
``branches``
    ``schema name: foreign branch``. A schema branch not listed is looked up under its own name.
    In the ``events`` layout, a per-jet scalar (``jet_pt``...) maps to a per-event list parallel
    to the jet collection, or to a per-event scalar that all jets of the event share.
``units``
    ``schema name: factor``; schema value = factor x foreign value (MeV -> GeV: ``1.0e-3``).
``fill``
    ``schema name: constant`` for branches the file lacks (``label: 1`` for an all-quark sample).
``fill_missing``
    give absent branches the default fill below instead of failing (default: false for ``jets``,
    true for ``events``).
``jet_radius``, ``jet_min_pt``
    ``events`` layout: the cone radius of the cell/track assignment (0.4) and the minimum jet pT
    in GeV after unit conversion (0: every jet of the collection).
``track_perigee``
    ``{qoverp: branch, theta: branch, qoverp_factor: f}``: tracks stored as perigee parameters;
    ``q/p [1/GeV] = f x foreign q/p`` (``f = 1000`` for q/p in 1/MeV), then
    ``pt = |1/(q/p)| sin(theta)``, ``charge = sign(q/p)``, ``eta = -ln tan(theta/2)``.
``cell_sigma_per_layer``, ``layer_radius_mm``, ``calo_front_mm``, ``b_field_t``
    the per-layer cell noise [GeV], the radii [mm] of the layer middles, the radius of the
    calorimeter front [mm] and the solenoid field [T]
    used by the default fills (the COCOA geometry of :mod:`gnnjets.base.detector`).
``truth_jets``
    ``layout: events``: the file's own particle-level jets, ``{pt, eta, phi, m, pdgid: branch,
    match_radius: R}`` (``m`` and ``pdgid`` optional). Each reco jet takes the nearest truth jet
    within ``Delta R < match_radius`` (default 0.2): ``truth_*`` from it, ``parton_pdgid`` its
    matched parton and ``label`` 1 for a quark (|pdgid| 1-5), 0 for a gluon (21), -1 otherwise.
    Used when the file has the branches; reco jets without a match keep the default fills below.
``limits``
    ``schema name: [low, high]``: widen (or narrow) the physical range a value must lie in
    (:data:`gnnjets.io.schema.LIMITS`: energies within the beam energy, ...).
``description``
    free text.

Default fills (when ``fill_missing`` and the file lacks a branch) keep every value finite, so the
reader's NaN check still means a broken file:

=================================  ===========================================================
``event_id``                       the entry number of the event within its file
``jet_index``                      index of the jet in the event's collection (0 for ``jets``)
``replica`` / ``sim_seed``         0 / -1
``truth_pt/eta/phi/e/m``           copies of ``jet_*``: no (matched) truth jet in the file
                                   (``label`` -1 says so)
``label`` / ``parton_pdgid``       -1 (unknown) / 0 (none)
``jet_e`` / ``jet_m``              ``sqrt((pt cosh eta)^2 + m^2)`` / 0
``cell_sigma``                     ``cell_sigma_per_layer[cell_layer]``
``cell_topo_idx``                  -1 (not known)
``track_charge``                   0 (unknown), unless ``track_perigee`` gives it
``track_d0`` / ``track_z0``        0
``track_{eta,phi}_layerN``         the helix from the origin (``b_field_t``) up to the
                                   calorimeter front (``calo_front_mm``), then a straight
                                   line to ``layer_radius_mm[N]``, as the simulation
                                   extrapolates; tracks that curl up before the front, and
                                   neutral/unknown charge, keep the perigee direction
``particle_*``                     empty lists when the file has no particle branch
=================================  ===========================================================

Never filled (an absent one is an error): ``jet_pt/eta/phi``, ``cell_e/eta/phi/layer``,
``track_pt/eta/phi`` of files that have tracks, ``particle_pt/eta/phi/e`` of files with particles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from gnnjets.base.checks import is_number
from gnnjets.base.detector import B_FIELD_T, CALO_FRONT_MM, NOISE_GEV, R_MID_MM
from gnnjets.base.hints import close_matches
from gnnjets.base.resources import config_root, shipped_config, shipped_configs
from gnnjets.io import schema
from gnnjets.io.errors import MappingError

if TYPE_CHECKING:
    from gnnjets.io.plan import ReadPlan

#: folder of the shipped mappings (``mapping="cocoa"`` means ``SCHEMA_DIR / "cocoa.yaml"``), in a clone or a wheel
SCHEMA_DIR = config_root() / "schemas"

LAYOUTS = ("jets", "events")
ALLOWED_KEYS = ("tree", "layout", "branches", "units", "fill", "fill_missing", "jet_radius", "jet_min_pt",
                "track_perigee", "truth_jets", "cell_sigma_per_layer", "layer_radius_mm", "calo_front_mm",
                "b_field_t", "limits", "description")
PERIGEE_KEYS = ("qoverp", "theta", "qoverp_factor")
TRUTH_JET_KEYS = ("pt", "eta", "phi", "m", "pdgid", "match_radius")
PERIGEE_FIELDS = ("track_pt", "track_eta", "track_charge")


@dataclass(frozen=True)
class TrackPerigee:
    """Tracks stored as perigee parameters instead of (pt, eta, charge)."""

    qoverp: str  # foreign branch of q/p
    theta: str  # foreign branch of the polar angle [rad]
    qoverp_factor: float = 1.0  # q/p [1/GeV] = factor x foreign q/p; 1000 when the file has 1/MeV


@dataclass(frozen=True)
class TruthJets:
    """A per-event file's own particle-level jets, matched to the reco jets by Delta R."""

    pt: str  # foreign branches: per-event lists of the truth jets (same units as jet_pt)
    eta: str
    phi: str
    m: str | None = None
    pdgid: str | None = None  # |PDG id| of the parton matched to the truth jet (0: none)
    match_radius: float = 0.2  # a reco jet takes the nearest truth jet within this Delta R

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(name for name in (self.pt, self.eta, self.phi, self.m, self.pdgid) if name)


@dataclass(frozen=True)
class BranchMapping:
    """Where each schema branch comes from in a foreign file; see the module docstring for the keys."""

    name: str = "gnnjets"  # what error messages call the mapping (the YAML file's stem)
    tree: str = schema.TREE_NAME
    layout: str = "jets"  # "jets": entry = jet replica; "events": entry = event with a jet collection
    branches: dict = field(default_factory=dict)  # schema name -> foreign branch; unlisted: same name
    units: dict = field(default_factory=dict)  # schema name -> factor to GeV / rad / mm
    fill: dict = field(default_factory=dict)  # schema name -> constant for branches the file lacks
    fill_missing: bool = False  # default fills for absent branches; our own files must be complete
    jet_radius: float = 0.4  # the anti-kT R of COCOA's and our jets
    jet_min_pt: float = 0.0  # GeV; 0 keeps every jet of the collection
    track_perigee: TrackPerigee | None = None
    truth_jets: TruthJets | None = None
    limits: dict = field(default_factory=dict)  # schema name -> (low, high), over schema.LIMITS
    cell_sigma_per_layer: tuple = NOISE_GEV  # GeV, fills cell_sigma
    layer_radius_mm: tuple = R_MID_MM  # fills track_{eta,phi}_layerN
    calo_front_mm: float = CALO_FRONT_MM  # where the tracks' helix ends and straight lines begin
    b_field_t: float = B_FIELD_T
    description: str = ""
    source: str = "<built-in>"  # the YAML file it came from

    @property
    def is_identity(self) -> bool:
        """True for our own layout: every schema branch read under its own name, nothing converted."""
        return (self.layout == "jets" and not self.branches and not self.units and not self.fill
                and not self.fill_missing and self.track_perigee is None and self.truth_jets is None)

    def limit(self, name: str) -> tuple[float, float] | None:
        """The physical range of schema branch ``name`` (the mapping's, else the schema's), or ``None``."""
        return self.limits.get(name, schema.LIMITS.get(name))

    def foreign_name(self, name: str) -> str:
        """The branch in the file that holds schema branch ``name``."""
        return self.branches.get(name, name)

    def plan(self, available, wanted, where: str) -> ReadPlan:
        """How to produce the schema branches ``wanted`` from a tree with branches ``available``.

        ``where`` (``"data/x.root:jets"``) names the tree in error messages. Raises
        :class:`MissingBranchError` when a needed branch is absent and cannot be filled.
        """
        from gnnjets.io.plan import ReadPlan  # the plan needs the mapping; the mapping hands out plans

        return ReadPlan(self, frozenset(available), tuple(wanted), where)


IDENTITY = BranchMapping()


# --------------------------------------------------------------------------------------------- loading

def _fail(source, message):
    raise MappingError(f"{source}: {message}")


def _number(source, key, value, *, positive=False, allow_zero=True):
    if not is_number(value):
        _fail(source, f"{key!r} must be a finite number, not {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        _fail(source, f"{key!r} must be {'> 0' if not allow_zero else '>= 0'}, not {value!r}")
    return float(value)


def _schema_name(source, section, name):
    if name not in schema.FIELDS_BY_NAME:
        hint = close_matches(str(name), schema.BRANCH_NAMES, end="")
        _fail(source, f"{section}: {name!r} is not a schema branch{hint} "
                      f"(schema branches are listed in gnnjets/io/schema.py)")
    return name


def _section(source, data, key):
    value = data.get(key) or {}
    if not isinstance(value, dict):
        _fail(source, f"{key!r} must be a mapping 'schema name: value', not {value!r}")
    return value


def _per_layer(source, key, value):
    if (not isinstance(value, (list, tuple)) or len(value) != schema.N_CALO_LAYERS):
        _fail(source, f"{key!r} must be a list of {schema.N_CALO_LAYERS} numbers (one per layer), not {value!r}")
    return tuple(_number(source, key, v, positive=True, allow_zero=False) for v in value)


def mapping_from_dict(data: dict, *, name: str = "mapping", source: str = "<dict>") -> BranchMapping:
    """Validate a parsed YAML mapping; unknown keys and schema names fail with the close match."""
    if not isinstance(data, dict):
        _fail(source, f"a mapping file must hold a YAML mapping of keys ({', '.join(ALLOWED_KEYS)}), "
                      f"not {type(data).__name__}")
    for key in data:
        if key not in ALLOWED_KEYS:
            _fail(source, f"unknown key {key!r}{close_matches(str(key), ALLOWED_KEYS)} "
                          f"Allowed: {', '.join(ALLOWED_KEYS)}")
    kwargs = dict(name=name, source=source)
    if "tree" in data:
        if not isinstance(data["tree"], str) or not data["tree"]:
            _fail(source, f"'tree' must be a non-empty str, not {data['tree']!r}")
        kwargs["tree"] = data["tree"]
    layout = data.get("layout", "jets")
    if layout not in LAYOUTS:
        _fail(source, f"'layout' must be one of {', '.join(LAYOUTS)}, "
                      f"not {layout!r}{close_matches(str(layout), LAYOUTS, end='')}")
    kwargs["layout"] = layout
    branches = {}
    for key, value in _section(source, data, "branches").items():
        if not isinstance(value, str) or not value:
            _fail(source, f"branches: {key!r} must map to a foreign branch name (str), not {value!r}")
        branches[_schema_name(source, "branches", key)] = value
    kwargs["branches"] = branches
    units = {}
    for key, value in _section(source, data, "units").items():
        _schema_name(source, "units", key)
        if np.dtype(schema.FIELDS_BY_NAME[key].dtype).kind != "f":
            _fail(source, f"units: {key!r} is an integer branch; unit factors apply to float branches only")
        units[key] = _number(source, f"units: {key}", value)
        if units[key] == 0:
            _fail(source, f"units: {key!r} factor must not be 0")
    kwargs["units"] = units
    fill = {}
    for key, value in _section(source, data, "fill").items():
        fill[_schema_name(source, "fill", key)] = _number(source, f"fill: {key}", value)
        if np.dtype(schema.FIELDS_BY_NAME[key].dtype).kind == "i":
            if not float(value).is_integer():
                _fail(source, f"fill: {key!r} is an integer branch; fill it with an integer, not {value!r}")
            fill[key] = int(value)
    kwargs["fill"] = fill
    fill_missing = data.get("fill_missing", layout == "events")
    if not isinstance(fill_missing, bool):
        _fail(source, f"'fill_missing' must be true or false, not {fill_missing!r}")
    kwargs["fill_missing"] = fill_missing
    if "jet_radius" in data:
        kwargs["jet_radius"] = _number(source, "jet_radius", data["jet_radius"], positive=True, allow_zero=False)
    if "jet_min_pt" in data:
        kwargs["jet_min_pt"] = _number(source, "jet_min_pt", data["jet_min_pt"], positive=True)
    for key in ("b_field_t", "calo_front_mm"):
        if key in data:
            kwargs[key] = _number(source, key, data[key], positive=True)
    for key in ("cell_sigma_per_layer", "layer_radius_mm"):
        if key in data:
            kwargs[key] = _per_layer(source, key, data[key])
    if "description" in data:
        if not isinstance(data["description"], str):
            _fail(source, f"'description' must be a str, not {data['description']!r}")
        kwargs["description"] = data["description"]
    if data.get("track_perigee") is not None:
        perigee = data["track_perigee"]
        if not isinstance(perigee, dict):
            _fail(source, f"'track_perigee' must be a mapping with keys {', '.join(PERIGEE_KEYS)}, not {perigee!r}")
        for key in perigee:
            if key not in PERIGEE_KEYS:
                _fail(source, f"track_perigee: unknown key {key!r}{close_matches(str(key), PERIGEE_KEYS)} "
                              f"Allowed: {', '.join(PERIGEE_KEYS)}")
        for key in ("qoverp", "theta"):
            if not isinstance(perigee.get(key), str):
                _fail(source, f"track_perigee: {key!r} must name the foreign branch (str), not {perigee.get(key)!r}")
        clash = [name for name in PERIGEE_FIELDS if name in branches or name in fill]
        if clash:
            _fail(source, f"track_perigee computes {', '.join(PERIGEE_FIELDS)}; remove {', '.join(clash)} "
                          f"from 'branches'/'fill'")
        kwargs["track_perigee"] = TrackPerigee(
            perigee["qoverp"], perigee["theta"],
            _number(source, "track_perigee: qoverp_factor", perigee.get("qoverp_factor", 1.0)))
    if data.get("truth_jets") is not None:
        kwargs["truth_jets"] = _truth_jets(source, data["truth_jets"])
    limits = {}
    for key, value in _section(source, data, "limits").items():
        _schema_name(source, "limits", key)
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(is_number(v) for v in value) \
                or value[0] >= value[1]:
            _fail(source, f"limits: {key!r} must be [low, high] with low < high, not {value!r}")
        limits[key] = (float(value[0]), float(value[1]))
    kwargs["limits"] = limits
    if layout == "jets" and any(key in data for key in ("jet_radius", "jet_min_pt", "truth_jets")):
        _fail(source, "'jet_radius', 'jet_min_pt' and 'truth_jets' apply to layout: events only; remove them or "
                      "set 'layout: events'")
    return BranchMapping(**kwargs)


def _truth_jets(source, value) -> TruthJets:
    if not isinstance(value, dict):
        _fail(source, f"'truth_jets' must be a mapping with keys {', '.join(TRUTH_JET_KEYS)}, not {value!r}")
    for key in value:
        if key not in TRUTH_JET_KEYS:
            _fail(source, f"truth_jets: unknown key {key!r}{close_matches(str(key), TRUTH_JET_KEYS)} "
                          f"Allowed: {', '.join(TRUTH_JET_KEYS)}")
    for key in ("pt", "eta", "phi", "m", "pdgid"):
        if (key in ("pt", "eta", "phi") or value.get(key) is not None) and not isinstance(value.get(key), str):
            _fail(source, f"truth_jets: {key!r} must name the foreign branch (str), not {value.get(key)!r}")
    radius = _number(source, "truth_jets: match_radius", value.get("match_radius", 0.2), positive=True,
                     allow_zero=False)
    return TruthJets(value["pt"], value["eta"], value["phi"], value.get("m"), value.get("pdgid"), radius)


def shipped_mappings() -> tuple[str, ...]:
    """Names of the mappings in ``configs/schemas/`` (shipped with the package)."""
    return shipped_configs("schemas")


def load_mapping(spec: str | Path | BranchMapping | None) -> BranchMapping:
    """A validated :class:`BranchMapping` from a YAML path, a shipped name (``"cocoa"``) or ``None`` (identity)."""
    if spec is None:
        return IDENTITY
    if isinstance(spec, BranchMapping):
        return spec
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"mapping must be None, a BranchMapping, a YAML path or a name in {SCHEMA_DIR}, "
                        f"not {spec!r}")
    path = Path(spec)
    if not path.is_file():
        shipped = shipped_mappings()
        if shipped_config("schemas", str(spec)) is not None:
            path = shipped_config("schemas", str(spec))
        else:
            raise MappingError(f"mapping {str(spec)!r} is neither a YAML file nor a shipped mapping"
                               f"{close_matches(str(spec), shipped)} Shipped ({SCHEMA_DIR}): {', '.join(shipped)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    return mapping_from_dict(data if data is not None else {}, name=path.stem, source=str(path))
