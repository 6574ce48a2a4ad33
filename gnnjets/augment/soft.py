"""Soft smearing: positions of soft nodes resampled around themselves (JetCLR, arXiv:2108.04253, Sec. 2, eq. 9)."""

from __future__ import annotations

import torch

from gnnjets.augment.base import JetTransform
from gnnjets.base.kinematics import wrap_phi
from gnnjets.graphs.features import with_positions


class SoftSmear(JetTransform):
    """Move each node by Gaussian noise of width sigma = lambda_soft / E in eta and in phi.

    Soft radiation is universal (it factorises from the hard process), so the representation
    should not care where soft energy lands; hard nodes barely move (a 100 GeV cell: 1 mrad).
    Seed 001 uses pT with Lambda_soft = 100 MeV; here the node's ``energy`` (cell E, track p) sets
    the width, floored at ``energy_floor_gev`` so that near-zero and negative-noise cells move by
    at most ``lambda_soft_gev / energy_floor_gev`` (1 rad by default, JetCLR's pT clip of 0.1 GeV).
    Energies and edges are unchanged; ``x``'s angle columns and ``edge_attr`` follow ``pos``.

    Args:
        lambda_soft_gev: Lambda_soft [GeV].
        energy_floor_gev: smallest energy used in sigma [GeV].
        generator, scaling: see :class:`~gnnjets.augment.base.JetTransform`.
    """

    def __init__(self, lambda_soft_gev: float = 0.1, energy_floor_gev: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("lambda_soft_gev", lambda_soft_gev), ("energy_floor_gev", energy_floor_gev)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name!r} must be a non-negative number, not {value!r}")
        if energy_floor_gev <= 0:
            raise ValueError(f"'energy_floor_gev' must be positive, not {energy_floor_gev!r}")
        self.lambda_soft_gev = float(lambda_soft_gev)
        self.energy_floor_gev = float(energy_floor_gev)

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):
        sigma = self.lambda_soft_gev / data.energy.double().clamp(min=self.energy_floor_gev)  # (N,)
        noise = torch.randn(data.num_nodes, 2, generator=generator, dtype=torch.float64)  # (N, 2)
        noise = noise.to(data.pos.device)
        moved = data.pos.double() + sigma[:, None] * noise
        moved = torch.stack([moved[:, 0], wrap_phi(moved[:, 1])], dim=1)
        return with_positions(data, moved.to(data.pos.dtype), self.scaling, update_derived)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lambda_soft_gev={self.lambda_soft_gev:.3g}, "
                f"energy_floor_gev={self.energy_floor_gev:.3g})")
