"""The ablation and label-efficiency study: ``gnnjets-study --config configs/study/<name>.yaml``.

:mod:`~gnnjets.study.config` (what a study is), :mod:`~gnnjets.study.runner` (pretraining the
arms, fitting every method on every label subset, resumable), :mod:`~gnnjets.study.data` (the
jets and features), :mod:`~gnnjets.study.methods` (how each method fits N labels),
:mod:`~gnnjets.study.report`, :mod:`~gnnjets.study.targets` and :mod:`~gnnjets.study.plots`.
"""
