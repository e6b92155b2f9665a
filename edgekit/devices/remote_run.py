"""An agent started on a device over SSH, detached from the session, watched through SFTP.

The agent runs under ``setsid`` with stdin from /dev/null and its output in ``agent.log``, so
it survives a dropped connection; a wrapper shell writes its exit status to ``exit.code`` (and
to the log, where a killed agent leaves no words of its own).
Every remote operation goes through ``Session.call``, which reconnects (bounded back-off) when
the connection breaks, so watching resumes where it was.
"""

import time
from pathlib import Path
from typing import Callable

from edgekit.devices.agent_run import LOG_FILE, SPEC_FILE
from edgekit.devices.connection import Connection, ConnectionTrouble, quote
from edgekit.errors import EdgekitError

EXIT_FILE = "exit.code"
RECONNECT_DELAYS = (0.5, 1, 2, 4, 8, 8, 8)


class Session:
    """A connection that is reopened when it breaks."""

    def __init__(self, connect: Callable[[], Connection], delays=RECONNECT_DELAYS):
        self._connect, self.delays = connect, delays
        self.conn = connect()

    def call(self, operation: Callable[[Connection], object]):
        """``operation(conn)``, reconnecting and retrying when the connection is in trouble."""
        for delay in (*self.delays, None):
            try:
                if self.conn is None:
                    self.conn = self._connect()
                return operation(self.conn)
            except ConnectionTrouble as trouble:
                self.close()
                if delay is None:
                    raise EdgekitError(f"{trouble}; gave up after {len(self.delays)} reconnects") from None
                time.sleep(delay)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class RemoteRun:
    """The agent running in ``run_dir`` on the device (an ``AgentRun``)."""

    def __init__(self, session: Session, run_dir: str, python: list[str]):
        self.session, self.run_dir, self.python = session, run_dir, python
        self.pid = None

    def start(self, agent_args=("run", SPEC_FILE)):
        agent = quote(*self.python, "-m", "device_agents", *agent_args)
        wrapper = (f"{agent} </dev/null >{LOG_FILE} 2>&1; code=$?; "
                   f"echo \"edgekit: agent exit status $code\" >>{LOG_FILE}; "
                   f"echo $code >{EXIT_FILE}.part && mv {EXIT_FILE}.part {EXIT_FILE}")
        command = (f"cd {quote(self.run_dir)} || exit 1; "
                   f"setsid sh -c {quote(wrapper)} </dev/null >/dev/null 2>&1 & echo $!")
        # not retried: a command lost on the wire may have started the agent already
        self.pid = int(self.session.conn.run(command).stdout.split()[-1])

    def stop(self, grace: float):
        """SIGTERM to the agent and its wrapper (the process group ``setsid`` made), SIGKILL to what is
        left after ``grace`` seconds; one remote command that returns once the group is gone."""
        group, ticks = f"-{self.pid}", int(grace * 10)
        script = (f"kill -TERM -- {group} 2>/dev/null; i=0; "
                  f"while kill -0 -- {group} 2>/dev/null && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; "
                  f"kill -KILL -- {group} 2>/dev/null; true")
        self.session.call(lambda c: c.run(script, timeout=grace + c.timeouts.command))

    def exit_code(self) -> int | None:
        text = self.read(EXIT_FILE)
        return int(text) if text and text.strip().isdigit() else None

    def alive(self) -> bool:
        """The wrapper shell exists and is not a zombie (read from /proc, no process spawned)."""
        stat = self.session.call(lambda c: c.read(f"/proc/{self.pid}/stat"))
        return bool(stat) and stat.rsplit(b")", 1)[-1].split()[0] != b"Z"

    def read(self, name: str) -> bytes | None:
        return self.session.call(lambda c: c.read(f"{self.run_dir}/{name}"))

    def fetch(self, name: str, dest: Path) -> bool:
        return self.session.call(lambda c: c.get(f"{self.run_dir}/{name}", dest))
