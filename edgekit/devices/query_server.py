"""Black-box queries answered on a device by ``python -m device_agents serve-queries``.

``with device.serve_queries(artifact, path, threads) as client: client.query(images)``: the
server gets a fresh run key in a 0600 key file (never on a command line), listens on the device's
loopback only, and is stopped and its files removed when the block ends. What is shared by the
local and the SSH device lives here.
"""

import secrets
import time

from edgekit.devices.agent_run import KEY_FILE, LOG_FILE, AgentRun, json_object
from edgekit.errors import EdgekitError

START_TIMEOUT_S = 120.0  # loading a runtime on a small board takes a while
STOP_GRACE_S = 10.0


def new_query_key() -> bytes:
    return secrets.token_bytes(32)


def serve_queries_args(artifact: dict, artifact_file: str, threads: int) -> tuple:
    """The agent's arguments serving ``artifact`` (a manifest entry or run-spec artifact: sha256, format)."""
    return ("serve-queries", "--artifact", artifact_file, "--sha256", artifact["sha256"],
            "--format", artifact["format"], "--key-file", KEY_FILE, "--threads", str(threads),
            "--host", "127.0.0.1", "--port", "0")


def wait_listening(device: str, server: AgentRun, poll_interval: float, timeout=START_TIMEOUT_S) -> int:
    """The port the server announced in its log; EdgekitError with its last words if it ends first."""
    deadline = time.monotonic() + timeout
    while True:
        alive = server.alive()  # asked first: a server gone by now has left its last words in the log
        log = (server.read(LOG_FILE) or b"").decode(errors="replace")
        for line in log.splitlines():
            event = json_object(line.encode())
            if event.get("event") == "listening":
                return int(event["port"])
        if not alive:
            last = (log.strip().splitlines() or ["no output"])[-1]
            raise EdgekitError(f"device {device!r}: the query server did not start: {last}")
        if time.monotonic() > deadline:
            raise EdgekitError(f"device {device!r}: the query server did not start within {timeout:.0f} s")
        time.sleep(poll_interval)
