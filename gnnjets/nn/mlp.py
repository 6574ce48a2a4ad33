"""The multilayer perceptron shared by the encoders, the readout and the projection head."""

from __future__ import annotations

from torch import nn


def mlp(*widths: int, activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """``Linear(widths[0], widths[1]) -> act -> ... -> Linear(widths[-2], widths[-1])``, no activation last.

    No BatchNorm anywhere in :mod:`gnnjets.nn`: it would mix the jets of a batch (a jet's
    representation would depend on its batch mates, and a contrastive loss can exploit that leak).
    SiLU: smooth like GELU at a third of its cost on CPU, and without ReLU's dead units.

    Example: ``mlp(14, 64, 64)`` is ``Linear(14, 64) -> SiLU -> Linear(64, 64)``.
    """
    if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"mlp needs at least two positive int widths, not {widths!r}")
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(activation())
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)
