"""What a file says about itself: the JSON provenance that detector-sim stores beside the jets tree.

The provenance records the ROOT schema version the file was written with; a model trained on
files of one schema version must not silently read files of another (their branches may not mean
what it learned): :func:`check_schema_versions` refuses them. Files without provenance (foreign
files read through a mapping) are not checked.
"""

from __future__ import annotations

import json

import uproot

from gnnjets import __version__
from gnnjets.io.errors import SchemaVersionError
from gnnjets.io.paths import expand_paths, split_object_path
from gnnjets.io.schema import PROVENANCE_KEY, SCHEMA_VERSION


def read_provenance(path) -> dict | None:
    """The provenance dict stored in a file, or ``None`` if it has none or cannot be read.

    A file uproot cannot open also gives ``None``: the reader reports that with its own message.
    """
    try:
        with uproot.open(split_object_path(str(path))[0]) as file:
            if PROVENANCE_KEY not in file:
                return None
            text = str(file[PROVENANCE_KEY])
    except Exception:  # uproot raises many types for non-ROOT content; read_jets explains it
        return None
    try:
        provenance = json.loads(text)
    except ValueError:
        return None
    return provenance if isinstance(provenance, dict) else None


def file_schema_version(path) -> int | None:
    """The ROOT schema version recorded in a file's provenance; ``None`` if it records none (foreign files)."""
    provenance = read_provenance(path)
    return None if provenance is None else provenance.get("schema_version")


def check_schema_versions(paths, schema_version: int, source: str) -> None:
    """Raise :class:`~gnnjets.io.errors.SchemaVersionError` if a file's ROOT schema version (from its
    provenance; files without one are not checked) differs from ``schema_version``, that of ``source``."""
    for file in expand_paths(paths):
        version = file_schema_version(file)
        if version is not None and version != schema_version:
            raise SchemaVersionError(
                f"{file} was written with ROOT schema version {version}, but {source} was trained on schema "
                f"version {schema_version}: its branches may not mean what the backbone learned. Use a "
                f"checkpoint trained on schema-{version} files, or regenerate the file with "
                f"detector-sim of gnnjets {__version__} (schema {SCHEMA_VERSION})")
