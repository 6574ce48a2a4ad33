"""What each downstream task predicts from a jet and how its predictions are scored.

A task turns the per-jet attributes of a dataset (``label``, ``truth_e``, ``jet_e``, ...) into the
training target of a head and the head's raw output back into a physics prediction:

- ``qg``: quark (label 1, signal) vs gluon jets; the head outputs a logit; AUC and gluon
  rejection ``1/ε_g`` at quark efficiency 0.5 and 0.3.
- ``top``: top (label 1, signal) vs QCD jets; the same metrics with QCD rejection.
- ``energy``: the particle-level jet energy ``truth_e``. The head predicts the log of the
  correction to the reconstructed EM-scale energy, ``E_pred = jet_e · exp(output)`` (the form of
  a jet calibration: the backbone has to know the jet's composition, not its raw scale), or with
  ``target: absolute`` the log energy itself, ``E_pred = exp(output)``. Scored by the response
  ``E_pred/E_true`` in bins of ``E_true``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnnjets.tasks.metrics import classification_metrics, response_table

ENERGY_TARGETS = ("ratio", "absolute")
#: default E_true bin edges [GeV] for the energy task (q/g jets with 100 < pT < 1000 GeV, |η| < 1.7)
DEFAULT_ENERGY_BINS = (100.0, 150.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1000.0, 1500.0, 2500.0)


@dataclass(frozen=True)
class Task:
    """One downstream task: its kind, class names and the conversions between jets, targets and predictions."""

    name: str
    kind: str  # "classification" or "regression"
    signal: str = ""
    background: str = ""
    energy_target: str = "ratio"

    @property
    def classification(self) -> bool:
        return self.kind == "classification"

    def usable(self, attrs: dict) -> np.ndarray:
        """Mask of jets the task can use (the energy task needs a positive reco and truth energy)."""
        n = len(attrs["label"])
        if self.classification:
            return np.ones(n, dtype=bool)
        mask = attrs["truth_e"] > 0
        if self.energy_target == "ratio":
            mask &= attrs["jet_e"] > 0
        return mask

    def target(self, attrs: dict) -> np.ndarray:
        """The head's training target, float32 (n,)."""
        if self.classification:
            label = np.asarray(attrs["label"])
            bad = sorted(set(np.unique(label).tolist()) - {0, 1})
            if bad:
                raise ValueError(f"task {self.name}: labels must be 0 or 1, found {bad}")
            return label.astype(np.float32)
        truth = np.asarray(attrs["truth_e"], dtype=np.float64)
        if self.energy_target == "ratio":
            return np.log(truth / np.asarray(attrs["jet_e"], dtype=np.float64)).astype(np.float32)
        return np.log(truth).astype(np.float32)

    def predict(self, output, attrs: dict) -> np.ndarray:
        """Head output (n,) -> signal score (probability) or predicted energy [GeV]."""
        output = np.asarray(output, dtype=np.float64)
        if self.classification:
            return 1.0 / (1.0 + np.exp(-output))
        if self.energy_target == "ratio":
            return np.asarray(attrs["jet_e"], dtype=np.float64) * np.exp(output)
        return np.exp(output)

    def evaluate(self, prediction, attrs: dict, *, energy_bins=DEFAULT_ENERGY_BINS) -> dict:
        """Metrics of predictions (scores or energies) on jets with attributes ``attrs``."""
        if self.classification:
            return classification_metrics(np.asarray(attrs["label"]), prediction)
        return response_table(prediction, np.asarray(attrs["truth_e"], dtype=np.float64), energy_bins)

    def bootstrap(self, prediction, attrs: dict, *, resamples: int = 30, seed: int = 0) -> dict:
        """Standard deviations of the headline metrics over bootstrap resamples of the test jets.

        Classification: ``auc``, ``rejection@0.5``; regression: ``median`` and ``resolution_iqr``
        of all jets. A resample that cannot give a metric (one class only, too few jets) is skipped.
        """
        rng = np.random.default_rng(seed)
        prediction = np.asarray(prediction)
        samples: dict[str, list] = {}
        for _ in range(resamples):
            pick = rng.integers(0, len(prediction), len(prediction))
            picked = {name: np.asarray(values)[pick] for name, values in attrs.items()}
            try:
                metrics = self.evaluate(prediction[pick], picked, energy_bins=(1.0, 2.0))
            except ValueError:
                continue
            values = ({k: metrics[k] for k in ("auc", "rejection@0.5")} if self.classification
                      else {k: metrics["all"][k] for k in ("median", "resolution_iqr")})
            for key, value in values.items():
                samples.setdefault(key, []).append(value)
        return {key: float(np.std([v for v in values if np.isfinite(v)])) if np.isfinite(values).any() else None
                for key, values in samples.items()}


def get_task(name: str, *, energy_target: str = "ratio") -> Task:
    """The task called ``name`` (``qg``, ``top`` or ``energy``)."""
    if energy_target not in ENERGY_TARGETS:
        raise ValueError(f"energy target must be one of {', '.join(ENERGY_TARGETS)}, not {energy_target!r}")
    if name == "qg":
        return Task("qg", "classification", signal="quark", background="gluon")
    if name == "top":
        return Task("top", "classification", signal="top", background="QCD")
    if name == "energy":
        return Task("energy", "regression", energy_target=energy_target)
    raise ValueError(f"unknown task {name!r}; choose qg, top or energy")


TASK_NAMES = ("qg", "top", "energy")
