"""Where jets come from: local files, globs, URLs and ``file.root:tree`` specs, checked before reading.

Every path goes to uproot as the user gave it; only local paths are checked here first (a missing
file or a glob that matches nothing is named with the close matches). A URL (``root://``,
``https://``) is left to uproot, and an unreachable one becomes one
:class:`~gnnjets.io.errors.UnreadableFileError` line (:func:`unreadable`).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

from gnnjets.base.hints import close_matches
from gnnjets.io.errors import JetFileNotFoundError, UnreadableFileError

PathLike = str | os.PathLike
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_OBJECT_PATH = re.compile(r"^(.*?\.root):(?!//)([^:]+)$")


def is_remote(path: str) -> bool:
    """True for a URL (``root://``, ``https://``, ...) that uproot opens over the network."""
    return bool(_URL.match(str(path)))


def split_object_path(spec: str) -> tuple[str, str | None]:
    """``("data/x.root", "jets")`` for ``"data/x.root:jets"``; ``(spec, None)`` without a tree part.

    The colon of a URL's scheme (``root://``) is not a separator; the tree part follows ``.root:``.
    """
    match = _OBJECT_PATH.match(str(spec))
    return (match.group(1), match.group(2)) if match else (str(spec), None)


def one_line(error: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, at most ``limit`` characters (uproot's run to pages)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def expand_paths(paths: PathLike | Sequence[PathLike]) -> tuple[str, ...]:
    """File paths from a path, a glob or a list of them; globs sorted, order otherwise kept."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    elif not isinstance(paths, Sequence):
        raise TypeError(f"paths must be a str, a Path or a list of them, not {type(paths).__name__}")
    if len(paths) == 0:
        raise JetFileNotFoundError("no input files given: pass a .root path, a glob such as 'data/*.root' or a list")
    files = []
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"paths must be str or Path, not {path!r}")
        path = os.fspath(path)
        if is_remote(path):
            files.append(path)  # uproot opens it; an unreachable one fails there, in one line
            continue
        local, tree = split_object_path(path)
        suffix = f":{tree}" if tree else ""
        if glob.has_magic(local):
            matches = sorted(glob.glob(local))
            if not matches:
                folder = Path(local).parent
                raise JetFileNotFoundError(f"no file matches {local!r}; check the pattern "
                                           f"(folder {folder} {'exists' if folder.is_dir() else 'does not exist'})")
            files.extend(match + suffix for match in matches)
        elif not Path(local).is_file():
            raise JetFileNotFoundError(_not_found_message(Path(local)))
        else:
            files.append(path)
    return tuple(files)


def _not_found_message(path: Path) -> str:
    if path.is_dir():
        return f"{path} is a folder; give the .root files in it, e.g. '{path / '*.root'}'"
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return f"no such file: {path} (folder {folder} does not exist)"
    siblings = sorted(p.name for p in folder.iterdir() if p.suffix == ".root")
    hint = close_matches(path.name, siblings)
    shown = ", ".join(siblings[:10]) + (", ..." if len(siblings) > 10 else "")
    return f"no such file: {path}{hint} ROOT files in {folder}: {shown or 'none'}"


def unreadable(path: str, error: BaseException, what: str = "") -> UnreadableFileError:
    """The package's error for a file uproot cannot read: remote (check the address) or local (damaged)."""
    reason = f"{type(error).__name__}: {one_line(error)}"
    if is_remote(path):
        return UnreadableFileError(f"cannot read {path}{what} ({reason}); check the address, the network and your "
                                   f"credentials (root:// needs the fsspec-xrootd package)")
    return UnreadableFileError(f"{path}{what} is not a readable ROOT file ({reason}): truncated, damaged in a copy, "
                               f"or not ROOT at all; regenerate it or copy it again")
