"""The learning-rate schedule shared by pretraining and supervised training."""

from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_factor: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_factor`` at ``max_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(max_steps - warmup_steps, 1), 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
