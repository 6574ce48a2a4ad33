"""Downstream heads on a representation h: linear (the linear classifier test) or a small MLP.

A head standardises its input with a fixed mean and scale (set from the training embeddings, so
that one learning rate suits any backbone) and maps it to one output per jet, a logit or a
regression value in target units (the output is ``net(...) * out_scale + out_shift``, so the net
itself sees a standardised target). Both are buffers: they travel with the state dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

HEAD_KINDS = ("linear", "mlp")


@dataclass
class HeadConfig:
    kind: str = "linear"  # "linear" (the single-layer perceptron of replica SSL, arXiv:2503.11632) or "mlp"
    hidden: int = 128  # MLP width
    layers: int = 2  # MLP hidden layers
    dropout: float = 0.0  # MLP dropout after each hidden layer

    def __post_init__(self):
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head.kind must be one of {', '.join(HEAD_KINDS)}, not {self.kind!r}")
        if self.hidden < 1 or self.layers < 1:
            raise ValueError(f"head.hidden and head.layers must be >= 1, not {self.hidden} and {self.layers}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"head.dropout must be in [0, 1), not {self.dropout}")


class Head(nn.Module):
    """``(B, D) -> (B,)``: standardise, then a linear map or an MLP, then rescale to target units."""

    def __init__(self, in_dim: int, config: HeadConfig | None = None):
        super().__init__()
        config = config or HeadConfig()
        self.config = config
        if config.kind == "linear":
            self.net = nn.Linear(in_dim, 1)
        else:
            layers: list[nn.Module] = []
            width = in_dim
            for _ in range(config.layers):
                layers += [nn.Linear(width, config.hidden), nn.SiLU()]
                if config.dropout:
                    layers.append(nn.Dropout(config.dropout))
                width = config.hidden
            layers.append(nn.Linear(width, 1))
            self.net = nn.Sequential(*layers)
        self.register_buffer("in_mean", torch.zeros(in_dim))
        self.register_buffer("in_scale", torch.ones(in_dim))
        self.register_buffer("out_shift", torch.zeros(()))
        self.register_buffer("out_scale", torch.ones(()))

    @torch.no_grad()
    def set_input_scaling(self, features: Tensor) -> None:
        """Standardise inputs with the mean and standard deviation of ``features`` (n, D) (constant columns: scale 1)."""
        std = features.std(dim=0)
        self.in_mean.copy_(features.mean(dim=0))
        self.in_scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    @torch.no_grad()
    def set_output_scaling(self, target: Tensor) -> None:
        """For regression: the net predicts ``(target - mean) / std``."""
        self.out_shift.copy_(target.mean())
        self.out_scale.copy_(target.std().clamp_min(1e-8))

    def forward(self, h: Tensor) -> Tensor:
        return self.net((h - self.in_mean) / self.in_scale).squeeze(-1) * self.out_scale + self.out_shift


class BackboneWithHead(nn.Module):
    """A backbone and a head as one model (supervised from scratch, or fine-tuning): batch -> (B,)."""

    def __init__(self, backbone: nn.Module, head: Head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, batch) -> Tensor:
        return self.head(self.backbone(batch))
