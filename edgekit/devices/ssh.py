"""A board reached over SSH: probe its Python, deploy a run directory, run the agent, collect."""

import contextlib
import json
import secrets
import shlex
from pathlib import Path

from device_agents.queries import QueryClient
from edgekit.devices.agent_run import (KEY_FILE, SPEC_FILE, RunResult, collect, default_dest, encode_key,
                                       existing_files, parse_check_output, prepare_spec, watch)
from edgekit.devices.connection import Connection, Timeouts, quote
from edgekit.devices.deploy import agent_files, remove_dir, stage
from edgekit.devices.hostkeys import HostKeyStore
from edgekit.devices.inventory import DeviceConfig
from edgekit.devices.probe import PROBE_SCRIPT, PythonFacts, parse_probe, require_runtime
from edgekit.devices.query_server import STOP_GRACE_S, new_query_key, serve_queries_args, wait_listening
from edgekit.devices.remote_run import RECONNECT_DELAYS, RemoteRun, Session
from edgekit.devices.sshconfig import resolve_target
from edgekit.errors import EdgekitError

NO_SETSID = 99


class SshDevice:
    """One inventory entry with a host; every method opens its own connection."""

    def __init__(self, config: DeviceConfig, *, trust_new=False, hostkeys=None, timeouts=Timeouts(),
                 poll_interval=0.5, reconnect_delays=RECONNECT_DELAYS):
        self.config, self.name = config, config.name
        self.target = resolve_target(config)
        self.trust_new, self.hostkeys = trust_new, hostkeys or HostKeyStore()
        self.timeouts, self.poll_interval, self.reconnect_delays = timeouts, poll_interval, reconnect_delays
        self.python = shlex.split(config.python)

    def connect(self) -> Connection:
        return Connection(self.target, self.hostkeys, trust_new=self.trust_new, timeouts=self.timeouts)

    def probe(self, conn: Connection) -> PythonFacts:
        """The device's Python version, runtimes, working directory and free disk; one command."""
        command = (f"command -v setsid >/dev/null || exit {NO_SETSID}; "
                   f"{quote(*self.python, '-c', PROBE_SCRIPT, self.config.workdir)}")
        result = conn.run(command, check=False)
        if result.exit_status == NO_SETSID:
            raise EdgekitError(f"device {self.name!r}: setsid not found on the device; fix: install util-linux")
        return parse_probe(self.name, self.config.python, result.exit_status, result.stdout, result.stderr)

    def deploy(self, session: Session, spec: dict, files: dict, run_key: bytes) -> RemoteRun:
        """Send the agent, files, spec and key into a fresh run directory; nothing is left on failure."""
        files = existing_files(self.name, files)
        spec = prepare_spec(self.name, spec, files)
        private = {SPEC_FILE: json.dumps(spec, indent=2).encode()}
        if spec.get("cloud"):
            private[KEY_FILE] = encode_key(run_key)
        return self._stage_run(session, files, private, spec["artifact"]["format"], spec["run_id"])

    def _stage_run(self, session: Session, files: dict, private: dict, fmt: str, prefix: str) -> RemoteRun:
        """The agent, ``files`` and the ``private`` ones (name -> bytes, mode 0600) in a fresh run
        directory on a device that can run ``fmt``; nothing is left on failure."""
        conn = session.conn
        facts = self.probe(conn)
        require_runtime(self.name, facts, fmt)
        run_dir = stage(conn, facts, agent_files() | files, f"{prefix}-{secrets.token_hex(4)}")
        try:
            for name, data in private.items():
                conn.write_private(f"{run_dir}/{name}", data)
        except BaseException:
            remove_dir(conn, run_dir)
            raise
        return RemoteRun(session, run_dir, self.python)

    def deploy_and_run(self, spec: dict, files: dict, run_key: bytes, progress=None, dest=None) -> RunResult:
        """Deploy, run the agent detached, watch it through dropped connections, fetch, clean up."""
        session = Session(self.connect, self.reconnect_delays)
        try:
            run = self.deploy(session, spec, files, run_key)
            try:
                run.start()
                code, state = watch(run, progress, self.poll_interval)
                return collect(self.name, run, code, state, Path(dest or default_dest(self.name, spec["run_id"])))
            finally:  # the run directory holds the run key: never left behind
                with contextlib.suppress(EdgekitError):  # an error already raised is the one to report
                    session.call(lambda c: remove_dir(c, run.run_dir))
        finally:
            session.close()

    @contextlib.contextmanager
    def serve_queries(self, artifact: dict, path, threads: int = 1):
        """A ``QueryClient`` connected to ``serve-queries``, started detached on the device with the artifact
        file ``path`` deployed like a run's, listening on the device's loopback and reached through the SSH
        connection; the server is stopped and its run directory removed when the block ends."""
        name = f"model.{artifact['format']}"
        files = existing_files(self.name, {name: path})
        key = new_query_key()
        session = Session(self.connect, self.reconnect_delays)
        try:
            server = self._stage_run(session, files, {KEY_FILE: encode_key(key)}, artifact["format"], "queries")
            try:
                server.start(serve_queries_args(artifact, name, threads))
                port = wait_listening(self.name, server, self.poll_interval)
                with QueryClient("127.0.0.1", port, key, connect=lambda: session.call(lambda c: c.forward(port))) \
                        as client:
                    yield client
            except BaseException:
                with contextlib.suppress(EdgekitError):  # the first error is the one to report
                    _stop_and_remove(session, server)
                raise
            _stop_and_remove(session, server)
        finally:
            session.close()

    def check(self) -> dict:
        """``python -m device_agents check`` on the device, with the probe's facts."""
        with self.connect() as conn:
            facts = self.probe(conn)
            run_dir = stage(conn, facts, agent_files(), f"check-{secrets.token_hex(4)}")
            agent = quote(*self.python, "-m", "device_agents", "check", "--workdir", facts.workdir)
            try:
                result = conn.run(f"cd {quote(run_dir)} && {agent}", check=False)
            finally:
                remove_dir(conn, run_dir)
        return parse_check_output(self.name, result.exit_status, result.stdout, result.stderr) | facts.summary()


def _stop_and_remove(session: Session, server: RemoteRun):
    if server.pid is not None:
        server.stop(STOP_GRACE_S)
    session.call(lambda c: remove_dir(c, server.run_dir))
