"""Exceptions raised while reading jet files; each message names the file and the fix."""

from __future__ import annotations


class JetFileNotFoundError(FileNotFoundError):
    """A path (or glob) given to the reader matches no file."""


class MissingTreeError(ValueError):
    """The file exists but holds no TTree of the expected name."""


class MissingBranchError(ValueError):
    """A branch the schema (or the mapping) needs is not in the tree."""


class NonFiniteValueError(ValueError):
    """A float branch holds NaN or inf; the message names the file, entry and branch."""


class EmptySelectionError(ValueError):
    """The files, or the requested entry range, contain no entries."""


class MappingError(ValueError):
    """A YAML branch mapping is malformed: unknown key, wrong type, unknown schema name."""


class UnreadableFileError(ValueError):
    """The path exists but is not a ROOT file uproot can open."""


class UnknownBranchError(ValueError):
    """``branches=`` names something that is not a schema branch."""
