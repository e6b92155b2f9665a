"""What every device does with one agent run, wherever the agent runs.

A device prepares the run spec (``prepare_spec``), starts the agent, and hands a ``AgentRun``
(the running agent, local or remote) to ``watch`` and ``collect``.
"""

import copy
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from device_agents.protocol import check_key
from edgekit.errors import EdgekitError
from edgekit.paths import cache_dir

SPEC_FILE = "spec.json"
KEY_FILE = "run.key"
OUTPUT_DIR = "out"
LOG_FILE = "agent.log"
FETCHED = ("report.json", "records.csv", "features.npy", "online.csv")
LOG_TAIL_LINES = 40
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
FORMATS = ("onnx", "tflite")


@dataclass
class RunResult:
    """One agent run as the workstation sees it: ``status`` is "done" or "failed"."""

    device: str
    status: str
    report: dict
    records_path: Path | None
    features_path: Path | None
    log_tail: str
    error: str | None = None
    online_path: Path | None = None  # the online phase's records, when the spec had ``online``

    @property
    def ok(self) -> bool:
        return self.status == "done"


class AgentRun(Protocol):
    """A started agent: its files are named relative to its run directory."""

    def exit_code(self) -> int | None: ...      # None while it runs
    def alive(self) -> bool: ...
    def read(self, name: str) -> bytes | None: ...
    def fetch(self, name: str, dest: Path) -> bool: ...


def prepare_spec(device: str, spec: dict, files: dict) -> dict:
    """A copy of ``spec`` pointing at the run directory's file names, output and key file."""
    for name in files:
        if not SAFE_NAME.fullmatch(name) or name in (SPEC_FILE, KEY_FILE, LOG_FILE, OUTPUT_DIR):
            raise EdgekitError(f"device {device!r}: bad file name {name!r} for the run directory")
    run_id = str(spec.get("run_id", ""))
    if not SAFE_NAME.fullmatch(run_id):
        raise EdgekitError(f"device {device!r}: run spec needs a run_id of letters and digits, got {run_id!r}")
    spec = copy.deepcopy(spec)
    for part in ("artifact", "inputs"):
        path = (spec.get(part) or {}).get("path")
        if path not in files:
            raise EdgekitError(f"device {device!r}: spec {part}.path {path!r} is not among the files sent "
                               f"({', '.join(files) or 'none'})")
    if spec["artifact"].get("format") not in FORMATS:
        raise EdgekitError(f"device {device!r}: artifact format {spec['artifact'].get('format')!r}; "
                           f"accepted: {', '.join(FORMATS)}")
    spec["output_dir"] = OUTPUT_DIR
    if spec.get("cloud"):
        spec["cloud"]["key_file"] = KEY_FILE
    return spec


def encode_key(run_key: bytes) -> bytes:
    """The key file's content: the run key as hex."""
    try:
        return check_key(run_key).hex().encode()
    except ValueError as exc:
        raise EdgekitError(f"{exc} (use secrets.token_bytes(32))") from None


def watch(run: AgentRun, progress: Callable | None, poll_interval: float) -> tuple[int | None, dict]:
    """Poll until the agent ends: (exit code or None when it vanished, its last state)."""
    last = {}
    while True:
        alive = run.alive()  # asked first: an agent gone by now has left its exit code and state
        code = run.exit_code()
        state = json_object(run.read(f"{OUTPUT_DIR}/state.json")) or last
        if state != last and progress is not None:
            progress(state)
        last = state
        if code is not None or not alive:
            return code, last
        time.sleep(poll_interval)


def collect(device: str, run: AgentRun, code: int | None, state: dict, dest: Path) -> RunResult:
    """Fetch the report, records and features, and judge the run."""
    dest.mkdir(parents=True, exist_ok=True)
    fetched = {name: dest / name for name in FETCHED if run.fetch(f"{OUTPUT_DIR}/{name}", dest / name)}
    report = json_object(fetched["report.json"].read_bytes()) if "report.json" in fetched else {}
    log = (run.read(LOG_FILE) or b"").decode(errors="replace")
    tail = "\n".join(log.splitlines()[-LOG_TAIL_LINES:])
    error = _failure(code, state, report, "records.csv" in fetched)
    return RunResult(
        device=device,
        status="failed" if error else "done",
        report=report,
        records_path=fetched.get("records.csv"),
        features_path=fetched.get("features.npy"),
        log_tail=tail,
        error=f"device {device!r}: {error}" if error else None,
        online_path=fetched.get("online.csv"),
    )


def parse_check_output(device: str, exit_status: int, stdout: str, stderr: str) -> dict:
    """The JSON ``device_agents check`` printed, or an error naming its last words."""
    try:
        return json.loads(stdout)
    except ValueError:
        last = (stderr.strip().splitlines() or [f"exit status {exit_status}"])[-1]
        raise EdgekitError(f"device {device!r}: the agent's check failed: {last}") from None


def existing_files(device: str, files: dict) -> dict[str, Path]:
    """``files`` as Paths, each checked to exist before anything is sent."""
    files = {name: Path(path) for name, path in files.items()}
    for name, path in files.items():
        if not path.is_file():
            raise EdgekitError(f"device {device!r}: file {name!r} not found: {path}")
    return files


def default_dest(device: str, run_id: str) -> Path:
    return cache_dir("device-runs", device, run_id)


def _failure(code, state, report, have_records) -> str | None:
    said = state.get("error") or report.get("error")
    if code is None:
        return f"agent vanished without an exit status (last state: {state.get('state', 'none')})"
    if code != 0:
        return f"agent {_exit_words(code)}" + (f": {said}" if said else "")
    if state.get("state") != "done" or not report or not have_records:
        return f"agent exited 0 but left no complete result (state {state.get('state')!r})"
    return None


def _exit_words(code: int) -> str:
    """Local returncodes are -N for signal N; a shell reports 128+N."""
    signal = -code if code < 0 else code - 128 if code > 128 else None
    return f"was killed by signal {signal}" if signal else f"exited with status {code}"


def json_object(data: bytes | None) -> dict:
    """A JSON object, or {} for a missing or (being rewritten) unreadable file."""
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
