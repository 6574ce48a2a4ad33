"""detector_sim: Pythia8 jets through a fast COCOA-like calorimeter + tracker, as seeded replicas."""

from gnnjets import __version__  # one version for both packages (pyproject reads it there)

__all__ = ["__version__"]
