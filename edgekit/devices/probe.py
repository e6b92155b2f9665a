"""What a device's Python can do, learnt in one command before anything is sent to it.

The same command creates the working directory (``blobs/``, ``runs/``) and lists the blobs the
device already holds, so that a deploy needs no other remote command.

The probe script keeps to syntax that even Python 2.7 parses, so that an old interpreter is
reported as too old rather than as a syntax error.
"""

import json
from dataclasses import dataclass

from edgekit.errors import EdgekitError

MIN_PYTHON = (3, 8)
RUNTIME_MODULES = {"onnx": ("onnxruntime",), "tflite": ("ai_edge_litert", "tflite_runtime")}
RUNTIME_FIXES = {"onnx": "pip install onnxruntime",
                 "tflite": "pip install ai-edge-litert (Python 3.10+; tflite-runtime on older boards)"}

PROBE_SCRIPT = r"""
import json, os, sys
facts = {"version": list(sys.version_info[:3]), "executable": sys.executable, "runtimes": {}}
try:
    from importlib.util import find_spec
    for name in ("onnxruntime", "ai_edge_litert", "tflite_runtime", "numpy"):
        facts["runtimes"][name] = find_spec(name) is not None
except Exception:
    pass
workdir = os.path.abspath(os.path.expanduser(sys.argv[1]))
for sub in ("blobs", "runs"):
    if not os.path.isdir(os.path.join(workdir, sub)):
        os.makedirs(os.path.join(workdir, sub))
fs = os.statvfs(workdir)
facts["workdir"] = workdir
facts["free_bytes"] = fs.f_bavail * fs.f_frsize
facts["blobs"] = os.listdir(os.path.join(workdir, "blobs"))
print(json.dumps(facts))
"""


@dataclass(frozen=True)
class PythonFacts:
    version: tuple
    executable: str
    modules: dict
    workdir: str
    free_bytes: int
    blobs: frozenset

    def summary(self) -> dict:
        """What a check records besides the agent's own report."""
        return {"python_executable": self.executable, "workdir": self.workdir}

    def missing_runtime(self, fmt: str) -> str | None:
        """The fix to run when no runtime for artifact format ``fmt`` is importable, else None."""
        if any(self.modules.get(m) for m in RUNTIME_MODULES[fmt]):
            return None
        return RUNTIME_FIXES[fmt]


def parse_probe(device: str, python: str, exit_status: int, stdout: str, stderr: str) -> PythonFacts:
    """Turn the probe's output into facts, or a one-line error naming what is wrong."""
    if exit_status == 127 or "not found" in stderr:
        raise EdgekitError(f"device {device!r}: python command {python!r} not found on the device; "
                           f"set python = \"...\" for it in the inventory")
    try:
        facts = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgekitError(f"device {device!r}: {python!r} did not run the probe: {last}") from None
    version = tuple(facts["version"])
    if version < MIN_PYTHON:
        raise EdgekitError(f"device {device!r}: {python!r} is Python {'.'.join(map(str, version))}; "
                           f"the agent needs 3.8+ (set python = \"python3.X\" in the inventory)")
    return PythonFacts(version, facts["executable"], facts["runtimes"], facts["workdir"], facts["free_bytes"],
                       frozenset(facts["blobs"]))


def require_runtime(device: str, facts: PythonFacts, fmt: str):
    fix = facts.missing_runtime(fmt)
    if fix:
        raise EdgekitError(f"device {device!r}: no {fmt} runtime importable by {facts.executable}; fix: {fix}")
    if not facts.modules.get("numpy", True):
        raise EdgekitError(f"device {device!r}: numpy not importable by {facts.executable}; fix: pip install numpy")
