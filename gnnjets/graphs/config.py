"""Graph-building configuration: node budget, per-layer edge parameters, feature scaling.

A :class:`GraphConfig` is a typed record, built from YAML (``configs/graphs/cpu.yaml``,
``configs/graphs/gpu.yaml``) or a dict, and written back as plain data by :meth:`GraphConfig.to_dict`
so that a checkpoint can rebuild exactly the graphs it was trained on.

Per-layer tuples have one entry per calorimeter layer (0-2 ECAL, 3-5 HCAL). The defaults are
COCOA-like: more same-layer neighbours where the cells are fine (ECAL1/2, 0.023 x 0.025) than where
they are coarse (HCAL3, 0.19 x 0.20), two nearest cells in each adjacent layer, one cell per layer
for each track.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from gnnjets.base.resources import shipped_config, shipped_configs

from gnnjets.graphs.features import FeatureScaling
from gnnjets.io.schema import N_CALO_LAYERS
from gnnjets.base.hints import check_known_keys


class GraphConfigError(ValueError):
    """A graph config has an unknown key or a value of the wrong type or range."""


@dataclass(frozen=True)
class GraphConfig:
    """How a jet replica becomes a graph.

    Node budget: ``max_cells`` / ``max_tracks`` keep the most energetic cells (by E) and tracks
    (by pT) of each jet; ``None`` keeps all. The defaults (64 cells, 32 tracks, one remainder node
    per layer for the rest, energies relative to the jet's) are the redesigned graph of version 0.2,
    chosen by the representation study (docs/results.md); ``configs/pretrain/v0.1.yaml`` holds the
    old one (96 cells, no remainder nodes, absolute energies).
    """

    max_cells: int | None = 64  # q/g jets carry ~300-1100 topocluster cells; the remainder nodes keep the rest's energy
    max_tracks: int | None = 32  # q/g jets have <= ~30 tracks with pT > 1 GeV: the budget rarely cuts
    k_same_layer: tuple[int, ...] = (8, 8, 6, 4, 4, 3)  # in-edges of a cell from its nearest cells of its layer
    k_adjacent_layer: tuple[int, ...] = (2, 2, 2, 2, 2, 2)  # in-edges of a cell of layer L from layer L-1 and from L+1
    k_track: tuple[int, ...] = (1, 1, 1, 1, 1, 1)  # cells of layer L nearest a track's extrapolation to L
    track_edges_both_ways: bool = True  # add cell -> track edges too, so that tracks receive messages
    # one extra node per layer standing for the cells beyond max_cells (their summed energy, their
    # energy-weighted centroid, their number in the log_count column): the graph then keeps all of
    # the jet's energy and its cell multiplicity, which the top-k budget alone throws away
    remainder_nodes: bool = True
    scaling: FeatureScaling = field(default_factory=FeatureScaling)

    def __post_init__(self):
        for name in ("max_cells", "max_tracks"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise GraphConfigError(f"graph config {name!r} must be a positive int or null (keep all), "
                                       f"not {value!r}")
        for name in ("k_same_layer", "k_adjacent_layer", "k_track"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):  # one k for every layer
                value = (value,) * N_CALO_LAYERS
            value = tuple(value) if isinstance(value, (list, tuple)) else value
            if (not isinstance(value, tuple) or len(value) != N_CALO_LAYERS
                    or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in value)):
                raise GraphConfigError(f"graph config {name!r} must be one non-negative int or a list of "
                                       f"{N_CALO_LAYERS} (one per layer), not {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        for name in ("track_edges_both_ways", "remainder_nodes"):
            if not isinstance(getattr(self, name), bool):
                raise GraphConfigError(f"graph config {name!r} must be true or false, not {getattr(self, name)!r}")
        if isinstance(self.scaling, dict):
            object.__setattr__(self, "scaling", FeatureScaling.from_dict(self.scaling))
        if not isinstance(self.scaling, FeatureScaling):
            raise GraphConfigError(f"graph config 'scaling' must be a mapping, not {self.scaling!r}")

    def to_dict(self) -> dict:
        """Plain data (lists, numbers, a nested dict): YAML/JSON-safe and accepted by :meth:`from_dict`."""
        out = asdict(self)
        for name in ("k_same_layer", "k_adjacent_layer", "k_track"):
            out[name] = list(out[name])
        return out

    @classmethod
    def from_dict(cls, values: dict | None) -> GraphConfig:
        """From a dict (e.g. a parsed YAML file); an optional top-level ``graph:`` section is unwrapped."""
        values = dict(values or {})
        if set(values) == {"graph"}:
            values = dict(values["graph"] or {})
        check_known_keys(values, [f.name for f in fields(cls)], "graph config", GraphConfigError)
        try:
            scaling = FeatureScaling.from_dict(values.pop("scaling", None))
        except (KeyError, TypeError, ValueError) as error:
            raise GraphConfigError(f"graph config 'scaling': {error}") from None
        return cls(**values, scaling=scaling)


def load_graph_config(config: GraphConfig | dict | str | Path | None = None) -> GraphConfig:
    """A :class:`GraphConfig` from an instance, a dict, a YAML path, or ``None`` (the CPU defaults)."""
    if config is None:
        return GraphConfig()
    if isinstance(config, GraphConfig):
        return config
    if isinstance(config, dict):
        return GraphConfig.from_dict(config)
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file() and shipped_config("graphs", str(config)) is not None:
            path = shipped_config("graphs", str(config))  # a short name: "cpu", "gpu"
        if not path.is_file():
            raise FileNotFoundError(f"graph config {path} not found; give a path or a shipped one: "
                                    f"{', '.join(shipped_configs('graphs'))}")
        with open(path) as stream:
            values = yaml.safe_load(stream)
        if values is not None and not isinstance(values, dict):
            raise GraphConfigError(f"{path}: a graph config must be a mapping, not {type(values).__name__}")
        return GraphConfig.from_dict(values)
    raise TypeError(f"graph_config must be a GraphConfig, a dict, a YAML path or None, not {config!r}")
