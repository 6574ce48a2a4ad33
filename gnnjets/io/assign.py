"""Per-event files cut into jets: each jet of an event's collection gets the objects within Delta R.

Used by ``layout: events`` mappings (:mod:`gnnjets.io.mapping`), where one tree entry is an event
holding a jet collection and per-event cells, tracks and particles.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from gnnjets.base.kinematics import delta_phi
from gnnjets.io import schema
from gnnjets.io.arrays import flat
from gnnjets.io.errors import BranchTypeError, NonFiniteValueError

JET_AXIS = ("jet_pt", "jet_eta", "jet_phi")


def assign_to_jets(columns: dict, entry: np.ndarray, mapping, where: str, stats: dict | None = None):
    """Per-event columns -> per-jet columns: jets from the collection, objects within Delta R.

    Args:
        columns: schema name -> per-event array of one chunk (jet scalars as per-event lists
            parallel to the jet collection ``jet_pt``, or per-event scalars the jets share; cells,
            tracks and particles as per-event lists).
        entry: the file entry of each event.
        mapping: the :class:`~gnnjets.io.mapping.BranchMapping` (``jet_radius``, ``jet_min_pt``).
        where: ``"path:tree"``, for error messages.
        stats: if given, ``cells``, ``cells_dropped``, ``cell_energy_gev`` and
            ``cell_energy_dropped_gev`` are increased by this chunk's cells and those outside every
            jet (needs ``cell_e`` among the columns).

    Returns:
        ``(columns, entry, jet_index)``: one record per jet above ``jet_min_pt``, its objects those
        within ``Delta R < jet_radius`` of its axis (Delta phi wrapped; an object near two jets
        goes to both), the entry of its event, and its index in the event's collection.
    """
    jet_pt = columns["jet_pt"]
    if not isinstance(jet_pt, ak.Array) or jet_pt.ndim != 2:
        raise BranchTypeError(f"{where}: layout 'events' needs jet_pt ({mapping.foreign_name('jet_pt')!r}) to "
                         f"be a per-event list of jets, but it has one value per entry; use 'layout: jets'")
    for name in JET_AXIS + tuple(f"{prefix}_{coord}" for prefix in schema.COLLECTIONS for coord in ("eta", "phi")):
        if name in columns:
            _require_finite(name, columns[name], entry, mapping, where)
    keep = jet_pt >= mapping.jet_min_pt
    jets_per_event = ak.to_numpy(ak.sum(keep, axis=1)).astype(np.int64)
    event_of_jet = np.repeat(np.arange(len(jet_pt)), jets_per_event)
    out = {}
    for name, values in columns.items():
        if schema.collection_of(name) is not None:
            continue
        if isinstance(values, ak.Array) and values.ndim == 2:
            if not ak.all(ak.num(values, axis=1) == ak.num(jet_pt, axis=1)):
                raise BranchTypeError(f"{where}: {mapping.foreign_name(name)!r} (schema {name!r}) is a per-event "
                                 f"list but not parallel to the jet collection {mapping.foreign_name('jet_pt')!r}")
            out[name] = flat(values[keep])
        else:
            out[name] = np.asarray(values)[event_of_jet]
    jet_eta, jet_phi = out["jet_eta"], out["jet_phi"]
    for prefix in schema.COLLECTIONS:
        names = [name for name in columns if schema.collection_of(name) == prefix]
        if not names:
            continue
        eta = columns[f"{prefix}_eta"]
        selected, counts = assign_within_delta_r(
            jet_eta, jet_phi, jets_per_event, flat(eta), flat(columns[f"{prefix}_phi"]),
            ak.to_numpy(ak.num(eta, axis=1)).astype(np.int64), mapping.jet_radius)
        for name in names:
            out[name] = ak.unflatten(flat(columns[name])[selected], counts)
        if prefix == "cell" and stats is not None and "cell_e" in columns:
            energy = flat(columns["cell_e"]).astype(np.float64)
            dropped = np.ones(len(energy), dtype=bool)
            dropped[selected] = False
            stats["cells"] += len(energy)
            stats["cells_dropped"] += int(dropped.sum())
            stats["cell_energy_gev"] += float(energy.sum())
            stats["cell_energy_dropped_gev"] += float(energy[dropped].sum())
    jet_index = flat(ak.local_index(jet_pt, axis=1)[keep]).astype(np.int32)
    return out, np.asarray(entry)[event_of_jet], jet_index


def _require_finite(name: str, values, entry: np.ndarray, mapping, where: str) -> None:
    """Jet axes and object directions decide the assignment: a NaN there is reported, not dropped."""
    values_flat = flat(values)
    if np.isfinite(values_flat).all():
        return
    first_bad = int(np.flatnonzero(~np.isfinite(values_flat))[0])
    event = int(np.searchsorted(np.cumsum(ak.to_numpy(ak.num(values, axis=1))), first_bad, side="right"))
    raise NonFiniteValueError(f"{values_flat[first_bad]} in {mapping.foreign_name(name)!r} (schema {name!r}) at "
                              f"{where} entry {int(entry[event])}: objects cannot be assigned to jets; "
                              f"fix the file or skip the entry with entry_start/entry_stop")


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
        d_phi = delta_phi(jet_phi[jet], obj_phi[obj])
        close = d_eta * d_eta + d_phi * d_phi < radius * radius
        selected_parts.append(obj[close])
        jet_parts.append(jet[close])
        first = last
    selected = np.concatenate(selected_parts) if selected_parts else np.zeros(0, dtype=np.int64)
    jets = np.concatenate(jet_parts) if jet_parts else np.zeros(0, dtype=np.int64)
    keep_order = np.lexsort((selected, jets))  # back to (jet, original object order)
    return selected[keep_order], np.bincount(jets, minlength=n_jets).astype(np.int64)
