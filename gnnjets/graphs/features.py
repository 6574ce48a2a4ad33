"""The fixed layout of a jet graph: node feature columns, node and edge types, feature scaling.

Every jet replica becomes one :class:`JetGraph` (a PyG ``Data``) whose nodes are its calorimeter
cells followed by its tracks. The model and the augmentations address columns only through the
constants of this module, never through bare numbers.

Node features ``x`` (float32, shape (N, :data:`NUM_NODE_FEATURES`)):

=====  ==================  =====================================================================
col    name                value (``s`` = :class:`FeatureScaling`)
=====  ==================  =====================================================================
0      ``log_energy``      absolute (``s.energy_reference = "absolute"``): cells (log(max(E,
                           s.energy_floor_gev) / GeV) - s.log_energy_shift) / s.log_energy_scale,
                           tracks the same with pT in place of E; relative (``"jet"``):
                           (log(max(E / E_jet, s.relative_energy_floor)) - s.relative_log_shift)
                           / s.log_energy_scale with E the cell energy or the track momentum and
                           E_jet the graph's ``energy_ref`` (the reco jet energy)
1      ``delta_eta``       (eta - jet_eta) / s.angle_scale                   (= pos[:, 0] / scale)
2      ``delta_phi``       wrap(phi - jet_phi) / s.angle_scale, wrapped into (-pi, pi]
3-8    ``is_layer0..5``    one-hot calorimeter layer (cells)
9      ``is_track``        1 for tracks
10     ``significance``    cells: asinh(E / sigma / s.significance_scale), E/sigma the cell's
                           signal over its noise (negative for negative-noise cells); tracks: 0
11     ``charge``          tracks: +1 / -1; cells: 0
12     ``d0``              tracks: asinh(d0 / s.d0_scale_mm); cells: 0
13     ``z0``              tracks: asinh(z0 / s.z0_scale_mm); cells: 0
14     ``log_count``       log(n) / s.count_scale for a node standing for n cells: 0 for a
                           cell and a track, > 0 for a per-layer remainder node (the cells
                           beyond the node budget, see :class:`~gnnjets.graphs.config.GraphConfig`)
=====  ==================  =====================================================================

Columns 3-9 are the one-hot of ``node_type`` (:data:`NODE_TYPE_ONEHOT`).

Why these transforms: cell energies span 1e-3 to 1e3 GeV, hence a log; cells of negative energy
(pure noise fluctuations, ~40 % of the topocluster cells) have no log, so they sit at the floor
and keep their sign in ``significance``. Significances reach 1e4 for a 100 GeV cell with 13 MeV
noise, and impact parameters run from ~10 um (prompt) to tens of mm (K0S daughters): ``asinh``
is linear around zero and logarithmic in the tails, so both stay O(1) to O(10) with the sign kept.

Other node attributes: ``pos`` (N, 2) float32 = (delta_eta, delta_phi) in radians, unscaled, the
coordinates the augmentations move; ``energy`` (N,) float32 [GeV]: cell E (may be negative) or
track momentum p = pT cosh(eta), used by energy-weighted operations; ``node_type`` (N,) int64:
the layer 0-5 for cells, :data:`TRACK` for tracks.

Edge attributes ``edge_attr`` (float32, shape (E, 4)) for an edge ``source -> target`` (PyG's
``edge_index[0] -> edge_index[1]``, EdgeConv's x_j - x_i convention):
``delta_eta = pos[source, 0] - pos[target, 0]``, ``delta_phi`` the wrapped difference of
``pos[:, 1]``, ``delta_r = hypot(delta_eta, delta_phi)`` (radians, unscaled), and the edge type
as a float (:data:`SAME_LAYER`, :data:`ADJACENT_LAYER`, :data:`TRACK_TO_CELL`,
:data:`CELL_TO_TRACK`).

Per-graph attributes: the ids and truth of :data:`GRAPH_ATTRS`, ``energy_ref`` [GeV] (the jet
energy that relative log-energies refer to) and ``jet_features`` (1, J): the jet-level scalars
:data:`JET_FEATURE_NAMES` (log of the EM-scale energy and pT, |eta|, and the log of 1 + the
numbers of cells, tracks and topoclusters before any node budget). They describe the whole jet,
so they survive the node budget; the backbone never reads them, a head may
(``BackboneConfig.append_jet_features``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numba
import numpy as np
import torch
from torch import Tensor

from gnnjets.io.schema import N_CALO_LAYERS
from gnnjets.base.hints import check_known_keys
from gnnjets.base.kinematics import wrap_phi

# ---- node types ----------------------------------------------------------------------------
#: node_type of a track; cells carry their layer 0..5
TRACK = N_CALO_LAYERS
NUM_NODE_TYPES = N_CALO_LAYERS + 1

# ---- node feature columns ------------------------------------------------------------------
LOG_ENERGY = 0
DELTA_ETA = 1
DELTA_PHI = 2
#: the one-hot node-type block: column ``NODE_TYPE_OFFSET + node_type``
NODE_TYPE_OFFSET = 3
NODE_TYPE_ONEHOT = slice(NODE_TYPE_OFFSET, NODE_TYPE_OFFSET + NUM_NODE_TYPES)
SIGNIFICANCE = NODE_TYPE_OFFSET + NUM_NODE_TYPES  # 10
CHARGE = SIGNIFICANCE + 1
D0 = SIGNIFICANCE + 2
Z0 = SIGNIFICANCE + 3
LOG_COUNT = Z0 + 1  # 14
NUM_NODE_FEATURES = LOG_COUNT + 1  # 15
NODE_FEATURE_NAMES = (("log_energy", "delta_eta", "delta_phi")
                      + tuple(f"is_layer{layer}" for layer in range(N_CALO_LAYERS)) + ("is_track",)
                      + ("significance", "charge", "d0", "z0", "log_count"))

# ---- edges ---------------------------------------------------------------------------------
EDGE_DELTA_ETA = 0
EDGE_DELTA_PHI = 1
EDGE_DELTA_R = 2
EDGE_TYPE = 3
NUM_EDGE_FEATURES = 4
EDGE_FEATURE_NAMES = ("delta_eta", "delta_phi", "delta_r", "edge_type")
#: edge types: cell -> cell of the same layer (kNN), cell -> cell of an adjacent layer,
#: track -> cell near the track's extrapolation, and the reverse cell -> track
SAME_LAYER, ADJACENT_LAYER, TRACK_TO_CELL, CELL_TO_TRACK = 0, 1, 2, 3
EDGE_TYPE_NAMES = ("same_layer", "adjacent_layer", "track_to_cell", "cell_to_track")

#: per-graph attributes of every JetGraph, each a shape-(1,) tensor (shape (B,) in a Batch)
GRAPH_FLOAT_ATTRS = ("jet_pt", "jet_eta", "jet_phi", "jet_e", "truth_e", "truth_pt", "energy_ref")
GRAPH_INT_ATTRS = ("label", "event_id", "jet_index", "replica", "file_index", "entry")
#: the jet-level scalars of each graph, ``jet_features`` (1, J) per graph ((B, J) in a Batch):
#: what a head may be handed beside the learned embedding (they are not inputs of the backbone,
#: so a contrastive loss cannot take them as a shortcut)
JET_FEATURE_NAMES = ("log_e_em", "log_pt", "abs_eta", "log_n_cells", "log_n_tracks", "log_n_topoclusters")
NUM_JET_FEATURES = len(JET_FEATURE_NAMES)
GRAPH_VECTOR_ATTRS = ("jet_features",)
GRAPH_ATTRS = GRAPH_FLOAT_ATTRS + GRAPH_INT_ATTRS + GRAPH_VECTOR_ATTRS
#: how the log-energy column is referenced: "absolute" (log E / GeV) or "jet" (log E / E_jet)
ENERGY_REFERENCES = ("absolute", "jet")


@dataclass(frozen=True)
class FeatureScaling:
    """How raw quantities become the columns of ``x``; plain data, stored with every checkpoint.

    Each column is ``f(raw)`` with a fixed function ``f`` (see the module table) and the
    constants below. :meth:`to_dict` / :meth:`from_dict` round-trip it through YAML and JSON.
    """

    energy_floor_gev: float = 1e-3  # 1 MeV, far below the smallest cell noise (13 MeV): only
    # noise-level cells reach it; all negative-noise cells sit at log(1 MeV)
    log_energy_shift: float = 0.0  # log(1 GeV): cells and tracks of ~1 GeV sit at 0
    log_energy_scale: float = 2.0  # log E spans about -7..7: /2 keeps the column within ~[-3.5, 3.5]
    angle_scale: float = 1.0  # delta_eta/phi columns in radians; jets are R <= 0.8 wide
    significance_scale: float = 10.0  # asinh(E/sigma / 10): seed threshold 4.6 sigma -> 0.45
    d0_scale_mm: float = 0.05  # ~ d0 resolution of a few-GeV track: prompt tracks give |x| < ~2
    z0_scale_mm: float = 0.1  # ~ z0 resolution of a few-GeV track
    # "absolute": the log-energy column is log(E / GeV), cells by energy and tracks by pT;
    # "jet": log(E / E_jet) with E_jet = the reco jet energy (EM scale), cells by energy and tracks by
    # momentum, so that no node feature tells the jet's energy (a contrastive shortcut: across jets
    # log E varies ~20x more than between two replicas of one jet)
    energy_reference: str = "jet"
    relative_energy_floor: float = 1e-5  # "jet": fractions below 1e-5 (10 MeV of 1 TeV) sit at the floor
    relative_log_shift: float = -4.0  # "jet": log(fraction) + 4, so that a 2 % node sits at 0
    count_scale: float = 2.0  # log_count column = log(n) / 2: a remainder node of 1000 cells -> 3.5

    def __post_init__(self):
        if self.energy_reference not in ENERGY_REFERENCES:
            raise ValueError(f"FeatureScaling.energy_reference must be one of {', '.join(ENERGY_REFERENCES)}, "
                             f"not {self.energy_reference!r}")
        for field in fields(self):
            if field.name == "energy_reference":
                continue
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError(f"FeatureScaling.{field.name} must be a finite number, not {value!r}")
            if field.name not in ("log_energy_shift", "relative_log_shift") and value <= 0:
                raise ValueError(f"FeatureScaling.{field.name} must be positive, not {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> FeatureScaling:
        """From a plain dict; unknown keys fail with the close matches and the allowed keys."""
        values = dict(values or {})
        check_known_keys(values, [field.name for field in fields(cls)], "feature-scaling", KeyError)
        return cls(**{key: value if key == "energy_reference" else float(value) for key, value in values.items()})

    @property
    def relative(self) -> bool:
        """Whether the log-energy column is relative to the jet energy."""
        return self.energy_reference == "jet"

    # -- columns from raw quantities: numpy arrays or torch tensors, any shape --
    def log_energy_column(self, energy_gev, reference_gev=None):
        """Column :data:`LOG_ENERGY`, floored: absolute, of a cell's energy or a track's pT; relative
        (``energy_reference="jet"``), of a cell's energy or a track's momentum over ``reference_gev``."""
        if not self.relative:
            return (_log(_floor(energy_gev, self.energy_floor_gev)) - self.log_energy_shift) / self.log_energy_scale
        if reference_gev is None:
            raise ValueError("a jet-relative log-energy column needs the jet energy (reference_gev)")
        fraction = energy_gev / reference_gev
        return (_log(_floor(fraction, self.relative_energy_floor)) - self.relative_log_shift) / self.log_energy_scale

    def log_count_column(self, count):
        """Column :data:`LOG_COUNT`: log of the number of cells a node stands for (1 for a single cell)."""
        return _log(_floor(count, 1.0)) / self.count_scale

    def angle_column(self, delta):
        """Columns :data:`DELTA_ETA` / :data:`DELTA_PHI` from ``pos``."""
        return delta / self.angle_scale

    def significance_column(self, energy_over_sigma):
        return _asinh(energy_over_sigma / self.significance_scale)

    def significance_from_column(self, column):
        """Inverse of :meth:`significance_column`: E / sigma."""
        return _sinh(column) * self.significance_scale

    def d0_column(self, d0_mm):
        return _asinh(d0_mm / self.d0_scale_mm)

    def z0_column(self, z0_mm):
        return _asinh(z0_mm / self.z0_scale_mm)


def _log(a):
    return torch.log(a) if isinstance(a, Tensor) else np.log(a)


def _floor(a, floor: float):
    return a.clamp(min=floor) if isinstance(a, Tensor) else np.maximum(a, floor)


def _asinh(a):
    return torch.asinh(a) if isinstance(a, Tensor) else np.arcsinh(a)


def _sinh(a):
    return torch.sinh(a) if isinstance(a, Tensor) else np.sinh(a)


@numba.njit(cache=True, nogil=True)
def _edge_attributes_kernel(pos, source, target, edge_type, out):  # pragma: no cover
    two_pi = 2.0 * math.pi
    for e in range(source.shape[0]):
        d_eta = pos[source[e], 0] - pos[target[e], 0]
        d_phi = pos[source[e], 1] - pos[target[e], 1]
        if d_phi > math.pi or d_phi <= -math.pi:  # into (-pi, pi], as gnnjets.base.kinematics.wrap_phi
            d_phi = d_phi - two_pi * math.floor((d_phi + math.pi) / two_pi)
            if d_phi <= -math.pi:
                d_phi += two_pi
        out[e, 0] = d_eta
        out[e, 1] = d_phi
        out[e, 2] = math.sqrt(d_eta * d_eta + d_phi * d_phi)
        out[e, 3] = edge_type[e]


def edge_attributes(pos: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
    """``edge_attr`` (E, 4) of edges ``edge_index[0] -> edge_index[1]`` from node positions ``pos`` (N, 2).

    CPU tensors go through a compiled loop (the loader recomputes edge attributes after every
    augmentation: ~1 ms instead of ~7 ms for a batch of 256 q/g jets); others through torch.
    """
    if pos.device.type == "cpu" and not pos.requires_grad:
        out = torch.empty(edge_index.shape[1], NUM_EDGE_FEATURES, dtype=pos.dtype)
        _edge_attributes_kernel(pos.detach().contiguous().numpy(), edge_index[0].contiguous().numpy(),
                                edge_index[1].contiguous().numpy(), edge_type.detach().numpy(), out.numpy())
        return out
    return edge_attributes_torch(pos, edge_index, edge_type)


def edge_attributes_torch(pos: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
    """:func:`edge_attributes` in torch operations (any device, differentiable)."""
    source, target = edge_index[0], edge_index[1]
    delta = pos[source] - pos[target]  # (E, 2)
    delta_eta = delta[:, 0]
    delta_phi = wrap_phi(delta[:, 1])
    delta_r = torch.hypot(delta_eta, delta_phi)
    return torch.stack([delta_eta, delta_phi, delta_r, edge_type.to(pos.dtype)], dim=1)


def with_positions(data, pos: Tensor, scaling: FeatureScaling, update_derived: bool = True):
    """``data`` (already a copy) with new node positions: ``pos``, the angle columns of ``x``
    and ``edge_attr`` recomputed; ``x`` and ``edge_attr`` are new tensors (the input's are untouched).

    ``update_derived=False`` sets ``pos`` only and leaves ``x`` and ``edge_attr`` stale, for a
    caller that moves the nodes again and recomputes both once at the end
    (:class:`gnnjets.augment.JetCompose`).
    """
    if not update_derived:
        data.pos = pos
        return data
    x = data.x.clone()
    x[:, DELTA_ETA] = scaling.angle_column(pos[:, 0])
    x[:, DELTA_PHI] = scaling.angle_column(pos[:, 1])
    data.x = x
    data.pos = pos
    data.edge_attr = edge_attributes(pos, data.edge_index, data.edge_attr[:, EDGE_TYPE])
    return data


def node_energy_reference(data) -> Tensor | None:
    """Each node's jet energy (``energy_ref`` of its graph), or ``None`` when the graph has none."""
    reference = getattr(data, "energy_ref", None)
    if reference is None:
        return None
    batch = getattr(data, "batch", None)
    if batch is None:
        return reference.reshape(-1)[:1].expand(data.num_nodes)
    return reference[batch]


def with_energies(x: Tensor, node_type: Tensor, old_energy: Tensor, new_energy: Tensor,
                  scaling: FeatureScaling, reference: Tensor | None = None) -> Tensor:
    """New rows of ``x`` for nodes whose ``energy`` changes from ``old_energy`` to ``new_energy``.

    Cells: ``log_energy`` recomputed from the new energy (the floor applies) and ``significance``
    scaled by new / old (sigma is the cell's own, unchanged). Tracks: pT scales as p, so
    ``log_energy`` is recomputed from pT * new / old (absolute), or from the new momentum over the
    jet energy (relative). ``reference``: each node's jet energy, for a relative column. All
    arguments are rows of the same nodes.
    """
    out = x.clone()
    is_track = node_type == TRACK
    ratio = torch.where(old_energy != 0, new_energy / torch.where(old_energy != 0, old_energy, 1.0), 1.0)
    if scaling.relative:
        out[:, LOG_ENERGY] = scaling.log_energy_column(new_energy, reference)
    else:
        cell_log = scaling.log_energy_column(new_energy)
        track_pt = torch.exp(x[:, LOG_ENERGY] * scaling.log_energy_scale + scaling.log_energy_shift)
        track_log = scaling.log_energy_column(track_pt * ratio)
        out[:, LOG_ENERGY] = torch.where(is_track, track_log, cell_log)
    significance = scaling.significance_column(scaling.significance_from_column(x[:, SIGNIFICANCE]) * ratio)
    out[:, SIGNIFICANCE] = torch.where(is_track, x[:, SIGNIFICANCE], significance)
    return out
