"""Read files written by others: a YAML branch mapping from a foreign layout to the gnnjets schema.

A mapping (``configs/schemas/<name>.yaml``) says where each schema branch of
:mod:`gnnjets.io.schema` comes from; :func:`load_mapping` reads and validates it, and
:meth:`BranchMapping.plan` turns it, for one file's list of branches, into a :class:`ReadPlan` that
converts chunks of foreign arrays into schema columns. Keys (all optional):

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
``cell_sigma_per_layer``, ``layer_radius_mm``, ``b_field_t``
    the per-layer cell noise [GeV], the radii [mm] of the layer middles and the solenoid field [T]
    used by the default fills (COCOA defaults, the values of :mod:`detector_sim.geometry`).
``description``
    free text.

Default fills (when ``fill_missing`` and the file lacks a branch) keep every value finite, so the
reader's NaN check still means a broken file:

=================================  ===========================================================
``event_id``                       the entry number of the event within its file
``jet_index``                      index of the jet in the event's collection (0 for ``jets``)
``replica`` / ``sim_seed``         0 / -1
``truth_pt/eta/phi/e/m``           copies of ``jet_*``: no truth in the file (``label`` -1 says so)
``label`` / ``parton_pdgid``       -1 (unknown) / 0 (none)
``jet_e`` / ``jet_m``              ``sqrt((pt cosh eta)^2 + m^2)`` / 0
``cell_sigma``                     ``cell_sigma_per_layer[cell_layer]``
``cell_topo_idx``                  -1 (not known)
``track_charge``                   0 (unknown), unless ``track_perigee`` gives it
``track_d0`` / ``track_z0``        0
``track_{eta,phi}_layerN``         the helix from the origin (``b_field_t``) crossing
                                   ``layer_radius_mm[N]``; tracks that curl up before it, and
                                   neutral/unknown charge, keep the perigee direction
``particle_*``                     empty lists when the file has no particle branch
=================================  ===========================================================

Never filled (an absent one is an error): ``jet_pt/eta/phi``, ``cell_e/eta/phi/layer``,
``track_pt/eta/phi`` of files that have tracks, ``particle_pt/eta/phi/e`` of files with particles.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import yaml

from gnnjets.io import schema
from gnnjets.io.errors import MappingError, MissingBranchError, NonFiniteValueError

#: folder of the shipped mappings (``mapping="cocoa"`` means ``SCHEMA_DIR / "cocoa.yaml"``)
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "configs" / "schemas"

#: COCOA default electronic noise per cell and layer [GeV] (arXiv:2303.02101; detector_sim.geometry)
COCOA_CELL_SIGMA_GEV = (0.013, 0.034, 0.041, 0.075, 0.050, 0.025)
#: radii of the middles of the calorimeter layers [mm] (detector_sim.geometry.R_MID_MM)
COCOA_LAYER_RADIUS_MM = (1528.0, 1668.0, 1794.0, 2048.0, 2608.0, 3198.0)
COCOA_B_FIELD_T = 3.8
#: pT [GeV] = C * B [T] * R [m] for unit charge
GEV_PER_TESLA_METRE = 0.299792458

LAYOUTS = ("jets", "events")
ALLOWED_KEYS = ("tree", "layout", "branches", "units", "fill", "fill_missing", "jet_radius", "jet_min_pt",
                "track_perigee", "cell_sigma_per_layer", "layer_radius_mm", "b_field_t", "description")
PERIGEE_KEYS = ("qoverp", "theta", "qoverp_factor")
PERIGEE_FIELDS = ("track_pt", "track_eta", "track_charge")

#: per collection: the fields that are read, never invented
CORE_FIELDS = {
    "cell": ("cell_e", "cell_eta", "cell_phi", "cell_layer"),
    "track": ("track_pt", "track_eta", "track_phi"),
    "particle": ("particle_pt", "particle_eta", "particle_phi", "particle_e"),
}
#: collections that may be absent from a foreign file altogether (then: empty lists)
OPTIONAL_COLLECTIONS = ("track", "particle")
JET_AXIS = ("jet_pt", "jet_eta", "jet_phi")

_CONSTANT_FILLS = {"replica": 0, "sim_seed": -1, "label": -1, "parton_pdgid": 0, "jet_m": 0.0,
                   "cell_topo_idx": -1, "track_charge": 0, "track_d0": 0.0, "track_z0": 0.0}
_LAYER_FIELDS = {f"track_{coord}_layer{layer}": (coord, layer)
                 for layer in range(schema.N_CALO_LAYERS) for coord in ("eta", "phi")}


def close_matches(word: str, choices, end: str = ".") -> str:
    """``"; did you mean 'x'?"`` when ``choices`` holds something close to ``word``, else ``end``."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else end


def wrap_phi(phi):
    """Map angles into [-pi, pi)."""
    return np.mod(np.asarray(phi) + np.pi, 2 * np.pi) - np.pi


def perigee_to_pt_eta_charge(qoverp_per_gev, theta):
    """Track (pt [GeV], eta, charge) from q/p [1/GeV] and the polar angle theta [rad].

    ``pt = |1/(q/p)| sin(theta)``, ``eta = -ln tan(theta/2)``, ``charge = sign(q/p)``.
    """
    qoverp_per_gev = np.asarray(qoverp_per_gev, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    with np.errstate(divide="ignore"):
        pt = np.abs(1.0 / qoverp_per_gev) * np.sin(theta)
        eta = -np.log(np.tan(0.5 * theta))
    return pt, eta, np.sign(qoverp_per_gev).astype(np.int32)


def helix_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm: float, b_field_t: float):
    """(eta, phi) where a track from the origin crosses the cylinder ``radius_mm`` in a field along +z.

    ``phi(r) = phi0 - q asin(r / 2R)`` with ``R = pt / (0.3 B)``; the transverse arc
    ``s = 2R asin(r / 2R)`` gives ``z = s sinh(eta)`` and ``eta(r) = asinh(z / r)``. Tracks that
    curl up before ``radius_mm`` (``r > 2R``) and those without charge keep the perigee direction,
    so the result is always finite.
    """
    pt_gev, eta, phi, charge = (np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi, charge))
    with np.errstate(divide="ignore", invalid="ignore"):
        curvature_mm = 1e3 * pt_gev / (GEV_PER_TESLA_METRE * b_field_t)
        ratio = radius_mm / (2 * curvature_mm)
        bends = (charge != 0) & (ratio <= 1) & np.isfinite(ratio)
        bend = np.arcsin(np.where(bends, ratio, 0.0))
        arc = np.where(bends, 2 * curvature_mm * bend, radius_mm)
        eta_r = np.where(bends, np.arcsinh(arc * np.sinh(eta) / radius_mm), eta)
        phi_r = np.where(bends, wrap_phi(phi - np.sign(charge) * bend), phi)
    return eta_r, phi_r


@dataclass(frozen=True)
class TrackPerigee:
    """Tracks stored as perigee parameters instead of (pt, eta, charge)."""

    qoverp: str  # foreign branch of q/p
    theta: str  # foreign branch of the polar angle [rad]
    qoverp_factor: float = 1.0  # q/p [1/GeV] = factor x foreign q/p; 1000 when the file has 1/MeV


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
    cell_sigma_per_layer: tuple = COCOA_CELL_SIGMA_GEV  # GeV, fills cell_sigma
    layer_radius_mm: tuple = COCOA_LAYER_RADIUS_MM  # fills track_{eta,phi}_layerN
    b_field_t: float = COCOA_B_FIELD_T
    description: str = ""
    source: str = "<built-in>"  # the YAML file it came from

    @property
    def is_identity(self) -> bool:
        """True for our own layout: every schema branch read under its own name, nothing converted."""
        return (self.layout == "jets" and not self.branches and not self.units and not self.fill
                and not self.fill_missing and self.track_perigee is None)

    def foreign_name(self, name: str) -> str:
        """The branch in the file that holds schema branch ``name``."""
        return self.branches.get(name, name)

    def plan(self, available, wanted, where: str) -> ReadPlan:
        """How to produce the schema branches ``wanted`` from a tree with branches ``available``.

        ``where`` (``"data/x.root:jets"``) names the tree in error messages. Raises
        :class:`MissingBranchError` when a needed branch is absent and cannot be filled.
        """
        return ReadPlan(self, frozenset(available), tuple(wanted), where)


IDENTITY = BranchMapping()


# --------------------------------------------------------------------------------------------- loading

def _fail(source, message):
    raise MappingError(f"{source}: {message}")


def _number(source, key, value, *, positive=False, allow_zero=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
    if "b_field_t" in data:
        kwargs["b_field_t"] = _number(source, "b_field_t", data["b_field_t"], positive=True)
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
    if layout == "jets" and ("jet_radius" in data or "jet_min_pt" in data):
        _fail(source, "'jet_radius' and 'jet_min_pt' apply to layout: events only; remove them or set "
                      "'layout: events'")
    return BranchMapping(**kwargs)


def shipped_mappings() -> tuple[str, ...]:
    """Names of the mappings in ``configs/schemas/``."""
    return tuple(sorted(path.stem for path in SCHEMA_DIR.glob("*.yaml")))


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
        if str(spec) in shipped:
            path = SCHEMA_DIR / f"{spec}.yaml"
        else:
            raise MappingError(f"mapping {str(spec)!r} is neither a YAML file nor a shipped mapping"
                               f"{close_matches(str(spec), shipped)} Shipped ({SCHEMA_DIR}): {', '.join(shipped)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    return mapping_from_dict(data if data is not None else {}, name=path.stem, source=str(path))


# ------------------------------------------------------------------------------------------- planning

@dataclass(frozen=True)
class Source:
    """How one schema column is made: ``kind`` and its argument."""

    kind: str  # read | perigee | const | copy | jet_e | sigma | layer | entry | jet_index | empty
    arg: object = None
    deps: tuple = ()


def _jagged_like(values: np.ndarray, like: ak.Array) -> ak.Array:
    return ak.unflatten(values, ak.num(like, axis=1))


def _flat(array) -> np.ndarray:
    """The numbers of a (jagged) array as one numpy array."""
    array = ak.Array(array) if not isinstance(array, ak.Array) else array
    if array.ndim > 1:
        array = ak.flatten(array, axis=None)
    return ak.to_numpy(array)


class ReadPlan:
    """The resolved recipe for one mapping and one file: foreign branches to read and conversions.

    ``ReadPlan.convert`` turns the foreign arrays of one chunk (``uproot`` ``library="ak"``) into a
    dict of schema columns (schema dtypes and units) plus the file entry number of each record.
    """

    def __init__(self, mapping: BranchMapping, available: frozenset, wanted: tuple, where: str):
        self.mapping = mapping
        self.available = available
        self.where = where
        self.wanted = wanted
        self._empty_collections = {
            prefix for prefix in OPTIONAL_COLLECTIONS
            if mapping.fill_missing and not self._any_readable(prefix)}
        self.sources: dict[str, Source] = {}
        for name in wanted + (JET_AXIS if mapping.layout == "events" else ()):
            self._resolve(name)
        if mapping.layout == "events":
            # every collection read per event is cut around the jet axes: it needs its eta and phi
            for prefix in {collection_prefix(name) for name, src in list(self.sources.items())
                           if src.kind in ("read", "perigee")} - {None}:
                self._resolve(f"{prefix}_eta")
                self._resolve(f"{prefix}_phi")
        #: foreign branches to read, in a stable order
        self.branches = tuple(dict.fromkeys(
            [src.arg for src in self.sources.values() if src.kind == "read"]
            + ([mapping.track_perigee.qoverp, mapping.track_perigee.theta]
               if any(src.kind == "perigee" for src in self.sources.values()) else [])))

    # -- resolution
    def _any_readable(self, prefix: str) -> bool:
        fields = schema.COLLECTIONS[prefix][1]
        if prefix == "track" and self.mapping.track_perigee is not None:
            return True
        return any(self.mapping.foreign_name(f.name) in self.available for f in fields)

    def _missing(self, name: str, why: str = "") -> MissingBranchError:
        foreign = self.mapping.foreign_name(name)
        shown = ", ".join(sorted(self.available))
        renamed = f" (schema branch {name!r} via mapping {self.mapping.source})" if foreign != name else ""
        fix = why or (f"Fix the name under 'branches:' in the mapping, or set 'fill_missing: true' or "
                      f"'fill: {{{name}: ...}}'"
                      if not self.mapping.is_identity else
                      "Regenerate the file with detector-sim, or read a foreign file with mapping=<yaml>")
        return MissingBranchError(f"no branch {foreign!r}{renamed} in {self.where}"
                                  f"{close_matches(foreign, self.available)} {fix}. Available: {shown}")

    def _resolve(self, name: str) -> Source:
        if name in self.sources:
            return self.sources[name]
        source = self._choose(name)
        self.sources[name] = source
        for dep in source.deps:
            self._resolve(dep)
        return source

    def _choose(self, name: str) -> Source:
        mapping = self.mapping
        prefix = collection_prefix(name)
        if mapping.track_perigee is not None and name in PERIGEE_FIELDS:
            return Source("perigee", name)
        if mapping.foreign_name(name) in self.available:
            return Source("read", mapping.foreign_name(name))
        if prefix in self._empty_collections:
            return Source("empty")
        reference = None if prefix is None else self._reference_field(prefix)
        if name in mapping.fill:
            return Source("const", mapping.fill[name], (reference,) if reference else ())
        if name in mapping.branches:
            raise self._missing(name, "The mapping names it under 'branches:'; correct the foreign name")
        if not mapping.fill_missing:
            raise self._missing(name)
        if name in JET_AXIS or any(name in core for core in CORE_FIELDS.values()):
            raise self._missing(name, "It is never filled in; map it under 'branches:'")
        if name == "event_id":
            return Source("entry")
        if name == "jet_index":
            return Source("jet_index") if mapping.layout == "events" else Source("const", 0)
        if name.startswith("truth_"):
            return Source("copy", "jet_" + name[len("truth_"):], ("jet_" + name[len("truth_"):],))
        if name == "jet_e":
            return Source("jet_e", None, ("jet_pt", "jet_eta", "jet_m"))
        if name == "cell_sigma":
            return Source("sigma", None, ("cell_layer",))
        if name in _LAYER_FIELDS:
            return Source("layer", _LAYER_FIELDS[name], ("track_pt", "track_eta", "track_phi", "track_charge"))
        if name in _CONSTANT_FILLS:
            return Source("const", _CONSTANT_FILLS[name], (reference,) if reference else ())
        if prefix == "particle":
            return Source("const", 0, (reference,))
        raise self._missing(name)  # pragma: no cover - every schema name has a rule above

    def _reference_field(self, prefix: str) -> str:
        """A readable field of collection ``prefix`` whose list lengths a constant fill copies."""
        return CORE_FIELDS[prefix][0]

    # -- conversion
    def convert(self, arrays: dict, entry: np.ndarray) -> tuple[dict, np.ndarray]:
        """Schema columns (``wanted`` names, schema dtypes) and the file entry of each record.

        ``arrays``: foreign branch name -> awkward array for one chunk of entries, whose entry
        numbers within the file are ``entry``. For ``layout: events`` the returned entries repeat
        once per jet of the event.
        """
        mapping = self.mapping
        columns = {}
        for name, src in self.sources.items():
            if src.kind == "read":
                columns[name] = _scaled(arrays[src.arg], mapping.units.get(name))
        if any(src.kind == "perigee" for src in self.sources.values()):
            perigee = mapping.track_perigee
            qoverp = arrays[perigee.qoverp]
            pt, eta, charge = perigee_to_pt_eta_charge(_flat(qoverp) * perigee.qoverp_factor,
                                                       _flat(arrays[perigee.theta]))
            for name, values in zip(PERIGEE_FIELDS, (pt, eta, charge)):
                if name in self.sources:
                    columns[name] = _jagged_like(values, qoverp)
        jet_index = None
        if mapping.layout == "events":
            columns, entry, jet_index = self._assign_to_jets(columns, entry)
        n = len(entry)
        for name in self._fill_order():
            src = self.sources[name]
            columns[name] = self._fill(name, src, columns, entry, jet_index, n)
        return {name: _as_schema_dtype(name, columns[name]) for name in self.wanted}, entry

    def _fill_order(self) -> list[str]:
        order, seen = [], set()

        def visit(name):
            if name in seen:
                return
            seen.add(name)
            for dep in self.sources[name].deps:
                visit(dep)
            if self.sources[name].kind not in ("read", "perigee"):
                order.append(name)

        for name in self.sources:
            visit(name)
        return order

    def _fill(self, name, src, columns, entry, jet_index, n):
        mapping = self.mapping
        prefix = collection_prefix(name)
        if src.kind == "const":
            if prefix is None:
                return np.full(n, src.arg, dtype=schema.dtype_of(name))
            like = columns[src.deps[0]]
            return _jagged_like(np.full(len(_flat(like)), src.arg, dtype=schema.dtype_of(name)), like)
        if src.kind == "empty":
            return ak.unflatten(np.zeros(0, dtype=schema.dtype_of(name)), np.zeros(n, dtype=np.int64))
        if src.kind == "entry":
            return np.asarray(entry, dtype=np.int64)
        if src.kind == "jet_index":
            return jet_index
        if src.kind == "copy":
            return columns[src.arg]
        if src.kind == "jet_e":
            pt, eta, m = (np.asarray(columns[k], dtype=np.float64) for k in ("jet_pt", "jet_eta", "jet_m"))
            return np.hypot(pt * np.cosh(eta), m)
        if src.kind == "sigma":
            layer = columns["cell_layer"]
            flat_layer = _flat(layer).astype(np.int64)
            bad = (flat_layer < 0) | (flat_layer >= schema.N_CALO_LAYERS)
            if bad.any():
                raise ValueError(f"cell_layer value {flat_layer[bad][0]} outside 0..{schema.N_CALO_LAYERS - 1} in "
                                 f"{self.where}; cell_sigma cannot be filled from 'cell_sigma_per_layer'. Map the "
                                 f"file's layer numbering to 0..5 or map cell_sigma under 'branches:'")
            return _jagged_like(np.asarray(mapping.cell_sigma_per_layer)[flat_layer], layer)
        if src.kind == "layer":
            coord, layer = src.arg
            eta, phi = helix_eta_phi_at_radius(*(_flat(columns[k]) for k in src.deps),
                                               mapping.layer_radius_mm[layer], mapping.b_field_t)
            return _jagged_like(eta if coord == "eta" else phi, columns["track_pt"])
        raise AssertionError(src.kind)  # pragma: no cover

    def _assign_to_jets(self, columns: dict, entry: np.ndarray):
        """Per-event columns -> per-jet columns: jets from the collection, objects within Delta R."""
        mapping = self.mapping
        jet_pt = columns["jet_pt"]
        if not isinstance(jet_pt, ak.Array) or jet_pt.ndim != 2:
            raise ValueError(f"{self.where}: layout 'events' needs jet_pt ({mapping.foreign_name('jet_pt')!r}) to "
                             f"be a per-event list of jets, but it has one value per entry; use 'layout: jets'")
        for name in JET_AXIS + tuple(f"{prefix}_{coord}" for prefix in schema.COLLECTIONS for coord in ("eta", "phi")):
            if name in columns:
                self._require_finite(name, columns[name], entry)
        keep = jet_pt >= mapping.jet_min_pt
        jets_per_event = ak.to_numpy(ak.sum(keep, axis=1)).astype(np.int64)
        event_of_jet = np.repeat(np.arange(len(jet_pt)), jets_per_event)
        out = {}
        for name, values in columns.items():
            if collection_prefix(name) is not None:
                continue
            if isinstance(values, ak.Array) and values.ndim == 2:
                if not ak.all(ak.num(values, axis=1) == ak.num(jet_pt, axis=1)):
                    raise ValueError(f"{self.where}: {mapping.foreign_name(name)!r} (schema {name!r}) is a per-event "
                                     f"list but not parallel to the jet collection {mapping.foreign_name('jet_pt')!r}")
                out[name] = _flat(values[keep])
            else:
                out[name] = np.asarray(values)[event_of_jet]
        jet_eta, jet_phi = out["jet_eta"], out["jet_phi"]
        for prefix in schema.COLLECTIONS:
            names = [name for name in columns if collection_prefix(name) == prefix]
            if not names:
                continue
            eta = columns[f"{prefix}_eta"]
            selected, counts = assign_within_delta_r(
                jet_eta, jet_phi, jets_per_event, _flat(eta), _flat(columns[f"{prefix}_phi"]),
                ak.to_numpy(ak.num(eta, axis=1)).astype(np.int64), mapping.jet_radius)
            for name in names:
                out[name] = ak.unflatten(_flat(columns[name])[selected], counts)
        jet_index = _flat(ak.local_index(jet_pt, axis=1)[keep]).astype(np.int32)
        return out, np.asarray(entry)[event_of_jet], jet_index


    def _require_finite(self, name: str, values, entry: np.ndarray) -> None:
        """Jet axes and object directions decide the assignment: a NaN there is reported, not dropped."""
        flat = _flat(values)
        if np.isfinite(flat).all():
            return
        first_bad = int(np.flatnonzero(~np.isfinite(flat))[0])
        event = int(np.searchsorted(np.cumsum(ak.to_numpy(ak.num(values, axis=1))), first_bad, side="right"))
        raise NonFiniteValueError(f"{flat[first_bad]} in {self.mapping.foreign_name(name)!r} (schema {name!r}) at "
                                  f"{self.where} entry {int(entry[event])}: objects cannot be assigned to jets; "
                                  f"fix the file or skip the entry with entry_start/entry_stop")


def collection_prefix(name: str) -> str | None:
    """``"cell"`` for ``"cell_e"``; ``None`` for per-jet scalars."""
    return schema.collection_of(name)


def _scaled(array, factor):
    if factor is None:
        return array
    if isinstance(array, ak.Array) and array.ndim > 1:
        return _jagged_like(_flat(array).astype(np.float64) * factor, array)
    return ak.to_numpy(array).astype(np.float64) * factor


def _as_schema_dtype(name: str, values):
    dtype = schema.dtype_of(name)
    if isinstance(values, ak.Array) and values.ndim > 1:
        return values if _flat_dtype(values) == dtype else ak.values_astype(values, dtype)
    values = ak.to_numpy(values) if isinstance(values, ak.Array) else np.asarray(values)
    return values if values.dtype == dtype else values.astype(dtype)


def _flat_dtype(array: ak.Array) -> np.dtype | None:
    layout = array.layout
    while hasattr(layout, "content"):
        layout = layout.content
    return getattr(layout, "dtype", None)


#: pairs (jet, object) evaluated at once; bounds memory to ~100 MB whatever the event size
PAIR_BUDGET = 4_000_000


def assign_within_delta_r(jet_eta, jet_phi, jets_per_event, obj_eta, obj_phi, objs_per_event, radius: float,
                          pair_budget: int = PAIR_BUDGET):
    """Objects (cells, tracks) within ``Delta R < radius`` of each jet of the same event.

    Inputs are flat and finite: jets of all events concatenated (``jets_per_event`` of them per
    event), objects likewise. Returns ``(selected, counts)``: indices into the flat objects,
    grouped by jet in jet order (object order kept within a jet), and the number of objects per
    jet. An object close to two jets is selected for both.

    Vectorised without a loop over events: objects are sorted by (event, eta), so the candidates
    of a jet, the objects of its event with ``|Delta eta| < radius``, are one contiguous run
    found by ``searchsorted``; only those pairs get the wrapped ``Delta phi`` and the ``Delta R``
    cut, in slices of at most ``pair_budget`` pairs.
    """
    jet_eta, jet_phi, obj_eta, obj_phi = (np.asarray(x, dtype=np.float64) for x in (jet_eta, jet_phi, obj_eta, obj_phi))
    jets_per_event = np.asarray(jets_per_event, dtype=np.int64)
    objs_per_event = np.asarray(objs_per_event, dtype=np.int64)
    event_of_jet = np.repeat(np.arange(len(jets_per_event)), jets_per_event)
    event_of_obj = np.repeat(np.arange(len(objs_per_event)), objs_per_event)
    # one sortable key per object: events far apart (eta is finite and |eta| << stride), eta within
    stride = 4 * (max(np.abs(obj_eta).max(initial=0), np.abs(jet_eta).max(initial=0)) + radius) + 1
    key = event_of_obj * stride + obj_eta
    order = np.argsort(key)
    key = key[order]
    jet_key = event_of_jet * stride + jet_eta
    low = np.searchsorted(key, jet_key - radius, side="right")
    high = np.searchsorted(key, jet_key + radius, side="left")
    pairs_of_jet = high - low
    cumulative = np.cumsum(pairs_of_jet)
    n_jets = len(event_of_jet)
    selected_parts, jet_parts = [], []
    first = 0
    while first < n_jets:
        base = cumulative[first - 1] if first else 0
        last = max(int(np.searchsorted(cumulative, base + pair_budget, side="right")), first + 1)
        pairs = pairs_of_jet[first:last]
        jet = np.repeat(np.arange(first, last), pairs)
        obj = order[np.arange(len(jet)) + np.repeat(low[first:last] - (np.cumsum(pairs) - pairs), pairs)]
        d_eta = jet_eta[jet] - obj_eta[obj]
        d_phi = np.abs(jet_phi[jet] - obj_phi[obj])
        if d_phi.size and d_phi.max() > 2 * np.pi:  # angles outside one turn: reduce first
            d_phi = np.mod(d_phi, 2 * np.pi)
        d_phi = np.minimum(d_phi, 2 * np.pi - d_phi)
        close = d_eta * d_eta + d_phi * d_phi < radius * radius
        selected_parts.append(obj[close])
        jet_parts.append(jet[close])
        first = last
    selected = np.concatenate(selected_parts) if selected_parts else np.zeros(0, dtype=np.int64)
    jets = np.concatenate(jet_parts) if jet_parts else np.zeros(0, dtype=np.int64)
    keep_order = np.lexsort((selected, jets))  # back to (jet, original object order)
    return selected[keep_order], np.bincount(jets, minlength=n_jets).astype(np.int64)
