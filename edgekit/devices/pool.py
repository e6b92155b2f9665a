"""Runs on several devices at once: one thread per job, one result per job, failures included."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.devices.agent_run import RunResult
from edgekit.errors import EdgekitError


@dataclass
class DeviceJob:
    """One ``deploy_and_run`` call: ``device`` is what ``get_device`` returned."""

    device: object
    spec: dict
    files: dict
    run_key: bytes
    progress: object = None
    dest: Path | None = None
    label: str = field(default="")  # the caller's name for this job (e.g. its configuration)


def run_on_devices(jobs: list[DeviceJob], max_workers=None) -> list[RunResult]:
    """Results in the order of ``jobs``; a device that fails yields a failed result, not an exception."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=max_workers or len(jobs), thread_name_prefix="edgekit-device") as pool:
        return list(pool.map(_run_one, jobs))


def _run_one(job: DeviceJob) -> RunResult:
    try:
        return job.device.deploy_and_run(job.spec, job.files, job.run_key, progress=job.progress, dest=job.dest)
    except EdgekitError as exc:
        return RunResult(device=job.device.name, status="failed", report={}, records_path=None,
                         features_path=None, log_tail="", error=str(exc))
