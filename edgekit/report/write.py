"""``write_report``: the figures, the recommendation and the summary table of one run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from device_agents.fileio import atomic_write, write_json
from edgekit import results
from edgekit.errors import EdgekitError
from edgekit.report.recommend import DEFAULT_THRESHOLD, as_json, describe, recommend
from edgekit.report.table import summary_table


def write_report(run_dir, threshold: float = DEFAULT_THRESHOLD, console: Console | None = None) -> Path:
    """Write ``RUN_DIR/report/`` (PNG and SVG figures, recommendation.txt/.json), print the table and
    the recommendation; returns the report directory."""
    from edgekit.report.link_plots import write_link_figures
    from edgekit.report.plots import write_all

    run_dir = Path(run_dir)
    if not (run_dir / results.MANIFEST).exists():
        raise EdgekitError(f"{str(run_dir)!r} is not a run directory (no {results.MANIFEST}); "
                           "pass results/<experiment>/<run-id>")
    if not 0 < threshold < 1:
        raise EdgekitError(f"--threshold {threshold:g} is not an SSIM threshold; accepted: between 0 and 1")
    console = console or Console()
    summary = results.load_run(run_dir)
    predictions = results.load_run(run_dir, "link_predictions")
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    recommendations = recommend(summary, threshold, results.load_run(run_dir, "inferences"),
                                results.load_run(run_dir, "online_inferences"), predictions)
    written, notes = write_all(run_dir, out, threshold)
    link_written, link_notes = write_link_figures(summary, predictions, out, threshold, recommendations)
    written, notes = written + link_written, notes + link_notes
    text = describe(recommendations, predictions)
    with atomic_write(out / "recommendation.txt", "w") as handle:
        handle.write(text + "\n")
    write_json(out / "recommendation.json", as_json(recommendations))
    console.print(summary_table(summary, threshold))
    for note in notes:
        console.print(f"[dim]{note}[/dim]")
    console.print(text)
    console.print(f"report: {len(written)} figures and the recommendation in {out}")
    return out
