"""Errors that teach: the close match of a misspelt name, and unknown-key checks built on it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: str, choices: Iterable, end: str = ".") -> str:
    """``"; did you mean 'x'?"`` when ``choices`` holds something close to ``word``, else ``end``.

    >>> close_matches("cell_en", ["cell_e", "cell_eta"])
    "; did you mean 'cell_e'?"
    """
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else end


def unknown_name_message(kind: str, name, allowed: Iterable) -> str:
    """``"unknown <kind> 'x'; did you mean 'y'? Allowed: a, b, c"``."""
    allowed = [str(a) for a in allowed]
    return f"unknown {kind} {name!r}{close_matches(str(name), allowed, end='')} Allowed: {', '.join(allowed)}"


def check_known_keys(keys: Iterable, allowed: Iterable, kind: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error("unknown <kind> key 'x'; did you mean 'y'? Allowed: ...")`` for the first key not allowed."""
    allowed = list(allowed)
    for key in keys:
        if key not in allowed:
            raise error(unknown_name_message(f"{kind} key", key, allowed))


def check_choice(name: str, value, choices: Iterable, error: type[Exception] = ValueError):
    """``value`` if it is one of ``choices``; else ``error("'name' must be one of a, b, not 'x'; did you mean ...")``."""
    choices = tuple(choices)
    if value not in choices:
        raise error(f"{name!r} must be one of {', '.join(map(str, choices))}, not {value!r}"
                    f"{close_matches(str(value), choices, end='')}")
    return value
