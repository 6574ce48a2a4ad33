"""The root of the package's exceptions: every error a user can cause and fix derives from it.

A command-line tool catches :class:`GnnjetsError` and prints its message as one line (exit code
2); anything else is a bug and keeps its traceback. Each subclass also derives from the builtin
exception it specialises (``ValueError``, ``FileNotFoundError``, ...), so code that catches those
keeps working.
"""

from __future__ import annotations


class GnnjetsError(Exception):
    """An error the user can fix; the message names the file or field and the fix."""


class UnreadableFileError(GnnjetsError, ValueError):
    """A file exists (or a URL answers) but cannot be read: not a ROOT file, truncated, corrupt baskets,
    or a remote file that cannot be reached. The message names the file, the entries and the fix."""
