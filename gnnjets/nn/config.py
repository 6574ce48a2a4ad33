"""Model configuration: the backbone and the projection head as typed, serialisable records.

A :class:`ModelConfig` (holding a :class:`BackboneConfig`) is plain data: :meth:`ModelConfig.to_dict`
gives lists, numbers and strings only, so a checkpoint stores it next to the weights and
:func:`~gnnjets.nn.model.build_model` rebuilds exactly the same network from it. Unknown keys and
values out of range fail at construction with the allowed values and the close matches, never
deep inside ``forward``.

The defaults are the CPU configuration: for jets of ~100-130 nodes and ~13 in-edges per node (the
graph budget of :class:`~gnnjets.graphs.config.GraphConfig`), a training step (forward, backward,
AdamW) of the default EdgeConv backbone runs at ~300 jet graphs/s on 2 idle CPU threads (~170/s on
one; ``benchmarks/train_throughput.py``), so a pretraining run of a few minutes sees ~50k jet
replicas. :meth:`ModelConfig.preset` ``("gpu")`` is a wider, deeper network for an accelerator.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields, replace

from gnnjets.graphs.features import NUM_JET_FEATURES, NUM_NODE_FEATURES
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import check_known_keys

#: message-passing layer kinds (:class:`~gnnjets.nn.edgeconv.EdgeConvBlock`,
#: :class:`~gnnjets.nn.gatv2.GATv2Block`, :class:`~gnnjets.nn.sage.MeanNeighbourBlock`)
KINDS = ("edgeconv", "gatv2", "sage")
#: neighbourhood aggregations of EdgeConv; only "energy" is infrared safe (see :mod:`gnnjets.nn.irsafe`)
AGGREGATIONS = ("mean", "sum", "max", "energy")
#: graph poolings (:mod:`gnnjets.nn.pooling`); only "energy" is infrared safe. A config may join
#: several with "+" ("mean+energy"): their outputs are concatenated
POOLINGS = ("sum", "mean", "attention", "energy")


class ModelConfigError(GnnjetsError, ValueError):
    """A model config has an unknown key or a value of the wrong type or range."""


def pooling_parts(pooling: str) -> tuple[str, ...]:
    """The poolings of a (possibly "+"-joined) pooling name, in order: ``"mean+energy"`` -> ("mean", "energy")."""
    return tuple(part.strip() for part in str(pooling).split("+"))




def _check_choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelConfigError(f"model config {name!r} must be one of {', '.join(allowed)}, not {value!r}{hint}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"model config {name!r} must be a positive int, not {value!r}")


def _check_number(name: str, value, *, low: float, high: float = math.inf, low_inclusive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelConfigError(f"model config {name!r} must be a finite number, not {value!r}")
    if value < low or (value == low and not low_inclusive) or value >= high:
        bracket = "[" if low_inclusive else "("
        raise ModelConfigError(f"model config {name!r} must lie in {bracket}{low}, {high}), not {value!r}")


@dataclass(frozen=True)
class BackboneConfig:
    """The graph encoder: type-specific node encoders, ``layers`` message-passing blocks, pooling.

    See :class:`~gnnjets.nn.backbone.Backbone` for the architecture. Infrared safety (for a fixed
    graph): ``aggregation="energy"`` (EdgeConv) or ``attention_energy_beta > 0`` (GATv2), together
    with ``pooling="energy"``, ``global_context=False`` and ``append_jet_features=False`` (a mean
    over nodes and the node counts both see every node), make ``h`` exactly independent of nodes of
    zero (or negative) energy. The defaults are not infrared safe: they are what the study chose.
    """

    kind: str = "sage"  # mean-neighbour blocks (a sparse product per block): ~10x the training throughput
    # of the version-0.1 EdgeConv at a probe AUC at least as good (docs/results.md); "edgeconv" is the
    # COCOA-style backbone of replica SSL (arXiv:2503.11632), "gatv2" attention
    node_features: int = NUM_NODE_FEATURES  # columns of x, from gnnjets.graphs.features; checked on every
    # forward so that graphs of another layout fail loudly instead of being misread
    hidden: int = 64  # node width H: 64 keeps a 3-layer CPU step at ~300 jets/s (2 threads); the per-edge
    # cost grows ~linearly in H once the matmuls sit on the nodes
    layers: int = 3  # message-passing blocks: 3 hops reach ~3 cells in a layer plus the neighbouring
    # layers, i.e. most of a q/g jet's core; each block costs about the same
    embedding_dim: int = 64  # D, the size of h (docs/design.md); the node readout maps H -> D before the
    # pooling, so h can use all D > H dimensions
    pooling: str = "mean+energy"  # mean: independent of the node count and of the energy scale; "energy" is the
    # infrared-safe choice (ignores noise cells entirely), "sum" keeps the multiplicity; "a+b" concatenates
    aggregation: str = "mean"  # EdgeConv neighbourhood reduction; a mean block costs half a max block:
    # without torch-scatter the max backward goes through scatter_reduce (~10x slower than mean's), and
    # only a linear aggregation lets the second message layer move from the edges to the nodes
    heads: int = 4  # GATv2 attention heads (hidden must divide by it); 4 x 16 channels at H = 64
    attention_energy_beta: float = 0.0  # GATv2: adds beta * log(E_j) to the attention logits (JetCLR, arXiv:2108.04253,
    # beta = 0.5 there); 0 is plain GATv2, > 0 makes attention infrared safe
    dropout: float = 0.0  # on the residual branches; contrastive pretraining is regularised by the
    # replicas and augmentations already, and dropout would add noise between the two views
    edge_angle_scale: float = 0.1  # [rad] divides the edge delta_eta/phi/R: neighbours sit 0.02-0.3 apart
    # (one ECAL cell to one HCAL3 cell), so the edge inputs are O(1)
    # after every block, each node receives an MLP of its graph's mean node state (a virtual node):
    # message passing over kNN edges reaches a few cells per layer, the context reaches the prongs
    global_context: bool = True
    # the representation h = [pooled embedding, the jet-level scalars of gnnjets.graphs.features
    # (log E, log pT, |eta|, log counts)]: handed to the heads, never to the projector of the
    # contrastive loss, so the loss cannot take the jet's energy or counts as a shortcut
    append_jet_features: bool = True

    def __post_init__(self):
        _check_choice("kind", self.kind, KINDS)
        parts = pooling_parts(self.pooling)
        for part in parts:
            _check_choice("pooling", part, POOLINGS)
        if len(set(parts)) != len(parts):
            raise ModelConfigError(f"model config 'pooling' repeats a pooling: {self.pooling!r}")
        for name in ("global_context", "append_jet_features"):
            if not isinstance(getattr(self, name), bool):
                raise ModelConfigError(f"model config {name!r} must be true or false, not {getattr(self, name)!r}")
        _check_choice("aggregation", self.aggregation, AGGREGATIONS)
        for name in ("node_features", "hidden", "layers", "embedding_dim", "heads"):
            _check_positive_int(name, getattr(self, name))
        if self.kind == "gatv2" and self.hidden % self.heads:
            raise ModelConfigError(f"model config 'hidden' ({self.hidden}) must be a multiple of 'heads' "
                                   f"({self.heads}) for kind='gatv2': each head gets hidden / heads channels")
        _check_number("attention_energy_beta", self.attention_energy_beta, low=0.0)
        _check_number("dropout", self.dropout, low=0.0, high=1.0)
        _check_number("edge_angle_scale", self.edge_angle_scale, low=0.0, low_inclusive=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def learned_dim(self) -> int:
        """Width of the pooled, learned part of h: ``embedding_dim`` per pooling."""
        return self.embedding_dim * len(pooling_parts(self.pooling))

    @property
    def output_dim(self) -> int:
        """Width of h as the heads see it: the learned part, plus the jet scalars if appended."""
        return self.learned_dim + (NUM_JET_FEATURES if self.append_jet_features else 0)

    @classmethod
    def from_dict(cls, values: dict | None) -> BackboneConfig:
        """From a plain dict; missing keys take their defaults, unknown keys fail with the close matches."""
        if values is not None and not isinstance(values, dict):
            raise ModelConfigError(f"a backbone config must be a mapping, not {values!r}")
        values = dict(values or {})
        check_known_keys(values, [f.name for f in fields(cls)], "backbone config", ModelConfigError)
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig:
    """Backbone plus projection head: everything :func:`~gnnjets.nn.model.build_model` needs."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    projection_dim: int = 128  # D_z, the space of the contrastive loss; SimCLR found the loss insensitive to
    # it above ~64, and 128 matches h so z can keep h's rank
    projection_hidden: int = 128  # width of the projector's hidden layers (= D by default, as in SimCLR)
    projection_layers: int = 2  # linear layers of the projector: SimCLR's 2-layer MLP; 1 is a linear head

    def __post_init__(self):
        if isinstance(self.backbone, dict):
            object.__setattr__(self, "backbone", BackboneConfig.from_dict(self.backbone))
        if not isinstance(self.backbone, BackboneConfig):
            raise ModelConfigError(f"model config 'backbone' must be a mapping, not {self.backbone!r}")
        for name in ("projection_dim", "projection_hidden", "projection_layers"):
            _check_positive_int(name, getattr(self, name))

    def to_dict(self) -> dict:
        """Plain data (a nested dict of numbers and strings): YAML/JSON-safe, accepted by :meth:`from_dict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> ModelConfig:
        """From a dict (e.g. a parsed YAML file); an optional top-level ``model:`` section is unwrapped."""
        if values is not None and not isinstance(values, dict):
            raise ModelConfigError(f"a model config must be a mapping, not {values!r}")
        values = dict(values or {})
        if set(values) == {"model"}:
            values = dict(values["model"] or {})
        check_known_keys(values, [f.name for f in fields(cls)], "model config", ModelConfigError)
        return cls(**{**values, "backbone": BackboneConfig.from_dict(values.get("backbone"))})

    @classmethod
    def preset(cls, name: str, **backbone_overrides) -> ModelConfig:
        """``"cpu"``: the defaults; ``"gpu"``: hidden 128, 4 layers (2.6x the cost per jet of "cpu", measured
        on CPU; not yet tuned on a GPU). Keyword arguments override backbone fields, e.g.
        ``preset("gpu", kind="gatv2")``."""
        presets = {"cpu": {}, "gpu": {"hidden": 128, "layers": 4}}
        if name not in presets:
            raise ModelConfigError(f"model preset must be one of {', '.join(presets)}, not {name!r}")
        check_known_keys(backbone_overrides, [f.name for f in fields(BackboneConfig)], "backbone config",
                         ModelConfigError)
        return cls(backbone=replace(BackboneConfig(), **{**presets[name], **backbone_overrides}))
