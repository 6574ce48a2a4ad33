"""Neural networks on jet graphs: input encoders, message-passing blocks, poolings, backbone,
projection head and the contrastive model (docs/design.md).

    from gnnjets.nn import ModelConfig, build_model
    model = build_model(ModelConfig.preset("cpu"), seed=0)
    h, z = model(batch)          # h (B, 128): the representation; z (B, 128): the loss's input
"""

from gnnjets.nn.backbone import Backbone
from gnnjets.nn.config import AGGREGATIONS, KINDS, POOLINGS, BackboneConfig, ModelConfig, ModelConfigError
from gnnjets.nn.edgeconv import EdgeConvBlock
from gnnjets.nn.encoders import EdgeEncoder, NodeEncoder
from gnnjets.nn.gatv2 import GATv2Block
from gnnjets.nn.heads import HEAD_KINDS, BackboneWithHead, Head, HeadConfig
from gnnjets.nn.model import ContrastiveModel, build_model
from gnnjets.nn.pooling import (
    IR_SAFE_POOLINGS, AttentionPooling, EnergyWeightedPooling, MeanPooling, SumPooling, build_pooling,
)
from gnnjets.nn.projection import ProjectionHead

__all__ = [
    "AGGREGATIONS", "KINDS", "POOLINGS", "IR_SAFE_POOLINGS", "HEAD_KINDS", "BackboneWithHead", "Head", "HeadConfig",
    "AttentionPooling", "Backbone", "BackboneConfig", "ContrastiveModel", "EdgeConvBlock", "EdgeEncoder",
    "EnergyWeightedPooling", "GATv2Block", "MeanPooling", "ModelConfig", "ModelConfigError", "NodeEncoder",
    "ProjectionHead", "SumPooling", "build_model", "build_pooling",
]
