"""How big the graphs are: node counts of jets before and after the node budget, and edge counts.

    python -m gnnjets.graphs.node_counts data/qg.root data/top.root --config configs/graphs/cpu.yaml

prints, per file, quantiles of the cells, tracks and nodes per jet replica before the budget
(everything the file holds) and after it (what the graphs keep), and of the edges per graph.
"""

from __future__ import annotations

import argparse
import sys

import awkward as ak
import numpy as np

from gnnjets.graphs.build import GRAPH_BRANCHES, build_graphs
from gnnjets.graphs.config import load_graph_config
from gnnjets.io.reader import read_jets

QUANTILES = (0.0, 0.1, 0.5, 0.9, 0.99, 1.0)


def node_count_report(paths, graph_config=None, *, quantiles=QUANTILES, max_entries: int | None = None,
                      tree: str | None = None, mapping=None) -> dict:
    """Quantiles of graph sizes over the jet replicas of ``paths``.

    Args:
        paths: ROOT file(s).
        graph_config: the budget and edge parameters (GraphConfig, dict, YAML path, None: CPU defaults).
        quantiles: the quantiles to report.
        max_entries: read at most this many entries (default all).

    Returns:
        ``{"entries": n, "quantiles": [...], "cells_before": {...}, "tracks_before": ...,
        "nodes_before", "cells_after", "tracks_after", "nodes_after", "edges_after"}``; each
        statistic maps ``"mean"`` and ``"q<quantile>"`` (e.g. ``"q0.5"``) to a float.
    """
    config = load_graph_config(graph_config)
    columns = {name: [] for name in ("cells_before", "tracks_before", "cells_after", "tracks_after", "edges_after")}
    for chunk in read_jets(paths, tree=tree, mapping=mapping, entry_stop=max_entries, branches=GRAPH_BRANCHES):
        cells = ak.to_numpy(ak.num(chunk["cell_e"], axis=1))
        tracks = ak.to_numpy(ak.num(chunk["track_pt"], axis=1))
        graphs = build_graphs(chunk, config)
        node_counts = graphs.node_counts.numpy()
        cells_after = np.minimum(cells, config.max_cells) if config.max_cells is not None else cells
        columns["cells_before"].append(cells)
        columns["tracks_before"].append(tracks)
        columns["cells_after"].append(cells_after)
        columns["tracks_after"].append(node_counts - cells_after)
        columns["edges_after"].append(graphs.edge_counts.numpy())
    values = {name: np.concatenate(parts) for name, parts in columns.items()}
    values["nodes_before"] = values["cells_before"] + values["tracks_before"]
    values["nodes_after"] = values["cells_after"] + values["tracks_after"]
    report = {"entries": int(len(values["nodes_before"])), "quantiles": list(quantiles)}
    for name in ("cells_before", "tracks_before", "nodes_before", "cells_after", "tracks_after", "nodes_after",
                 "edges_after"):
        stats = {"mean": float(values[name].mean())}
        stats.update({f"q{q:g}": float(v) for q, v in zip(quantiles, np.quantile(values[name], quantiles))})
        report[name] = stats
    return report


def format_report(report: dict) -> str:
    """A text table of :func:`node_count_report`."""
    keys = ["mean"] + [f"q{q:g}" for q in report["quantiles"]]
    lines = [f"{report['entries']} jet replicas", f"{'':>14}" + "".join(f"{key:>9}" for key in keys)]
    for name in ("cells_before", "tracks_before", "nodes_before", "cells_after", "tracks_after", "nodes_after",
                 "edges_after"):
        lines.append(f"{name:>14}" + "".join(f"{report[name][key]:>9.1f}" for key in keys))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Graph sizes before and after the node budget.")
    parser.add_argument("paths", nargs="+", help="ROOT files (each reported on its own)")
    parser.add_argument("--config", default=None, help="graph config YAML (default: the CPU defaults)")
    parser.add_argument("--max-entries", type=int, default=None, help="entries to read per file")
    args = parser.parse_args(argv)
    for path in args.paths:
        print(f"== {path} (graph config: {args.config or 'defaults'})")
        print(format_report(node_count_report(path, args.config, max_entries=args.max_entries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
