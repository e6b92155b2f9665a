"""A throwaway OpenSSH server for tests: generated ed25519 host and user keys, key auth only.

``SshServer(directory).start()`` runs ``/usr/sbin/sshd -D -f CONFIG -E LOG -p PORT`` on
127.0.0.1 (or inside a network namespace with ``netns=``), and ``stop()`` ends it by the pid in
its PidFile. The server is installed with apt-get when missing; under ``CI=true`` a server that
cannot be had fails the test instead of skipping it.
"""

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")

CONFIG = """\
ListenAddress {host}
HostKey {dir}/host_ed25519
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowTcpForwarding yes
Subsystem sftp internal-sftp
MaxStartups 100
LogLevel VERBOSE
"""


def require(condition: bool, what: str):
    """Skip when a component is missing, except under CI where it is a failure."""
    if not condition:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what} is required under CI=true")
        pytest.skip(f"{what} is not available here")


def ensure_sshd():
    """Install openssh-server when /usr/sbin/sshd is missing."""
    if not SSHD.exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "openssh-server"], capture_output=True, timeout=600,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    require(SSHD.exists(), "OpenSSH server (/usr/sbin/sshd)")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)


def keygen(path: Path) -> Path:
    """A new passphrase-less ed25519 key pair at ``path`` and ``path.pub``."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgekit-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SshServer:
    """One sshd; ``user_key`` may log in as the current user."""

    def __init__(self, directory: Path, host="127.0.0.1", port=None, netns=None, user_key=None):
        self.dir, self.host, self.netns = Path(directory), host, netns
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port("127.0.0.1" if netns else host)
        self.user_key = user_key or keygen(self.dir / "user_ed25519")
        self.host_key = keygen(self.dir / "host_ed25519")
        (self.dir / "authorized_keys").write_text(Path(f"{self.user_key}.pub").read_text())
        self.config = self.dir / "sshd_config"
        self.config.write_text(CONFIG.format(host=host, dir=self.dir))
        self.log = self.dir / "sshd.log"
        self.process = None

    @property
    def known_hosts_line(self) -> str:
        key_type, key = Path(f"{self.host_key}.pub").read_text().split()[:2]
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{name} {key_type} {key}\n"

    def device_toml(self, name: str, **fields) -> str:
        """An inventory table for a device on this server (the agent runs with this Python)."""
        fields = {"host": self.host, "port": self.port, "user": getpass.getuser(),
                  "key_file": str(self.user_key), "python": sys.executable, **fields}
        body = "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items())
        return f"[devices.{name}]\n{body}\n"

    @property
    def pid(self) -> int:
        return int((self.dir / "sshd.pid").read_text())

    def start(self, timeout=20.0) -> "SshServer":
        ensure_sshd()
        command = [str(SSHD), "-D", "-f", str(self.config), "-E", str(self.log), "-p", str(self.port)]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log.read_text()}")
            if (self.dir / "sshd.pid").exists() and self._accepts():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not start in {timeout} s: {self.log.read_text()}")

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes: killing them drops every client's connection."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def drop_connections(self):
        for pid in self.session_pids():
            os.kill(pid, signal.SIGKILL)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False


def count_connects(device) -> list:
    """Record each SSH connection ``device`` opens (a reconnect shows as a second entry)."""
    opened, connect = [], device.connect
    device.connect = lambda: opened.append(connect()) or opened[-1]
    return opened
