"""The dependency-free base that both ``gnnjets`` and ``detector_sim`` build on.

Nothing here imports torch, awkward, uproot or anything of ``gnnjets`` outside this package:
only the standard library, numpy and PyYAML. Each concept has one home:

- :mod:`~gnnjets.base.hints`: "did you mean ...?" close matches and unknown-key checks;
- :mod:`~gnnjets.base.checks`: integer / number / flag checks with errors that name the argument;
- :mod:`~gnnjets.base.config`: typed configs from dicts and YAML, ``--set`` overrides, :class:`ConfigError`;
- :mod:`~gnnjets.base.detector`: the COCOA-like calorimeter geometry constants (layers, radii, noise, field);
- :mod:`~gnnjets.base.kinematics`: phi wrapping (one convention), Delta R, the helix, perigee conversion;
- :mod:`~gnnjets.base.outputs`: outputs written atomically and output paths checked before any work;
- :mod:`~gnnjets.base.logs`: how the command-line tools set up :mod:`logging` (``-v``/``--quiet``).
"""
