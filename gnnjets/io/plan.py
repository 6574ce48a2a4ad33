"""How one mapping reads one file: a :class:`ReadPlan` resolves, for every schema column wanted,
whether it is read (under which foreign name, with which unit factor), computed (track perigees,
the tracks' positions at each layer, jet energies) or filled with a default, and converts chunks
of foreign arrays into schema columns (schema names, dtypes and units).

The rules for each column are those of the mapping keys described in :mod:`gnnjets.io.mapping`;
per-event layouts are cut into jets by :func:`gnnjets.io.assign.assign_to_jets` on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from gnnjets.base.hints import close_matches
from gnnjets.base.kinematics import calo_eta_phi_at_radius, perigee_to_pt_eta_charge
from gnnjets.io import schema
from gnnjets.io.arrays import flat, jagged_like
from gnnjets.io.assign import JET_AXIS, assign_to_jets
from gnnjets.io.errors import BranchTypeError, MissingBranchError, OutOfRangeValueError
from gnnjets.io.mapping import PERIGEE_FIELDS, BranchMapping
from gnnjets.io.truth import TRUTH_NAMES, match_truth_jets

#: per collection: the fields that are read, never invented
CORE_FIELDS = {
    "cell": ("cell_e", "cell_eta", "cell_phi", "cell_layer"),
    "track": ("track_pt", "track_eta", "track_phi"),
    "particle": ("particle_pt", "particle_eta", "particle_phi", "particle_e"),
}
#: collections that may be absent from a foreign file altogether (then: empty lists)
OPTIONAL_COLLECTIONS = ("track", "particle")

_CONSTANT_FILLS = {"replica": 0, "sim_seed": -1, "label": -1, "parton_pdgid": 0, "jet_m": 0.0,
                   "cell_topo_idx": -1, "track_charge": 0, "track_d0": 0.0, "track_z0": 0.0}
_LAYER_FIELDS = {f"track_{coord}_layer{layer}": (coord, layer)
                 for layer in range(schema.N_CALO_LAYERS) for coord in ("eta", "phi")}


def track_at_radius(pt_gev, eta, phi, charge, radius_mm: float, b_field_t: float, calo_front_mm: float):
    """(eta, phi) of tracks at ``radius_mm``, extrapolated as the simulation does, always finite.

    The helix up to the calorimeter front, then a straight line
    (:func:`gnnjets.base.kinematics.calo_eta_phi_at_radius`); tracks that curl up before the
    front keep their perigee direction, so a fill never turns into the reader's NaN error.
    """
    eta_r, phi_r = calo_eta_phi_at_radius(pt_gev, eta, phi, charge, radius_mm, b_field_t, calo_front_mm)
    lost = ~(np.isfinite(eta_r) & np.isfinite(phi_r))
    return np.where(lost, eta, eta_r), np.where(lost, phi, phi_r)


@dataclass(frozen=True)
class Source:
    """How one schema column is made: ``kind`` and its argument."""

    kind: str  # read | perigee | truth | const | copy | jet_e | sigma | layer | entry | jet_index | empty
    arg: object = None
    deps: tuple = ()


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
            for prefix in {schema.collection_of(name) for name, src in list(self.sources.items())
                           if src.kind in ("read", "perigee")} - {None}:
                self._resolve(f"{prefix}_eta")
                self._resolve(f"{prefix}_phi")
        #: foreign branches to read, in a stable order
        self.branches = tuple(dict.fromkeys(
            [src.arg for src in self.sources.values() if src.kind == "read"]
            + ([mapping.track_perigee.qoverp, mapping.track_perigee.theta]
               if any(src.kind == "perigee" for src in self.sources.values()) else [])
            + (list(mapping.truth_jets.branches) if self._reads_truth_jets else [])))
        #: what the Delta R selection of ``layout: events`` dropped so far (cells outside every jet)
        self.selection = {"cells": 0, "cells_dropped": 0, "cell_energy_gev": 0.0, "cell_energy_dropped_gev": 0.0}

    @property
    def _reads_truth_jets(self) -> bool:
        return any(src.kind == "truth" for src in self.sources.values())

    def _has_truth_jets(self) -> bool:
        """The mapping names truth jets and the file has them (else truth_* keep their default fills)."""
        truth = self.mapping.truth_jets
        return (self.mapping.layout == "events" and truth is not None
                and all(branch in self.available for branch in truth.branches))

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
        prefix = schema.collection_of(name)
        if mapping.track_perigee is not None and name in PERIGEE_FIELDS:
            return Source("perigee", name)
        if name in TRUTH_NAMES and name not in mapping.branches and self._has_truth_jets():
            fallback = {"label": (), "parton_pdgid": ()}.get(name, ("jet_" + name[len("truth_"):],))
            return Source("truth", name, fallback)
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
            pt, eta, charge = perigee_to_pt_eta_charge(flat(qoverp) * perigee.qoverp_factor,
                                                       flat(arrays[perigee.theta]))
            for name, values in zip(PERIGEE_FIELDS, (pt, eta, charge)):
                if name in self.sources:
                    columns[name] = jagged_like(values, qoverp)
        jet_index, truth = None, None
        if mapping.layout == "events":
            entry_in = entry
            columns, entry, jet_index = assign_to_jets(columns, entry, mapping, self.where, stats=self.selection)
            if self._reads_truth_jets:
                truth = match_truth_jets(arrays, mapping.truth_jets, mapping.units, entry_in, entry,
                                         columns["jet_eta"], columns["jet_phi"], self.where)
        n = len(entry)
        for name in self._fill_order():
            src = self.sources[name]
            columns[name] = self._fill(name, src, columns, entry, jet_index, n, truth)
        out = {name: _as_schema_dtype(name, columns[name], self.where) for name in self.wanted}
        _check_list_lengths(out, self.where)
        return out, entry

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

    def _fill(self, name, src, columns, entry, jet_index, n, truth=None):
        mapping = self.mapping
        prefix = schema.collection_of(name)
        if src.kind == "truth":  # the matched truth jet's value; the reco jet's (label -1, pdgid 0) without one
            matched, values = truth
            fallback = columns[src.deps[0]] if src.deps else _CONSTANT_FILLS[name]
            return np.where(matched, values[name], fallback)
        if src.kind == "const":
            if prefix is None:
                return np.full(n, src.arg, dtype=schema.dtype_of(name))
            like = columns[src.deps[0]]
            return jagged_like(np.full(len(flat(like)), src.arg, dtype=schema.dtype_of(name)), like)
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
            flat_layer = flat(layer).astype(np.int64)
            bad = (flat_layer < 0) | (flat_layer >= schema.N_CALO_LAYERS)
            if bad.any():
                raise OutOfRangeValueError(f"cell_layer value {flat_layer[bad][0]} outside 0..{schema.N_CALO_LAYERS - 1} in "
                                 f"{self.where}; cell_sigma cannot be filled from 'cell_sigma_per_layer'. Map the "
                                 f"file's layer numbering to 0..5 or map cell_sigma under 'branches:'")
            return jagged_like(np.asarray(mapping.cell_sigma_per_layer)[flat_layer], layer)
        if src.kind == "layer":
            coord, layer = src.arg
            eta, phi = track_at_radius(*(flat(columns[k]) for k in src.deps), mapping.layer_radius_mm[layer],
                                       mapping.b_field_t, mapping.calo_front_mm)
            return jagged_like(eta if coord == "eta" else phi, columns["track_pt"])
        raise AssertionError(src.kind)  # pragma: no cover



def _scaled(array, factor):
    if factor is None:
        return array
    if isinstance(array, ak.Array) and array.ndim > 1:
        return jagged_like(flat(array).astype(np.float64) * factor, array)
    return ak.to_numpy(array).astype(np.float64) * factor


def _as_schema_dtype(name: str, values, where: str):
    """``values`` in the schema dtype of ``name``; a wrong shape or a non-number is a :class:`BranchTypeError`."""
    dtype = schema.dtype_of(name)
    jagged = schema.collection_of(name) is not None
    ndim = values.ndim if isinstance(values, ak.Array) else np.ndim(values)
    if ndim != (2 if jagged else 1):
        want = "a list of numbers per entry" if jagged else "one number per entry"
        raise BranchTypeError(f"branch for {name!r} in {where} holds {_describe_type(values)}; the schema wants {want}. "
                              f"Regenerate the file, or map the right branch under 'branches:' in a mapping")
    source = _flat_dtype(values) if isinstance(values, ak.Array) else np.asarray(values).dtype
    if source is None or np.dtype(source).kind not in "biuf":
        raise BranchTypeError(f"branch for {name!r} in {where} holds {_describe_type(values)}, not numbers; "
                              f"regenerate the file or map another branch")
    if np.dtype(source).kind == "f" and dtype.kind in "iu":
        numbers = flat(values) if jagged else np.asarray(values)
        bad = ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
        if bad.any():
            raise BranchTypeError(f"branch for {name!r} in {where} holds the non-integer {numbers[bad][0]}; the schema "
                                  f"wants {dtype} (a corrupt file, or the wrong branch mapped)")
    if jagged:
        return values if source == dtype else ak.values_astype(values, dtype)
    values = ak.to_numpy(values) if isinstance(values, ak.Array) else np.asarray(values)
    return values if values.dtype == dtype else values.astype(dtype)


def _describe_type(values) -> str:
    return f"type {values.type}" if isinstance(values, ak.Array) else f"dtype {np.asarray(values).dtype}"


def _check_list_lengths(columns: dict, where: str) -> None:
    """The fields of one collection (``cell_e``, ``cell_eta``, ...) must hold lists of equal lengths."""
    for prefix, (_, fields) in schema.COLLECTIONS.items():
        names = [field.name for field in fields if field.name in columns]
        if len(names) < 2:
            continue
        counts = ak.to_numpy(ak.num(columns[names[0]], axis=1))
        for name in names[1:]:
            other = ak.to_numpy(ak.num(columns[name], axis=1))
            if not np.array_equal(counts, other):
                record = int(np.flatnonzero(counts != other)[0])
                raise BranchTypeError(f"{where}: {name!r} and {names[0]!r} hold lists of different lengths ({other[record]}"
                                      f" and {counts[record]} in record {record} of the chunk); the {prefix} branches "
                                      f"of a file must share one counter. Regenerate the file")


def _flat_dtype(array: ak.Array) -> np.dtype | None:
    layout = array.layout
    while hasattr(layout, "content"):
        layout = layout.content
    return getattr(layout, "dtype", None)
