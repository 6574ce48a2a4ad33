"""Small conversions between jagged awkward arrays and flat numpy arrays, used by every reader.

A *jagged* array here is a one-level ``awkward.Array`` of lists of numbers (``cell_e`` of a
chunk: one list per jet); its *flat* form is the numpy array of all its numbers in order, and
``ak.num(jagged, axis=1)`` the list lengths that rebuild it.
"""

from __future__ import annotations

import awkward as ak
import numpy as np


def flat_values(values: ak.Array) -> np.ndarray:
    """The elements of a one-level jagged awkward array of numbers, as one numpy array.

    Arrays as read (offsets into a plain buffer) give a view of the buffer without a copy; any
    other layout goes through ``ak.flatten``.
    """
    layout = values.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data)
        content = np.asarray(layout.content.data)
        if content.ndim == 1 and len(offsets):
            return content[offsets[0]:offsets[-1]]
    return ak.to_numpy(ak.flatten(values, axis=None))


def flat(array) -> np.ndarray:
    """The numbers of an array, jagged or not, as one flat numpy array."""
    array = ak.Array(array) if not isinstance(array, ak.Array) else array
    if array.ndim > 1:
        array = ak.flatten(array, axis=None)
    return ak.to_numpy(array)


def jagged_like(values: np.ndarray, like: ak.Array) -> ak.Array:
    """``values`` (flat) cut into lists of the lengths of ``like``'s lists."""
    return ak.unflatten(values, ak.num(like, axis=1))
