"""Experiments at scale: sweep configs, executors (local process pool, Ray), the SQLite results
store, and the correlation studies of [X].

- :mod:`~w2sg.experiments.sweep`: the YAML config, its validation and expansion into runs with a
  stable ``config_hash``;
- :mod:`~w2sg.experiments.runner`: what a worker does (prepare shared inputs, run the pipeline);
- :mod:`~w2sg.experiments.executors`: ``run_sweep`` on the ``local`` or ``ray`` executor;
- :mod:`~w2sg.experiments.store`: the results store and its export;
- :mod:`~w2sg.experiments.studies`: Spearman / Kendall / Pearson tables with bootstrap intervals;
- :mod:`~w2sg.experiments.epochs`: the over-optimisation study.

Submodules are imported on use, so ``import w2sg.experiments`` stays cheap.
"""
