"""The targets a study checks, each against the headline method (the representation as shipped).

- q/g: headline ≥ scratch + 0.02 AUC at every N ≤ 1,000; never more than 0.005 below scratch at
  larger N; above EFP + observables at every N.
- top: headline 1/eps_b(0.5) ≥ 1.5 x EFP + observables at every N; ≥ scratch at N ≤ 1,000.
- energy: headline resolution ≤ 0.7 x the calibration with tracks at every N, and ≤ scratch at
  N ≤ 2,000.
- ablation (q/g AUC at N = 1,000): replicas + augmentations beat each alone, and each beats the
  no-invariance arm, by more than two standard deviations (sqrt(sigma_a^2 + sigma_b^2)).

A comparison needs both methods at that N; one that cannot be made says so ("not run").
"""

from __future__ import annotations

import math


def _get(aggregated: dict, task: str, method: str, n: int, key: str):
    entry = aggregated.get(task, {}).get(method, {}).get(n)
    return None if entry is None else (entry[key]["mean"], entry[key]["std"])


def _compare(aggregated, task, a, b, key, counts, test, describe) -> tuple[str, str]:
    rows, failed, missing = [], [], []
    for n in counts:
        x, y = _get(aggregated, task, a, n, key), _get(aggregated, task, b, n, key)
        if x is None or y is None:
            missing.append(n)
            continue
        ok = test(x[0], y[0])
        rows.append(f"N={n}: {describe(x[0], y[0])}{'' if ok else ' ✗'}")
        if not ok:
            failed.append(n)
    if not rows:
        return "not run", f"{a} or {b} missing"
    status = "met" if not failed and not missing else ("missed" if failed else "partly run")
    return status, "; ".join(rows) + (f"; not run at N={missing}" if missing else "")


def headline_method(config, task: str) -> str:
    """The method whose targets are checked on ``task``: ``config.headline[task]``, or the last arm
    evaluated on the task (with the jet scalars when the study appends them)."""
    if task in config.headline:
        return config.headline[task]
    last = config.arms_of(task)[-1].name
    return f"{last}+scalars" if config.jet_scalars else last


def check_targets(config, aggregated: dict) -> list[dict]:
    out = []

    def add(target, result):
        out.append({"target": target, "status": result[0], "detail": result[1]})

    def counts(task, method):
        return sorted(aggregated.get(task, {}).get(method, {}))

    if "qg" in aggregated:
        head = headline_method(config, "qg")
        small = [n for n in counts("qg", head) if n <= 1000]
        large = [n for n in counts("qg", head) if n > 1000]
        add(f"q/g: {head} ≥ scratch + 0.02 AUC at N ≤ 1000", _compare(
            aggregated, "qg", head, "scratch", "auc", small, lambda a, b: a >= b + 0.02,
            lambda a, b: f"{a:.3f} vs {b:.3f}"))
        add(f"q/g: {head} ≥ scratch − 0.005 AUC at N > 1000", _compare(
            aggregated, "qg", head, "scratch", "auc", large, lambda a, b: a >= b - 0.005,
            lambda a, b: f"{a:.3f} vs {b:.3f}"))
        add(f"q/g: {head} > EFP + observables (AUC) at every N", _compare(
            aggregated, "qg", head, "efp+observables", "auc", counts("qg", head), lambda a, b: a > b,
            lambda a, b: f"{a:.3f} vs {b:.3f}"))
    if "top" in aggregated:
        head = headline_method(config, "top")
        add(f"top: {head} 1/eps_b(0.5) ≥ 1.5 × EFP + observables at every N", _compare(
            aggregated, "top", head, "efp+observables", "rejection@0.5", counts("top", head),
            lambda a, b: a >= 1.5 * b, lambda a, b: f"{a:.1f} vs 1.5 × {b:.1f}"))
        add(f"top: {head} ≥ scratch (1/eps_b) at N ≤ 1000", _compare(
            aggregated, "top", head, "scratch", "rejection@0.5", [n for n in counts("top", head) if n <= 1000],
            lambda a, b: a >= b, lambda a, b: f"{a:.1f} vs {b:.1f}"))
    if "energy" in aggregated:
        head = headline_method(config, "energy")
        add(f"energy: {head} resolution ≤ 0.7 × calibration with tracks", _compare(
            aggregated, "energy", head, "calibration", "resolution", counts("energy", head),
            lambda a, b: a <= 0.7 * b, lambda a, b: f"{100 * a:.2f}% vs 0.7 × {100 * b:.2f}%"))
        add(f"energy: {head} resolution ≤ scratch at N ≤ 2000", _compare(
            aggregated, "energy", head, "scratch", "resolution", [n for n in counts("energy", head) if n <= 2000],
            lambda a, b: a <= b, lambda a, b: f"{100 * a:.2f}% vs {100 * b:.2f}%"))
    roles = getattr(config, "ablation", {}) or {}
    if "qg" in aggregated and {"none", "replicas", "augmentations", "both"} <= set(roles):
        def beats(a, b):
            x, y = _get(aggregated, "qg", roles[a], 1000, "auc"), _get(aggregated, "qg", roles[b], 1000, "auc")
            if x is None or y is None:
                return None
            margin = 2 * math.hypot(x[1], y[1])
            return x[0] - y[0] > margin, f"{roles[a]} {x[0]:.3f} − {roles[b]} {y[0]:.3f} = {x[0] - y[0]:+.3f} (2σ {margin:.3f})"
        pairs = [("both", "replicas"), ("both", "augmentations"), ("replicas", "none"), ("augmentations", "none")]
        results = [beats(a, b) for a, b in pairs]
        if any(r is None for r in results):
            out.append({"target": "ablation at N = 1000", "status": "not run", "detail": "an arm lacks N = 1000"})
        else:
            out.append({"target": "ablation: both > each alone > none by > 2σ (q/g AUC, N = 1000)",
                        "status": "met" if all(r[0] for r in results) else "missed",
                        "detail": "; ".join(r[1] + ("" if r[0] else " ✗") for r in results)})
    return out
