"""Host key checking: the user's ~/.ssh/known_hosts plus edgekit's own known_hosts.

An unknown key is refused, naming its type and SHA256 fingerprint, unless the user trusts the
device (``edgekit devices trust NAME`` or ``--trust-new``): then it is written to edgekit's own
known_hosts (trust on first use). A changed key is always refused.
"""

import base64
import hashlib

import paramiko

from device_agents.fileio import atomic_write
from edgekit.devices.settings import edgekit_known_hosts, user_known_hosts
from edgekit.errors import EdgekitError


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe(key: paramiko.PKey) -> str:
    return f"{key.get_name()} key {fingerprint(key)}"


class HostKeyStore:
    """The known host keys, and the one file edgekit adds trusted keys to."""

    def __init__(self, own_file=None, user_file=None):
        self.own_file = own_file or edgekit_known_hosts()
        self.user_file = user_file or user_known_hosts()

    def install(self, client: paramiko.SSHClient, device: str, trust_new: bool):
        """Load both files into ``client`` and set a policy that never accepts a key silently."""
        for path in (self.user_file, self.own_file):
            if path.exists():
                try:
                    client.get_host_keys().load(str(path))
                except (OSError, paramiko.SSHException) as exc:
                    raise EdgekitError(f"{path}: cannot read known hosts: {exc}") from None
        client.set_missing_host_key_policy(TrustOnRequest(self, device, trust_new))

    def add(self, known_hosts_name: str, key: paramiko.PKey):
        """Append one entry to edgekit's known_hosts (atomically, keeping what is there)."""
        old = self.own_file.read_text() if self.own_file.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        with atomic_write(self.own_file, "w", perms=0o600) as handle:
            handle.write(f"{old}{known_hosts_name} {key.get_name()} {key.get_base64()}\n")

    def changed_key_error(self, device, known_hosts_name, offered, expected) -> EdgekitError:
        """The refusal for a host whose key differs from the one on file."""
        files = " or ".join(str(p) for p in (self.user_file, self.own_file) if p.exists())
        return EdgekitError(
            f"device {device!r}: HOST KEY CHANGED for {known_hosts_name}: offers {describe(offered)}, "
            f"known as {describe(expected)}; refusing (possible man-in-the-middle). If the device was "
            f"really reinstalled, remove the old entry with: ssh-keygen -R '{known_hosts_name}' -f FILE "
            f"(FILE: {files}), then trust it again")


class TrustOnRequest(paramiko.MissingHostKeyPolicy):
    """Refuse an unknown host key, or record it in edgekit's known_hosts when the user trusts it."""

    def __init__(self, store: HostKeyStore, device: str, trust_new: bool):
        self.store, self.device, self.trust_new = store, device, trust_new

    def missing_host_key(self, client, hostname, key):
        if not self.trust_new:
            raise EdgekitError(
                f"device {self.device!r}: unknown host key for {hostname}: {describe(key)}; "
                f"refusing. If that fingerprint is the device's, run: edgekit devices trust {self.device}")
        self.store.add(hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
