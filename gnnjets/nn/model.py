"""The contrastive model: backbone + projection head, and the factory that builds it from a config.

A training step reads ``loss(model(view_a)[1], model(view_b)[1])``; downstream code uses
``model(batch)[0]`` (or ``model.backbone(batch)``), the representation h.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import BackboneConfig, ModelConfig
from gnnjets.nn.projection import ProjectionHead


class ContrastiveModel(nn.Module):
    """``forward(batch) -> (h, z)``: h = backbone(batch) is the representation, z = projector(h) feeds
    the loss only.

    Args:
        backbone: a :class:`~gnnjets.nn.backbone.Backbone` (or any module batch -> (B, D)).
        projector: a :class:`~gnnjets.nn.projection.ProjectionHead` (or any module (B, D) -> (B, D_z)).
        config: the :class:`~gnnjets.nn.config.ModelConfig` it was built from, if any; kept so that
            checkpoints can store it (``model.config.to_dict()``).

    Shapes:
        batch of B graphs -> h (B, D), z (B, D_z)
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, config: ModelConfig | None = None):
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.config = config

    def forward(self, batch) -> tuple[Tensor, Tensor]:
        encode = getattr(self.backbone, "encode", self.backbone)
        h = encode(batch)  # (B, D): the learned part only, never the appended jet scalars
        z = self.projector(h)  # (B, D_z)
        return h, z


def build_model(config: ModelConfig | BackboneConfig | dict | None = None, *,
                seed: int | None = None) -> ContrastiveModel:
    """A :class:`ContrastiveModel` from a config (default: :class:`~gnnjets.nn.config.ModelConfig`, the CPU sizes).

    Args:
        config: a ModelConfig, a dict of one (as saved by ``to_dict``), or a BackboneConfig (default
            projection head).
        seed: if given, the weights are initialised from ``torch.manual_seed(seed)`` inside
            ``torch.random.fork_rng``: the same seed gives the same weights, and the global RNG is
            left as it was. ``None`` draws from the global RNG.
    """
    if config is None or isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    elif isinstance(config, BackboneConfig):
        config = ModelConfig(backbone=config)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, a BackboneConfig, a dict or None, not {config!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, not {seed!r}")

    def build() -> ContrastiveModel:
        backbone = Backbone(config.backbone)
        projector = ProjectionHead(config.backbone.learned_dim, config.projection_dim, config.projection_hidden,
                                   config.projection_layers)
        return ContrastiveModel(backbone, projector, config)

    if seed is None:
        return build()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()
