"""Exceptions raised while reading jet files; each message names the file and the fix."""

from __future__ import annotations

from gnnjets.base.errors import GnnjetsError, UnreadableFileError

__all__ = ["JetFileNotFoundError", "MissingTreeError", "MissingBranchError", "InvalidValueError", "NonFiniteValueError",
           "OutOfRangeValueError", "BranchTypeError", "EmptySelectionError", "MappingError", "UnreadableFileError",
           "UnknownBranchError", "SchemaVersionError"]


class JetFileNotFoundError(GnnjetsError, FileNotFoundError):
    """A path (or glob) given to the reader matches no file."""


class MissingTreeError(GnnjetsError, ValueError):
    """The file exists but holds no TTree of the expected name."""


class MissingBranchError(GnnjetsError, ValueError):
    """A branch the schema (or the mapping) needs is not in the tree."""


class InvalidValueError(GnnjetsError, ValueError):
    """A branch holds values no detector can produce; the message names the file, entry and branch."""


class NonFiniteValueError(InvalidValueError):
    """A float branch holds NaN or inf; the message names the file, entry and branch."""


class OutOfRangeValueError(InvalidValueError):
    """A finite value outside the branch's physical range (:data:`gnnjets.io.schema.LIMITS`): a corrupt
    basket, a unit mix-up, or a sentinel such as -999; the message names the file, entry and range."""


class BranchTypeError(InvalidValueError):
    """A branch of the wrong shape or type: lists where one number per entry is expected, or the reverse,
    lists of one collection with different lengths, or values that are not numbers."""


class EmptySelectionError(GnnjetsError, ValueError):
    """The files, or the requested entry range, contain no entries."""


class MappingError(GnnjetsError, ValueError):
    """A YAML branch mapping is malformed: unknown key, wrong type, unknown schema name."""


class UnknownBranchError(GnnjetsError, ValueError):
    """``branches=`` names something that is not a schema branch."""


class SchemaVersionError(GnnjetsError, ValueError):
    """A file was written with another ROOT schema version than the one a model was trained on."""
