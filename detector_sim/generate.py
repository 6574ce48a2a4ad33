"""Event generation: pythia8mc events, truth jets (fastjet anti-kT), labels.

(Interface fixed; the implementation is being written.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TruthEvent:
    """One generated event after the jet selection.

    particles: dict of 1-d numpy arrays, one entry per stable visible particle (neutrinos
        excluded) with |eta| < 4: ``pt, eta, phi, e, m`` [GeV, rad] (float64), ``pdgid`` (int32),
        ``charge`` (float64, in units of e), ``vx, vy, vz`` production vertex [mm] (float64).
    jets: dict of 1-d numpy arrays, one entry per selected truth jet (pT ordered):
        ``pt, eta, phi, e, m`` (float64), ``label`` (int32), ``parton_pdgid`` (int32),
        ``jet_index`` (int32, index among the event's truth jets before selection).
    constituents: list (one per selected jet) of int64 index arrays into ``particles``.
    """

    event_id: int
    particles: dict[str, np.ndarray]
    jets: dict[str, np.ndarray]
    constituents: list[np.ndarray]
