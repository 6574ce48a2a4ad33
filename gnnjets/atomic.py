"""Outputs that are never half-written: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
    name = f"{path.stem}.tmp-{os.getpid()}{path.suffix}" if keep_suffix else f"{path.name}.tmp-{os.getpid()}"
    tmp = path.with_name(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
