"""Downstream tasks on jet representations: q/g tagging, top tagging, jet-energy regression.

:mod:`gnnjets.tasks.tasks` defines what each task predicts and how it is scored
(:mod:`~gnnjets.tasks.metrics`, :mod:`~gnnjets.tasks.plots`); :mod:`~gnnjets.tasks.baselines`
holds the non-GNN baselines (EFPs, EM-scale sum, per-layer calibration). The training loops are in
:mod:`gnnjets.train.downstream`, the command line in ``gnnjets-downstream``.
"""
