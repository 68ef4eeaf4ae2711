"""Uncertainty of the numbers a run reports: bootstrap intervals, paired tests, intervals over seeds/folds.

Imports nothing of trueval but ``trueval.core``, so tasks, the sweep summary and ``trueval.compare``
can all use it.
"""
