"""Downstream metrics: ROC AUC and background rejection for taggers; response and resolution for regression.

Classification (``qg``, ``top``): label 1 is the signal (quark for q/g, top for top tagging).
Background rejection at a signal efficiency is ``1 / ε_b(ε_s)``, read off the ROC curve by linear
interpolation of ε_b in ε_s (scikit-learn's ``roc_curve``); AUC is ``roc_auc_score``.

Regression (``energy``): the response ``R = E_pred / E_true`` in bins of ``E_true``. Per bin:
median; the IQR width ``(q75 − q25) / 1.349`` (σ of a Gaussian with that IQR) and the half-width of
the central 68% interval ``(q84 − q16) / 2``; each also divided by the median (the relative
resolution, which a global scale factor does not change and so compares calibrated and
uncalibrated methods fairly).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

#: signal efficiencies at which background rejection is reported
SIGNAL_EFFICIENCIES = (0.5, 0.3)
#: bins with fewer jets than this are reported with NaN quantiles (too few to quote a resolution)
MIN_JETS_PER_BIN = 20


def _check_pair(a, b, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or b.ndim != 1 or len(a) != len(b):
        raise ValueError(f"{names[0]} and {names[1]} must be 1-D arrays of one length, got shapes {a.shape} and {b.shape}")
    for name, values in zip(names, (a, b)):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"{name} holds {int((~np.isfinite(values)).sum())} non-finite value(s)")
    return a, b


def rejection_at_efficiency(label, score, efficiency: float) -> float:
    """``1 / ε_b`` at signal efficiency ``efficiency`` (inf when no background passes)."""
    label, score = _check_pair(label, score, ("label", "score"))
    if not 0 < efficiency <= 1:
        raise ValueError(f"signal efficiency must be in (0, 1], not {efficiency}")
    fpr, tpr, _ = roc_curve(label, score)
    eps_b = float(np.interp(efficiency, tpr, fpr))
    return float("inf") if eps_b <= 0 else 1.0 / eps_b


def classification_metrics(label, score, efficiencies=SIGNAL_EFFICIENCIES) -> dict:
    """AUC, ``rejection@ε`` for each signal efficiency, and the class counts."""
    label, score = _check_pair(label, score, ("label", "score"))
    classes = set(np.unique(label).tolist())
    if classes != {0, 1}:
        raise ValueError(f"classification metrics need labels 0 and 1 both present, got {sorted(classes)}")
    fpr, tpr, _ = roc_curve(label, score)
    out = {"auc": float(roc_auc_score(label, score))}
    for eff in efficiencies:
        eps_b = float(np.interp(eff, tpr, fpr))
        out[f"rejection@{eff:g}"] = float("inf") if eps_b <= 0 else 1.0 / eps_b
    out["n_signal"] = int((label == 1).sum())
    out["n_background"] = int((label == 0).sum())
    return out


def response_summary(response) -> dict:
    """Median, IQR/1.349 and 68% half-width of ``response`` (absolute and relative to the median)."""
    response = np.asarray(response, dtype=np.float64)
    if len(response) < MIN_JETS_PER_BIN:
        nan = float("nan")
        return {"n": int(len(response)), "median": nan, "iqr_sigma": nan, "width68": nan, "resolution_iqr": nan,
                "resolution68": nan}
    q16, q25, q50, q75, q84 = np.quantile(response, [0.16, 0.25, 0.5, 0.75, 0.84])
    iqr_sigma, width68 = (q75 - q25) / 1.349, (q84 - q16) / 2
    return {"n": int(len(response)), "median": float(q50), "iqr_sigma": float(iqr_sigma), "width68": float(width68),
            "resolution_iqr": float(iqr_sigma / q50), "resolution68": float(width68 / q50)}


def response_table(e_pred, e_true, bins) -> dict:
    """Response ``E_pred/E_true`` in bins of ``E_true``: ``{"bins": [{lo, hi, ...summary}], "all": summary}``.

    Jets outside the bin range count only in ``all``.
    """
    e_pred, e_true = _check_pair(e_pred, e_true, ("E_pred", "E_true"))
    bins = np.asarray(bins, dtype=np.float64)
    if bins.ndim != 1 or len(bins) < 2 or np.any(np.diff(bins) <= 0):
        raise ValueError(f"energy bins must be at least two increasing edges, not {bins.tolist()}")
    if np.any(e_true <= 0):
        raise ValueError("E_true must be positive")
    response = e_pred / e_true
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        inside = (e_true >= lo) & (e_true < hi)
        rows.append({"lo": float(lo), "hi": float(hi), **response_summary(response[inside])})
    return {"bins": rows, "all": response_summary(response)}
