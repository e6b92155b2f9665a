"""A small SSH connection to one device: ``run`` a command, ``put`` and ``get`` files.

Every read has a timeout and the transport sends keepalives, because a paramiko read on a dead
peer otherwise blocks forever. Failures that a reconnect may cure (unreachable host, dropped
connection, timeout) raise ``ConnectionTrouble``; refused host keys and keys raise a plain
``EdgekitError``.
"""

import secrets
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from device_agents.fileio import atomic_write
from edgekit.devices.hostkeys import HostKeyStore
from edgekit.devices.sshconfig import SshTarget
from edgekit.errors import EdgekitError

TRANSIENT = (OSError, EOFError, paramiko.SSHException)


class ConnectionTrouble(EdgekitError):
    """The device could not be reached or the connection broke; trying again may work."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    banner: float = 15.0
    auth: float = 15.0
    command: float = 60.0
    keepalive: int = 5


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


class Connection:
    """An open SSH session (through ProxyJump hops when the target has them)."""

    def __init__(self, target: SshTarget, hostkeys: HostKeyStore | None = None, *,
                 trust_new=False, timeouts=Timeouts()):
        self.target, self.timeouts = target, timeouts
        self.hostkeys = hostkeys or HostKeyStore()
        self._clients: list[paramiko.SSHClient] = []
        self._sftp = None
        hops = (*target.jumps, target)
        try:
            sock = None
            for hop, following in zip(hops, (*hops[1:], None)):
                client = self._connect(hop, sock, trust_new)
                self._clients.append(client)
                sock = following and self._tunnel(client, hop, following)
        except BaseException:
            self.close()
            raise

    @property
    def device(self) -> str:
        return self.target.device

    @property
    def transport(self) -> paramiko.Transport:
        return self._clients[-1].get_transport()

    def run(self, command: str, timeout=None, check=True) -> CommandResult:
        """Run ``command`` by the remote shell; ``check`` turns a non-zero exit into an error."""
        timeout = timeout or self.timeouts.command
        try:
            channel = self.transport.open_session(timeout=timeout)
            channel.settimeout(timeout)
            channel.exec_command(command)
            channel.shutdown_write()
            stdout = _read_all(channel.recv)
            stderr = _read_all(channel.recv_stderr)
            if not channel.status_event.wait(timeout):
                raise socket.timeout("no exit status")
            status = channel.recv_exit_status()
            channel.close()
        except TRANSIENT as exc:
            raise self._trouble("connection lost while running a command", exc) from None
        result = CommandResult(status, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
        if check and status != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EdgekitError(f"device {self.device!r}: remote command failed (exit {status}): {detail[0]}")
        return result

    def forward(self, port: int) -> paramiko.Channel:
        """A socket-like channel to the device's own 127.0.0.1:``port`` (direct-tcpip: no port has to be
        open on the device besides SSH's)."""
        try:
            return _direct_tcpip(self.transport, ("127.0.0.1", port), self.timeouts.connect)
        except paramiko.ChannelException as exc:
            raise EdgekitError(f"device {self.device!r}: nothing answers on its 127.0.0.1:{port} ({exc})") from None
        except TRANSIENT as exc:
            raise self._trouble(f"cannot open a channel to 127.0.0.1:{port}", exc) from None

    def put(self, local: Path, remote: str):
        """Upload to a temporary name next to ``remote`` and rename it into place."""
        partial = f"{remote}.part-{secrets.token_hex(4)}"
        try:
            self.sftp.put(str(local), partial)
            self.sftp.posix_rename(partial, remote)
        except TRANSIENT as exc:
            self._discard(partial)
            raise self._failure(f"upload of {Path(local).name} failed", exc) from None

    def write_private(self, remote: str, data: bytes):
        """Create ``remote`` with mode 0600 before any byte of ``data`` is written to it."""
        try:
            with self.sftp.open(remote, "wx") as handle:
                handle.chmod(0o600)
                handle.write(data)
        except TRANSIENT as exc:
            raise self._failure(f"writing {remote} failed", exc) from None

    def mkdir(self, remote: str, mode: int):
        """A new directory with exactly ``mode`` (whatever the server's umask)."""
        try:
            self.sftp.mkdir(remote, mode)
            self.sftp.chmod(remote, mode)
        except TRANSIENT as exc:
            raise self._failure(f"creating {remote} failed", exc) from None

    def symlink(self, target: str, remote: str):
        try:
            self.sftp.symlink(target, remote)
        except TRANSIENT as exc:
            raise self._failure(f"linking {remote} failed", exc) from None

    def read(self, remote: str) -> bytes | None:
        """A small remote file's bytes, or None when it does not exist."""
        try:
            with self.sftp.open(remote, "r") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except TRANSIENT as exc:
            raise self._failure(f"reading {remote} failed", exc) from None

    def get(self, remote: str, local: Path) -> bool:
        """Download ``remote`` to ``local``; False when it does not exist."""
        try:
            with atomic_write(local) as handle:
                self.sftp.getfo(remote, handle)
            return True
        except FileNotFoundError:
            return False
        except TRANSIENT as exc:
            raise self._failure(f"download of {remote} failed", exc) from None

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self._clients[-1].open_sftp()
            except TRANSIENT as exc:
                raise self._trouble("cannot open SFTP", exc) from None
            self._sftp.get_channel().settimeout(self.timeouts.command)
        return self._sftp

    def close(self):
        for client in reversed(self._clients):
            client.close()
        self._clients, self._sftp = [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _connect(self, hop: SshTarget, sock, trust_new) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        try:
            self.hostkeys.install(client, self.device, trust_new)
            client.connect(
                hop.hostname, hop.port, username=hop.user, key_filename=list(hop.key_files) or None,
                sock=sock, timeout=self.timeouts.connect, banner_timeout=self.timeouts.banner,
                auth_timeout=self.timeouts.auth, channel_timeout=self.timeouts.command,
                allow_agent=False, look_for_keys=not hop.key_files)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise self.hostkeys.changed_key_error(self.device, hop.known_hosts_name, exc.key,
                                                  exc.expected_key) from None
        except paramiko.AuthenticationException:
            client.close()
            keys = ", ".join(hop.key_files) or "the default keys in ~/.ssh"
            raise EdgekitError(f"device {self.device!r}: {hop} refused the key ({keys})") from None
        except TRANSIENT as exc:
            client.close()
            raise self._trouble(f"cannot reach {hop}", exc) from None
        except BaseException:
            client.close()
            raise
        client.get_transport().set_keepalive(self.timeouts.keepalive)
        return client

    def _tunnel(self, client, hop, following) -> paramiko.Channel:
        """A direct-tcpip channel from ``hop`` to the next host: the socket of the next hop."""
        try:
            return _direct_tcpip(client.get_transport(), (following.hostname, following.port), self.timeouts.connect)
        except TRANSIENT as exc:
            raise self._trouble(f"jump host {hop} cannot reach {following}", exc) from None

    def _discard(self, remote):
        try:
            self.sftp.remove(remote)
        except (*TRANSIENT, EdgekitError):
            pass

    def _failure(self, what, exc) -> EdgekitError:
        """A refused file operation is final; anything else on the wire may be cured by reconnecting."""
        if isinstance(exc, PermissionError):
            return EdgekitError(f"device {self.device!r}: {what}: permission denied")
        return self._trouble(what, exc)

    def _trouble(self, what, exc) -> ConnectionTrouble:
        reason = str(exc) or type(exc).__name__
        return ConnectionTrouble(f"device {self.device!r}: {what} ({self.target}): {reason}")


def _direct_tcpip(transport: paramiko.Transport, address: tuple, timeout: float) -> paramiko.Channel:
    """A TCP connection to ``address`` made by the SSH server, as a channel of ``transport``."""
    return transport.open_channel("direct-tcpip", address, ("127.0.0.1", 0), timeout=timeout)


def quote(*words) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def _read_all(recv) -> bytes:
    chunks = []
    while chunk := recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
