"""Reading jet replicas from ROOT files: the schema contract, the chunked reader, foreign-file mappings.

>>> from gnnjets.io import read_jets                       # doctest: +SKIP
>>> for chunk in read_jets("data/qg_*.root"):             # awkward records, one per jet replica
...     chunk.cell_e, chunk.source_file_index, chunk.entry
"""

from gnnjets.io import schema
from gnnjets.io.errors import (EmptySelectionError, JetFileNotFoundError, MappingError, MissingBranchError,
                               MissingTreeError, NonFiniteValueError)
from gnnjets.io.mapping import BranchMapping, load_mapping
from gnnjets.io.reader import JetChunks, count_entries, read_all, read_jets

__all__ = [
    "schema", "read_jets", "read_all", "count_entries", "JetChunks", "BranchMapping", "load_mapping",
    "EmptySelectionError", "JetFileNotFoundError", "MappingError", "MissingBranchError", "MissingTreeError",
    "NonFiniteValueError",
]
