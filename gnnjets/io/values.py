"""Values no detector can produce: NaN, inf, and numbers outside a branch's physical range.

:func:`check_values` runs on every chunk the reader yields (and on arrays given to the
:class:`~gnnjets.Embedder` directly), with one vectorised comparison per column; the slow search
for the first bad value runs only on failure. The ranges are :data:`gnnjets.io.schema.LIMITS`,
widened or narrowed by a mapping's ``limits:``.
"""

from __future__ import annotations

from collections.abc import Callable

import awkward as ak
import numpy as np

from gnnjets.io import schema
from gnnjets.io.arrays import flat_values
from gnnjets.io.errors import NonFiniteValueError, OutOfRangeValueError

_FLOAT_NAMES = frozenset(field.name for field in schema.ALL_FIELDS if np.dtype(field.dtype).kind == "f")


def check_values(columns: dict, mapping, where: Callable[[int], tuple[str, str]]) -> None:
    """Raise for the first NaN, inf or out-of-range value of ``columns`` (schema name -> array).

    Args:
        mapping: the :class:`~gnnjets.io.mapping.BranchMapping` (its ``limits`` over the schema's).
        where: record number -> ``(where, skip)``: where the record is (``"at data/x.root:jets entry
            7"``) and how to leave it out (``"skip the entry with ..."``), for the message.
    """
    for name, values in columns.items():
        limits = mapping.limit(name)
        if limits is None and name not in _FLOAT_NAMES:
            continue
        jagged = isinstance(values, ak.Array)
        flat = flat_values(values) if jagged else values
        ok = np.isfinite(flat) if limits is None else (flat >= limits[0]) & (flat <= limits[1])
        if ok.all():
            continue
        first_bad = int(np.flatnonzero(~ok)[0])
        value = flat[first_bad]
        if jagged:
            ends = np.cumsum(ak.to_numpy(ak.num(values, axis=1)))
            record = int(np.searchsorted(ends, first_bad, side="right"))
            position = first_bad - (int(ends[record - 1]) if record else 0)
            what = f"element {position} of {name!r}"
        else:
            record, what = first_bad, f"branch {name!r}"
        place, skip = where(record)
        if not np.isfinite(value):
            raise NonFiniteValueError(f"{value} in {what} {place}: the file holds non-finite values; regenerate it, "
                                      f"or {skip}")
        unit = schema.FIELDS_BY_NAME[name].unit
        raise OutOfRangeValueError(
            f"{value:.6g} in {what} {place}: outside the physical range {limits[0]:g}..{limits[1]:g}"
            f"{' ' + unit if unit else ''} of {name!r}; the file holds corrupt values (a damaged basket, wrong "
            f"units?); regenerate it, {skip}, or set 'limits: {{{name}: [low, high]}}' in a branch mapping")
