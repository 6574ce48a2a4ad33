"""Unknown-key checks shared by the typed configs: errors that name the close match."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def check_known_keys(keys: Iterable[str], allowed: Iterable[str], kind: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error("unknown <kind> key 'x'; did you mean 'y'? Allowed: ...")`` for the first key not allowed."""
    allowed = list(allowed)
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise error(f"unknown {kind} key {key!r}{hint} Allowed: {', '.join(allowed)}")
