"""Exceptions raised while reading jet files; each message names the file and the fix."""

from __future__ import annotations

from gnnjets.base.errors import GnnjetsError


class JetFileNotFoundError(GnnjetsError, FileNotFoundError):
    """A path (or glob) given to the reader matches no file."""


class MissingTreeError(GnnjetsError, ValueError):
    """The file exists but holds no TTree of the expected name."""


class MissingBranchError(GnnjetsError, ValueError):
    """A branch the schema (or the mapping) needs is not in the tree."""


class NonFiniteValueError(GnnjetsError, ValueError):
    """A float branch holds NaN or inf; the message names the file, entry and branch."""


class EmptySelectionError(GnnjetsError, ValueError):
    """The files, or the requested entry range, contain no entries."""


class MappingError(GnnjetsError, ValueError):
    """A YAML branch mapping is malformed: unknown key, wrong type, unknown schema name."""


class UnreadableFileError(GnnjetsError, ValueError):
    """The path exists but is not a ROOT file uproot can open."""


class UnknownBranchError(GnnjetsError, ValueError):
    """``branches=`` names something that is not a schema branch."""


class SchemaVersionError(GnnjetsError, ValueError):
    """A file was written with another ROOT schema version than the one a model was trained on."""
