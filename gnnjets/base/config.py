"""Typed configs: YAML or dicts -> dataclasses, ``--set`` overrides, errors that name the field and the fix.

Every tool's config is a tree of dataclasses whose fields carry defaults, so a YAML file states
only what differs. :func:`from_dict` builds such a tree from nested dicts, converting and checking
each value against its annotation and refusing unknown keys with the close match;
:func:`apply_overrides` applies command-line ``section.key=value`` strings (values parsed as
YAML); :func:`read_config_file` reads the mapping in a YAML file with errors that say where the
file is wrong. Every problem is a :class:`ConfigError`, whose message the command-line tools
print as one line (exit code 2).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from gnnjets.base.checks import is_int, is_number
from gnnjets.base.errors import GnnjetsError
from gnnjets.base.hints import close_matches
from gnnjets.base.resources import shipped_config, shipped_configs


class ConfigError(GnnjetsError, ValueError):
    """A config file or value that cannot be used; the message names the field and the fix."""


def _check_type(value, annotation, where: str):
    origin = typing.get_origin(annotation)
    if annotation is typing.Any:
        return value
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping of keys to values, not {value!r}")
        return value
    if annotation is float:
        if not is_number(value):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        return float(value)
    if annotation is int:
        if not is_int(value):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
        return int(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {value!r}")
        return value
    if annotation is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {value!r}")
        if annotation is list:
            return value
        (item_type,) = typing.get_args(annotation)
        return [_check_type(item, item_type, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        errors = []
        for arg in args:  # the first type that accepts the value (e.g. str | list[str])
            try:
                return _check_type(value, arg, where)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    raise TypeError(f"unsupported config annotation {annotation!r} at {where}")


def from_dict(cls, data, where: str = "config"):
    """Build dataclass ``cls`` from a nested dict, refusing unknown keys with a suggestion."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys to values, not {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"unknown key '{where}.{key}'{close_matches(str(key), names, end='')} "
                              f"Known keys: {', '.join(names)}")
        kwargs[key] = _check_type(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def set_dotted(data: dict, dotted: str, value) -> dict:
    """``data[a][b][c] = value`` for ``dotted = "a.b.c"``, making sections as needed; in place."""
    keys = dotted.strip().split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: '{key}' is not a section")
    node[keys[-1]] = value
    return data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like section.key=value, e.g. optim.max_steps=500")
        dotted, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(err, 'problem', err)})") from None
        try:
            set_dotted(data, dotted, value)
        except ConfigError as err:
            raise ConfigError(f"--set {item!r}: {err}") from None
    return data


def read_config_file(path: str | Path, *, folder: str, example: str) -> dict:
    """The mapping in a YAML config file, given by path or by the short name of a shipped one; errors
    name the file and the fix.

    Args:
        path: a YAML file, or the name of a shipped config of this kind (``qg`` for
            ``configs/sim/qg.yaml``, found in an installed package too: :mod:`gnnjets.base.resources`).
        folder: where the shipped configs of this kind live (``configs/sim/``; its last part is the kind).
        example: what the mapping holds, e.g. ``"process: ..., jets: ..."`` (said when it is not one).
    """
    kind = Path(folder).name
    if not Path(path).exists() and shipped_config(kind, str(path)) is not None:
        path = shipped_config(kind, str(path))
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        shipped = shipped_configs(kind)
        raise ConfigError(f"config file {path} does not exist{close_matches(path.stem, shipped, end='')}; give a "
                          f"path or the name of a shipped one ({', '.join(shipped) or 'none'}; {folder})") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a YAML file (see {folder})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {getattr(err, 'strerror', None) or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping ({example}), not {type(data).__name__}")
    return data
