"""The configs and branch mappings shipped with the package, found alike in a clone and in an installed wheel.

The YAML files live in the repository's ``configs/`` folder (``sim/``, ``pretrain/``, ``downstream/``,
``graphs/``, ``schemas/``); a wheel carries the same tree as package data under ``gnnjets/configs/``
(``pyproject.toml`` maps the folder into the package). :func:`shipped_config` finds a file by kind
and short name (``shipped_config("sim", "qg")``), so every ``--config`` option accepts ``qg`` as
well as a path, inside the clone or not.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: the kinds of shipped files (sub-folders of ``configs/``)
KINDS = ("sim", "pretrain", "downstream", "graphs", "schemas", "study")


def config_root() -> Path:
    """The folder that holds the shipped configs: ``gnnjets/configs`` in a wheel, ``configs/`` in a clone."""
    packaged = Path(str(resources.files("gnnjets"))) / "configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"  # a clone, installed editable or not at all


def shipped_configs(kind: str) -> tuple[str, ...]:
    """Short names of the shipped files of ``kind`` (``"sim"`` -> ``("qcd", "qg", "top")``)."""
    folder = config_root() / kind
    return tuple(sorted(path.stem for path in folder.glob("*.yaml"))) if folder.is_dir() else ()


def shipped_config(kind: str, name: str) -> Path | None:
    """The shipped file ``name`` (a short name, with or without ``.yaml``) of ``kind``; ``None`` if there is none."""
    name = str(name)
    if "/" in name or "\\" in name:
        return None
    stem = name[:-len(".yaml")] if name.endswith(".yaml") else name
    path = config_root() / kind / f"{stem}.yaml"
    return path if path.is_file() else None
