"""detector_sim: Pythia8 jets through a fast COCOA-like calorimeter + tracker, as seeded replicas."""

__version__ = "0.1.0"
