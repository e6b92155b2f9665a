"""Experiments: a TOML file expanded into configurations, run on devices, attacked and scored.

``config.load_experiment(path)`` validates a file (``checks.check_experiment`` against what is
installed), ``plan.plan_runs(experiment)`` expands it, and ``sweep.run_experiment(path)`` runs it
into ``results/<experiment>/<run-id>/`` (see results/README.md).
"""
