"""Run directories: ``OUTPUT/<experiment>/<run-id>/``, created new or found again to resume.

The manifest (``manifest.json``) holds the resolved experiment and its fingerprint, so a resume
refuses a run directory that was started from a different experiment.
"""

from __future__ import annotations

import datetime
import platform
import subprocess
from pathlib import Path

from device_agents.fileio import write_json
from edgekit import __version__
from edgekit.errors import EdgekitError
from edgekit.experiment.config import Experiment
from edgekit.results import MANIFEST, read_manifest


def experiment_root(experiment: Experiment, output=None) -> Path:
    return Path(output or experiment.output) / experiment.name


def new_run_dir(experiment: Experiment, output=None) -> Path:
    """A fresh ``<output>/<name>/<YYYYmmdd-HHMMSS>[-N]`` directory."""
    root = experiment_root(experiment, output)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        path = root / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise EdgekitError(f"cannot create a run directory under {root}")


def resume_run_dir(experiment: Experiment, resume, output=None) -> Path:
    """``resume`` is a run directory, or True for the latest run of this experiment."""
    if resume is True:
        root = experiment_root(experiment, output)
        runs = sorted((p for p in root.glob("*") if (p / MANIFEST).exists()), key=lambda p: p.name)
        if not runs:
            raise EdgekitError(f"--resume: no run of {experiment.name!r} under {root} to resume")
        path = runs[-1]
    else:
        path = Path(resume)
        if not (path / MANIFEST).exists():
            raise EdgekitError(f"--resume: {str(path)!r} is not a run directory (no {MANIFEST})")
    started = read_manifest(path).get("fingerprint")
    if started != experiment.fingerprint():
        raise EdgekitError(f"--resume: {path} was started from a different experiment (fingerprint "
                           f"{started}, this file {experiment.fingerprint()}); start a new run instead")
    return path


def write_manifest(run_dir: Path, experiment: Experiment, source: str, **fields) -> None:
    """Rewrite the manifest, keeping what earlier writes recorded unless ``fields`` replaces it."""
    manifest = read_manifest(run_dir)
    manifest.update({
        "experiment": experiment.model_dump(mode="json"), "fingerprint": experiment.fingerprint(),
        "source": source, "edgekit_version": __version__, "tool_versions": tool_versions(),
        "git_commit": git_commit(), "host": platform.node(),
    })
    manifest.setdefault("started_at", now())
    manifest.update(fields)
    write_json(run_dir / MANIFEST, manifest)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def tool_versions() -> dict:
    from edgekit.export.tools import tool_versions as export_tools
    from importlib import metadata

    versions = {"python": platform.python_version(), **export_tools()}
    for name in ("torch", "numpy", "pandas", "scikit-image", "pydantic"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The edgekit checkout's commit (``+dirty`` with local changes), or None outside a git checkout."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")
