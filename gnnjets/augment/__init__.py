"""Physics augmentations of jet graphs (JetCLR, arXiv:2108.04253, Sec. 2), one transform per file, composable and seeded.

>>> recipe = default_augmentations()
>>> recipe                                             # doctest: +NORMALIZE_WHITESPACE
JetCompose([
  RotateJet(max_angle=6.283),
  ScaleJetEnergy(max_log_scale=0.1)
])

Every transform but :class:`ScaleJetEnergy` (a common energy scale) conserves the total ``energy``
of each graph; every one recomputes what depends on what it
changed (angle / energy columns of ``x``, ``edge_attr``), keeps ``edge_index`` valid, works on one
graph or a whole ``Batch`` (independent draws per graph) and never modifies its input. A
:class:`JetCompose` (PyG's ``Compose`` for jet transforms) gives the same output as its steps one by
one, recomputing ``edge_attr`` and the angle columns of ``x`` once instead of after every move.
"""

from __future__ import annotations

from gnnjets.base.hints import close_matches
from gnnjets.augment.base import JetTransform, configure_transform
from gnnjets.augment.collinear import CollinearSplit, split_nodes
from gnnjets.augment.compose import JetCompose
from gnnjets.augment.rotate import RotateJet, energy_weighted_axis, rotate_jet
from gnnjets.augment.scale import ScaleJetEnergy, scale_jet_energy
from gnnjets.augment.soft import SoftSmear
from gnnjets.augment.translate import TranslateJet, translate_jet

#: transform name (as in configs) -> class
TRANSFORMS = {cls.__name__: cls for cls in (CollinearSplit, SoftSmear, RotateJet, TranslateJet, ScaleJetEnergy)}


def default_augmentations(**kwargs) -> JetCompose:
    """The package's default: a rotation about the jet axis and a common energy scale per view.

    Symmetries that keep what the tasks need: the representation study (docs/results.md) found
    JetCLR's translations, smearing and collinear splits (:func:`jetclr_augmentations`) worse for
    a local message-passing network on fixed calorimeter cells. ``kwargs`` go to the transforms
    (``generator=``, ``scaling=``).
    """
    return JetCompose([RotateJet(**kwargs), ScaleJetEnergy(**kwargs)])


def jetclr_augmentations(**kwargs) -> JetCompose:
    """The JetCLR recipe (arXiv:2108.04253) on graphs: collinear splits, soft smearing, rotation,
    translation; the version-0.1 default. ``kwargs`` go to the transforms."""
    return JetCompose([CollinearSplit(**kwargs), SoftSmear(**kwargs), RotateJet(**kwargs), TranslateJet(**kwargs)])


def augmentations_from_config(entries: list[dict] | None) -> JetCompose | None:
    """A :class:`JetCompose` from plain data: ``[{"name": "RotateJet", "max_angle": 3.14}, ...]`` (``None``: none)."""
    if entries is None:
        return None
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"augmentations must be a list of {{name: ..., <arguments>}} mappings, not {entries!r}")
    transforms = []
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry:
            raise TypeError(f"each augmentation needs a 'name' ({', '.join(TRANSFORMS)}), not {entry!r}")
        arguments = dict(entry)
        name = arguments.pop("name")
        if name not in TRANSFORMS:
            raise KeyError(f"unknown augmentation {name!r}{close_matches(str(name), TRANSFORMS, end='')} "
                           f"Available: {', '.join(TRANSFORMS)}")
        try:
            transforms.append(TRANSFORMS[name](**arguments))
        except TypeError as error:
            raise TypeError(f"augmentation {name}: {error}") from None
    return JetCompose(transforms)


__all__ = ["JetTransform", "JetCompose", "CollinearSplit", "SoftSmear", "RotateJet", "TranslateJet", "ScaleJetEnergy",
           "split_nodes", "scale_jet_energy",
           "rotate_jet", "translate_jet", "energy_weighted_axis", "configure_transform", "default_augmentations",
           "jetclr_augmentations",
           "augmentations_from_config", "TRANSFORMS"]
