"""The report of a run: figures (``plots``), the recommendation (``recommend``) and the summary table.

``write_report(run_dir, threshold)`` writes everything into ``RUN_DIR/report/``.
"""
