"""Outputs that are never half-written, and output paths checked before any work is done.

A file is written under a temporary name beside its target and renamed only when complete
(:func:`atomic_output`): an interrupted run never leaves a file that looks finished. The temporary
name carries the writer's process id, so a later run can recognise, and remove, the leftovers of a
process that died (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gnnjets.base.errors import GnnjetsError


class OutputPathError(GnnjetsError, ValueError):
    """The output path cannot be written; the message says why and what to do."""


def _temporary_name(path: Path, pid: int, keep_suffix: bool) -> str:
    return f"{path.stem}.tmp-{pid}{path.suffix}" if keep_suffix else f"{path.name}.tmp-{pid}"


@contextmanager
def atomic_output(path: str | Path, *, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` when the block completes and is
    removed if the block raises.

    ``keep_suffix``: the temporary name ends in ``path``'s suffix (``x.tmp-PID.png``), for writers
    that choose the format from it or append one (matplotlib, ``numpy.save``); otherwise it is
    ``x.png.tmp-PID``.

    >>> with atomic_output("runs/results.json") as tmp:        # doctest: +SKIP
    ...     tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(_temporary_name(path, os.getpid(), keep_suffix))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by processes that no longer run; return them.

    Matches both temporary-name forms of :func:`atomic_output`; a file whose writer still runs
    (another job writing the same output right now) is left alone.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^(?:{re.escape(path.name)}\.tmp-(\d+)|{re.escape(path.stem)}\.tmp-(\d+){re.escape(path.suffix)})$")
    removed = []
    for candidate in folder.iterdir():
        match = pattern.match(candidate.name)
        if not match:
            continue
        pid = int(match.group(1) or match.group(2))
        if pid != os.getpid() and not _pid_alive(pid):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def check_output_path(path: str | Path, *, suffixes: tuple[str, ...] | None = (".root",), option: str = "--out",
                      overwrite: bool = True) -> Path:
    """Fail early, before any work, when ``path`` cannot be written.

    Args:
        suffixes: the allowed suffixes (``None``: any name).
        option: how the user gave the path, for the message (``--out``).
        overwrite: whether an existing file may be replaced; ``False`` refuses it and says how to
            ask for it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file name such as "
                              f"{path / ('out' + (suffixes[0] if suffixes else '.root'))}")
    if suffixes is not None and path.suffix not in suffixes:
        raise OutputPathError(f"{option} {path}: the output must be a {' or '.join(suffixes)} file, e.g. "
                              f"{path.with_suffix(suffixes[0])}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path}: folder {folder} does not exist; create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK):
        raise OutputPathError(f"{option} {path}: folder {folder} is not writable; choose another output path")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{option} {path} exists; remove it, choose another path, or pass --overwrite")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path} exists and is not writable; remove it or choose another path")
    return path


def check_run_folder(folder: str | Path, *, resume: bool = False, overwrite: bool = False,
                     option: str = "the run folder") -> Path:
    """Fail early, before any work, when a new run would overwrite an earlier one in ``folder``.

    A folder that does not exist or is empty is always fine. One that holds files is refused unless
    the run continues it (``resume``) or replaces its files (``overwrite``); the message says which
    flag does what. ``resume`` into a folder with nothing in it is refused too: nothing to resume.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option} {folder} is a file; give a folder")
    contents = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if resume and not contents:
        raise OutputPathError(f"--resume: nothing to resume in {option} {folder} ("
                              f"{'empty' if folder.is_dir() else 'it does not exist'}); run without --resume")
    if contents and not resume and not overwrite:
        shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
        raise OutputPathError(f"{option} {folder} already holds an earlier run ({shown}); pass --resume to continue "
                              f"it or --overwrite to replace its files (resume=True / overwrite=True in Python), or "
                              f"choose another folder")
    return folder
