"""gnnjets: self-supervised representations of detector-level jets with graph neural networks.

Kept import-light: ``detector_sim`` imports :mod:`gnnjets.io.schema` and must not pull in torch.
"""

__version__ = "0.1.0"
