"""Argument checks shared by every public function: the message names the argument and what arrived.

``bool`` is refused where a number is expected (``True`` is an ``int`` in Python, never what a
user meant by a batch size). Numpy integers and floats count as numbers.
"""

from __future__ import annotations

import math
import numbers


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """True for finite Python and numpy reals, False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, *,
              error: type[Exception] = ValueError) -> int:
    """``int(value)`` if it is an integer within [``minimum``, ``maximum``]; else ``error`` naming ``name``."""
    if not is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise error(f"{name!r} must be an int{_range(minimum, maximum)}, not {value!r}")
    return int(value)


def check_number(name: str, value, minimum: float | None = None, maximum: float | None = None, *,
                 exclusive_minimum: bool = False, error: type[Exception] = ValueError) -> float:
    """``float(value)`` if it is a finite number within the bounds; else ``error`` naming ``name``.

    ``exclusive_minimum``: ``value`` must be strictly above ``minimum``.
    """
    below = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum) \
        if is_number(value) else False
    if not is_number(value) or below or (maximum is not None and value > maximum):
        bounds = _range(minimum, maximum, exclusive_minimum)
        raise error(f"{name!r} must be a finite number{bounds}, not {value!r}")
    return float(value)


def check_bool(name: str, value, *, error: type[Exception] = TypeError) -> bool:
    """``value`` if it is ``True`` or ``False``; else ``error`` naming ``name``."""
    if not isinstance(value, bool):
        raise error(f"{name!r} must be True or False, not {value!r}")
    return value


def _range(minimum, maximum, exclusive_minimum: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if exclusive_minimum else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
