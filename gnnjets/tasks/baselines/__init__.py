"""The non-GNN baselines of the downstream tasks, one per module.

- :mod:`~gnnjets.tasks.baselines.efp`: energy flow polynomials of the cells (arXiv:1712.07124),
  with a linear head, for the tagging tasks;
- :mod:`~gnnjets.tasks.baselines.calibration`: the EM-scale jet energy and a per-layer linear
  calibration, for the energy task;
- :mod:`~gnnjets.tasks.baselines.reading`: how their per-entry features are read with the ids
  that place each row.

Nothing is imported here: energyflow costs ~0.5 s to import and only the EFP baseline needs it.
"""
