"""What every jet augmentation shares: a seeded generator, the feature scaling, batch awareness.

A :class:`JetTransform` works on one :class:`~gnnjets.graphs.JetGraph` or on a whole PyG
``Batch`` of them; on a batch every graph gets its own random parameters (its own angle, shift,
...), exactly as if the transform had been applied to the graphs one by one, only without a
Python loop. Inputs are never modified: the transform works on a shallow copy and replaces, never
writes into, the tensors it changes.

Randomness comes only from ``self.generator`` (a ``torch.Generator``), or from the generator
passed to a single call (``transform(data, generator=g)``). With DataLoader workers the dataset
gives each worker and each replica view its own generator, seeded from
``(dataset seed, epoch, worker id, view)`` through :func:`configure_transform`, so that the same
seed and the same number of workers reproduce the same augmentations.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.transforms import BaseTransform, Compose

from gnnjets.graphs.features import FeatureScaling


class JetTransform(BaseTransform):
    """Base of the jet augmentations (see the module docstring).

    Random numbers are drawn on the CPU (``generator`` is a CPU generator) and moved to the data's
    device, so the transforms also run on GPU tensors; the loader applies them in its CPU workers.

    Args:
        generator: the source of randomness; default a ``torch.Generator()`` with torch's fixed
            default seed (deterministic, but the same for every instance: pass your own).
        scaling: the feature scaling of the graphs, needed to recompute the derived columns of
            ``x``; the datasets set their graph config's scaling through :func:`configure_transform`.
    """

    #: whether the transform changes ``pos`` (and so, unless told not to, ``x`` and ``edge_attr``)
    moves_nodes = True

    def __init__(self, *, generator: torch.Generator | None = None, scaling: FeatureScaling | None = None):
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"'generator' must be a torch.Generator, not {generator!r}")
        if scaling is not None and not isinstance(scaling, FeatureScaling):
            raise TypeError(f"'scaling' must be a FeatureScaling, not {scaling!r}")
        self.generator = generator if generator is not None else torch.Generator()
        self.scaling = scaling if scaling is not None else FeatureScaling()

    def __getstate__(self):
        # the generator travels as plain bytes: a torch.Generator pickles its state as a tensor,
        # which torch.multiprocessing would share through a file descriptor (fails with spawn).
        # Transforms that shared one generator unpickle with equal but separate ones; the
        # datasets give every worker fresh generators anyway (configure_transform).
        state = self.__dict__.copy()
        state["generator"] = bytes(self.generator.get_state().numpy())
        return state

    def __setstate__(self, state):
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(state["generator"]), dtype=torch.uint8))
        self.__dict__.update(state, generator=generator)

    def __call__(self, data, generator: torch.Generator | None = None, *, update_derived: bool = True):
        """The transformed copy of ``data``.

        ``update_derived=False`` lets a transform that moves nodes leave the angle columns of ``x``
        and ``edge_attr`` stale (``pos`` and everything else is exact): for a caller that moves
        the nodes again and recomputes them once, as :class:`~gnnjets.augment.JetCompose` does.
        """
        # shallow copy: the transform replaces tensors, it never writes into the input's
        return self.forward(copy.copy(data), generator if generator is not None else self.generator,
                            update_derived=update_derived)

    def forward(self, data, generator: torch.Generator, update_derived: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError


def graph_ids(data) -> tuple[Tensor, int]:
    """(graph of each node (N,), number of graphs): ``data.batch`` for a Batch, all zeros for one graph."""
    if isinstance(data, Batch):
        return data.batch, data.num_graphs
    return torch.zeros(data.num_nodes, dtype=torch.int64, device=data.pos.device), 1


def uniform(size: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    """(size,) float64 uniform draws in [low, high)."""
    return low + (high - low) * torch.rand(size, generator=generator, dtype=torch.float64)


def configure_transform(transform, *, generator: torch.Generator | None = None,
                        scaling: FeatureScaling | None = None):
    """A copy of ``transform`` (a JetTransform or a ``Compose`` of them, nested) whose jet
    transforms use ``generator`` and ``scaling``; other transforms are kept as they are."""
    if transform is None:
        return None
    if isinstance(transform, Compose):
        out = copy.copy(transform)
        out.transforms = [configure_transform(t, generator=generator, scaling=scaling) for t in transform.transforms]
        return out
    if isinstance(transform, JetTransform):
        out = copy.copy(transform)
        if generator is not None:
            out.generator = generator
        if scaling is not None:
            out.scaling = scaling
        return out
    return transform
