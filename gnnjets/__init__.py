"""gnnjets: self-supervised representations of detector-level jets with graph neural networks.

Kept import-light: ``detector_sim`` imports :mod:`gnnjets.io.schema` and must not pull in torch.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # lazy: `from gnnjets import Embedder` imports torch only when asked for
    if name == "Embedder":
        from gnnjets.embed import Embedder

        return Embedder
    raise AttributeError(f"module 'gnnjets' has no attribute {name!r}")
