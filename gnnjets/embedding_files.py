"""Embedding files: h and its ids written atomically as a ROOT friend tree, ``.npz`` or Parquet, and read back.

The format follows the suffix (``.root``, ``.npz``, ``.parquet``/``.pq``) or an explicit ``format``;
a suffix that names no format (``out.csv``) is refused rather than written as ROOT under that name.
The JSON provenance (checkpoint and its signature, inputs, graph config) travels inside the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from gnnjets.base.outputs import OutputPathError, atomic_output
from gnnjets.io.schema import PROVENANCE_KEY

#: the name of the TTree written by :func:`write_embeddings`
EMBEDDING_TREE = "embedding"
#: output formats of :func:`write_embeddings`, and the file suffixes that imply them
FORMATS = ("root", "npz", "parquet")
SUFFIX_FORMATS = {".root": "root", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
#: entries per basket of the embedding tree: ~25 MB of h at D = 128
_BASKET_ENTRIES = 50_000


def output_format(path: str | Path, format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else from the suffix.

    A suffix that names no format (``out.csv``) without ``format``, and a ``format`` that
    contradicts a known suffix (``out.npz`` with ``"root"``), are refused: nothing is written in a
    format its name does not say.
    """
    suffix = Path(path).suffix.lower()
    implied = SUFFIX_FORMATS.get(suffix)
    if format is None:
        if implied is None:
            raise OutputPathError(f"output {path}: {'the suffix ' + repr(suffix) if suffix else 'no suffix'} names no "
                                  f"embedding format; use .root (a friend tree), .npz or .parquet "
                                  f"(e.g. {Path(path).with_suffix('.root')}), or give the format explicitly")
        return implied
    if format not in FORMATS:
        raise OutputPathError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if implied is not None and implied != format:
        raise OutputPathError(f"output {path} has the suffix of {implied} but the format asked for is {format}; "
                              f"rename it (e.g. {Path(path).with_suffix('.' + format)}) or drop the format")
    return format


def write_embeddings(path: str | Path, h: np.ndarray, ids: dict, *, format: str | None = None,
                     provenance: dict | None = None) -> Path:
    """Write h and its ids to ``path`` atomically (temp name in the same folder, renamed when complete).

    Formats (``format``, default from the suffix, else ROOT):

    ``root``
        a TTree :data:`EMBEDDING_TREE` with one entry per row: ``h`` (fixed-size ``float[D]``) and
        one branch per id. With one row per input entry it is a friend of the input tree; the JSON
        ``provenance`` is stored as a string next to it.
    ``npz``
        arrays ``h`` and the ids, plus ``provenance`` (a JSON string); ``numpy.load`` reads it
        without pickle.
    ``parquet``
        one record per row (``h``: a fixed-size list) via ``awkward.to_parquet``; the provenance
        is the array parameter ``gnnjets_provenance``.
    """
    path = Path(path)
    format = output_format(path, format)
    h = np.ascontiguousarray(h, dtype=np.float32)
    if h.ndim != 2:
        raise ValueError(f"h must be a 2-D array (rows, D), not of shape {h.shape}")
    ids = {name: np.asarray(values) for name, values in ids.items()}
    for name, values in ids.items():
        if values.shape != (len(h),):
            raise ValueError(f"ids[{name!r}] has shape {values.shape}, h has {len(h)} rows")
    text = json.dumps(provenance or {}, sort_keys=True)
    with atomic_output(path) as tmp:
        if format == "root":
            with uproot.recreate(tmp) as file:
                types = {"h": np.dtype((np.float32, (h.shape[1],))), **{k: v.dtype for k, v in ids.items()}}
                file.mktree(EMBEDDING_TREE, types, title=f"gnnjets embedding h (D = {h.shape[1]})")
                for start in range(0, len(h), _BASKET_ENTRIES):
                    stop = start + _BASKET_ENTRIES
                    file[EMBEDDING_TREE].extend({"h": h[start:stop], **{k: v[start:stop] for k, v in ids.items()}})
                file[PROVENANCE_KEY] = text
        elif format == "npz":
            with open(tmp, "wb") as handle:  # a handle: savez would append .npz to a name
                np.savez(handle, h=h, **ids, provenance=np.array(text))
        else:
            records = ak.zip({"h": ak.from_numpy(h), **ids}, depth_limit=1)
            ak.to_parquet(ak.with_parameter(records, "gnnjets_provenance", text), tmp)
    return path


def read_embeddings(path: str | Path, *, format: str | None = None) -> tuple[np.ndarray, dict]:
    """(h, ids) from a file written by :func:`write_embeddings` (format from the suffix unless given)."""
    path = Path(path)
    format = output_format(path, format)
    if not path.is_file():
        raise FileNotFoundError(f"no such embedding file: {path}")
    if format == "root":
        with uproot.open(path) as file:
            if EMBEDDING_TREE not in file:
                raise ValueError(f"{path} holds no TTree {EMBEDDING_TREE!r}; was it written by gnnjets-embed?")
            columns = file[EMBEDDING_TREE].arrays(library="np")
    elif format == "npz":
        with np.load(path, allow_pickle=False) as data:
            columns = {name: data[name] for name in data.files if name != "provenance"}
    else:
        records = ak.from_parquet(path)
        columns = {name: ak.to_numpy(records[name]) for name in records.fields}
    h = np.asarray(columns.pop("h"), dtype=np.float32)
    return h, columns
