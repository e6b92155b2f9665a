"""The ``local`` device: the agent as a subprocess of this machine, in a private run directory.

Same spec, same files and the same key handling as a board (a 0600 key file in a 0700
directory); only the transport differs.
"""

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from device_agents.fileio import atomic_write, write_json
from device_agents.queries import QueryClient
from edgekit.devices.agent_run import (KEY_FILE, LOG_FILE, SPEC_FILE, RunResult, collect, default_dest,
                                       encode_key, existing_files, parse_check_output, prepare_spec, watch)
from edgekit.devices.deploy import AGENT_PACKAGE
from edgekit.devices.inventory import DeviceConfig
from edgekit.devices.probe import PROBE_SCRIPT, PythonFacts, parse_probe, require_runtime
from edgekit.devices.query_server import STOP_GRACE_S, new_query_key, serve_queries_args, wait_listening


def agent_environment() -> dict:
    """This environment, with the edgekit checkout's ``device_agents`` importable."""
    return dict(os.environ, PYTHONPATH=str(AGENT_PACKAGE.parent))


class LocalRun:
    """The agent as a child process (an ``AgentRun``), running ``agent_args`` in ``run_dir``."""

    def __init__(self, run_dir: Path, python: list[str], agent_args=("run", SPEC_FILE)):
        self.run_dir = run_dir
        with open(run_dir / LOG_FILE, "wb") as log:
            self.process = subprocess.Popen([*python, "-m", "device_agents", *agent_args], cwd=run_dir,
                                            env=agent_environment(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)

    def exit_code(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the agent is gone."""
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def read(self, name: str) -> bytes | None:
        try:
            return (self.run_dir / name).read_bytes()
        except FileNotFoundError:
            return None

    def fetch(self, name: str, dest: Path) -> bool:
        if not (self.run_dir / name).is_file():
            return False
        with open(self.run_dir / name, "rb") as source, atomic_write(dest) as handle:
            shutil.copyfileobj(source, handle)
        return True


class LocalDevice:
    """The ``local`` inventory entry: runs under ``WORKDIR/runs/`` (default: the system temp dir)."""

    def __init__(self, config: DeviceConfig, *, poll_interval=0.2):
        self.config, self.name = config, config.name
        self.python = shlex.split(config.python)
        self.poll_interval = poll_interval
        self.workdir = Path(config.workdir).expanduser()

    def probe(self) -> PythonFacts:
        try:
            done = subprocess.run([*self.python, "-c", PROBE_SCRIPT, str(self.workdir)], capture_output=True,
                                  text=True, timeout=60)
        except FileNotFoundError:
            return parse_probe(self.name, self.config.python, 127, "", "not found")
        return parse_probe(self.name, self.config.python, done.returncode, done.stdout, done.stderr)

    def deploy_and_run(self, spec: dict, files: dict, run_key: bytes, progress=None, dest=None) -> RunResult:
        files = existing_files(self.name, files)
        spec = prepare_spec(self.name, spec, files)
        key = encode_key(run_key) if spec.get("cloud") else None
        require_runtime(self.name, self.probe(), spec["artifact"]["format"])
        run_dir = self._new_run_dir(spec["run_id"])
        try:
            for name, path in files.items():
                (run_dir / name).symlink_to(path.resolve())
            write_json(run_dir / SPEC_FILE, spec)
            if key is not None:
                _write_key(run_dir, key)
            run = LocalRun(run_dir, self.python)
            try:
                code, state = watch(run, progress, self.poll_interval)
            finally:
                if run.process.poll() is None:
                    run.process.kill()
                    run.process.wait()
            return collect(self.name, run, code, state, Path(dest or default_dest(self.name, spec["run_id"])))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    @contextlib.contextmanager
    def serve_queries(self, artifact: dict, path, threads: int = 1):
        """A ``QueryClient`` connected to ``serve-queries`` for the artifact file ``path``, run as a child
        process on 127.0.0.1; the server is stopped and its run directory removed when the block ends."""
        key = new_query_key()
        run_dir = self._new_run_dir("queries")
        try:
            _write_key(run_dir, encode_key(key))
            server = LocalRun(run_dir, self.python, serve_queries_args(artifact, str(Path(path).resolve()), threads))
            try:
                port = wait_listening(self.name, server, self.poll_interval)
                with QueryClient("127.0.0.1", port, key) as client:
                    yield client
            finally:
                server.stop()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _new_run_dir(self, prefix: str) -> Path:
        runs = self.workdir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=runs))  # mode 0700

    def check(self) -> dict:
        facts = self.probe()  # also creates the workdir the check reports on
        done = subprocess.run([*self.python, "-m", "device_agents", "check", "--workdir", str(self.workdir)],
                              capture_output=True, text=True, env=agent_environment(), timeout=120)
        return parse_check_output(self.name, done.returncode, done.stdout, done.stderr) | facts.summary()


def _write_key(run_dir: Path, key: bytes):
    with atomic_write(run_dir / KEY_FILE, perms=0o600) as handle:
        handle.write(key)
