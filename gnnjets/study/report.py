"""The study's report, written from its fits alone: results.json, results.md, plots.

For every task, method and label count the key metrics are summarised as mean ± standard
deviation over the label subsets: AUC and background rejection at 50 % signal efficiency for the
taggers, the relative resolution (IQR/1.349 of E_pred/E_true over its median) and the median
response for the jet energy. ``results.md`` holds one table per task and the check of each
target against the headline arm; the plots are the label-efficiency curves with their ±1 sigma
bands and the ablation bars at the reference label count.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from gnnjets.base.outputs import atomic_output
from gnnjets.tasks.report import headline  # noqa: F401 - re-exported for the runner's log lines
from gnnjets.tasks.tasks import get_task

#: per task: (metric key in a fit's metrics, label in tables, higher is better)
KEY_METRICS = {
    "qg": [("auc", "AUC", True), ("rejection@0.5", "1/eps_g(0.5)", True)],
    "top": [("auc", "AUC", True), ("rejection@0.5", "1/eps_b(0.5)", True)],
    "energy": [("resolution", "resolution", False), ("median", "median response", None)],
}
#: the label count of the ablation bars and of the ablation target
REFERENCE_LABELS = 1000


def _value(task: str, metrics: dict, key: str) -> float:
    if task == "energy":
        whole = metrics["all"]
        return float(whole["resolution_iqr"] if key == "resolution" else whole[key])
    return float(metrics[key])


def aggregate(fits: list[dict]) -> dict:
    """``{task: {method: {labels: {metric: {mean, std, n, disjoint}}}}}`` over the label subsets."""
    groups = defaultdict(list)
    for fit in fits:
        groups[(fit["task"], fit["method"], fit["labels"])].append(fit)
    out: dict = defaultdict(lambda: defaultdict(dict))
    for (task, method, labels), members in sorted(groups.items()):
        entry = {}
        for key, _, _ in KEY_METRICS[task]:
            values = np.array([_value(task, f["metrics"], key) for f in members])
            values = values[np.isfinite(values)]
            entry[key] = {"mean": float(values.mean()) if len(values) else math.nan,
                          "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "n": int(len(values))}
        entry["disjoint"] = all(f.get("disjoint", False) for f in members)
        out[task][method][int(labels)] = entry
    return {task: dict(methods) for task, methods in out.items()}


def _cell(entry: dict | None, key: str, task: str) -> str:
    if entry is None:
        return ""
    value = entry[key]
    if task == "energy" and key == "resolution":
        return f"{100 * value['mean']:.2f} ± {100 * value['std']:.2f}%"
    digits = 1 if key.startswith("rejection") else 3
    return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"


def markdown(summary: dict) -> str:
    lines = [f"# Study `{summary['name']}`", "",
             f"Mean ± standard deviation over {summary['subsets']} label subsets per count (disjoint where the pool "
             f"allows; `*`: overlapping subsets or all labels, the spread then comes from the seeds). Test sets: "
             + ", ".join(f"{task} {n} jets" for task, n in summary["test_jets"].items()) + ".", ""]
    for task, methods in summary["aggregate"].items():
        counts = sorted({n for entries in methods.values() for n in entries})
        for key, label, _ in KEY_METRICS[task]:
            lines += [f"## {task}: {label}", "", "| method | " + " | ".join(
                f"{n}{'' if all(methods[m].get(n, {}).get('disjoint', True) for m in methods) else '*'}" for n in counts)
                + " |", "|---" * (len(counts) + 1) + "|"]
            for method, entries in methods.items():
                lines.append(f"| {method} | " + " | ".join(_cell(entries.get(n), key, task) for n in counts) + " |")
            lines.append("")
    if summary.get("targets"):
        lines += ["## Targets", "", "| target | status | detail |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['status']} | {t['detail']} |" for t in summary["targets"]]
        lines.append("")
    lines += ["## Time", "", *[f"- {name}: {seconds / 60:.1f} min" for name, seconds in summary["timings"].items()], ""]
    return "\n".join(lines)


def _test_jets(task: str, fits: list[dict]) -> int:
    """The size of a task's test set, as its metrics recorded it."""
    for fit in fits:
        if fit["task"] == task:
            metrics = fit["metrics"]
            return int(metrics["all"]["n"] if task == "energy" else metrics["n_signal"] + metrics["n_background"])
    return 0


def write_report(config, fits: list[dict], out_dir: Path, *, timings: dict, notes: dict) -> dict:
    """Aggregate the fits, check the targets, write results.json, results.md and the plots."""
    from gnnjets.study.plots import plot_ablation, plot_label_efficiency
    from gnnjets.study.targets import check_targets

    aggregated = aggregate(fits)
    summary = {"name": config.name, "config": config.to_dict(), "subsets": config.subsets,
               "test_jets": {task: _test_jets(task, fits) for task in aggregated},
               "aggregate": aggregated, "notes": notes, "timings": timings, "fits": fits}
    summary["targets"] = check_targets(config, aggregated)
    with atomic_output(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=float, allow_nan=True))
    with atomic_output(out_dir / "results.md") as tmp:
        tmp.write_text(markdown(summary))
    files = {}
    for task, methods in aggregated.items():
        get_task(task)  # a known task
        try:
            files[f"label_efficiency_{task}"] = plot_label_efficiency(task, methods, out_dir)
            files[f"ablation_{task}"] = plot_ablation(task, methods, [a.name for a in config.arms_of(task)], out_dir,
                                                      REFERENCE_LABELS)
        except Exception as err:  # noqa: BLE001 - plots never cost results
            import logging

            logging.getLogger(__name__).warning("plots of %s not written: %s: %s", task, type(err).__name__, err)
    summary["files"] = {name: [str(p) for p in paths] for name, paths in files.items() if paths}
    with atomic_output(out_dir / "results.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=float, allow_nan=True))
    return summary
