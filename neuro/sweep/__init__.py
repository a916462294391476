"""Sweeps on Ray: one neuro command over seeds, a grid, random search or Bayesian optimisation.

:mod:`~neuro.sweep.spec` reads the SPEC (:mod:`~neuro.sweep.dotted` keys into configs),
:mod:`~neuro.sweep.plan` turns it into units (one per parameter set and seed), :mod:`~neuro.sweep.trial`
runs a unit in a worker, :mod:`~neuro.sweep.runner` drives Ray Tune (:mod:`~neuro.sweep.progress` prints),
:mod:`~neuro.sweep.aggregate` and :mod:`~neuro.sweep.report` make the tables. Usage: docs/sweep.md.
"""
