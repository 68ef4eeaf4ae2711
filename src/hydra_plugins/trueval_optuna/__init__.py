"""Hydra sweeper plugin ``hydra/sweeper=trueval_optuna``: a resumable Optuna search (trueval.sweep.optuna_sweeper)."""
