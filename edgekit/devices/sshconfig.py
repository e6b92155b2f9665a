"""Resolve an inventory entry into where to connect, honouring ``~/.ssh/config``.

HostName, User, Port, IdentityFile and ProxyJump are read with ``paramiko.SSHConfig``; values in
the inventory win over the ssh config, as options on an ``ssh`` command line would.
"""

import getpass
import os
from dataclasses import dataclass, field

import paramiko

from edgekit.devices.inventory import DeviceConfig
from edgekit.devices.settings import user_ssh_config
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class SshTarget:
    """One SSH hop: reached through ``jumps`` (outermost first) when ProxyJump is set."""

    device: str
    hostname: str
    port: int = 22
    user: str = field(default_factory=getpass.getuser)
    key_files: tuple[str, ...] = ()
    jumps: tuple["SshTarget", ...] = ()

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH files this host's key under in known_hosts."""
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"

    def __str__(self):
        return f"{self.user}@{self.hostname}:{self.port}"


def resolve_target(device: DeviceConfig) -> SshTarget:
    """Where ``device`` lives, after applying ~/.ssh/config to its ``host``."""
    return _lookup(device.name, device.host, _ssh_config(), user=device.user, port=device.port,
                   key_file=device.key_file)


def _lookup(device, alias, config, user=None, port=None, key_file=None) -> SshTarget:
    found = config.lookup(alias)
    keys = [key_file] if key_file else found.get("identityfile", [])
    try:
        port = int(port or found.get("port", 22))
    except ValueError:
        raise EdgekitError(f"device {device!r}: ~/.ssh/config gives a bad Port for {alias!r}") from None
    return SshTarget(
        device=device,
        hostname=found.get("hostname", alias),
        port=port,
        user=user or found.get("user") or getpass.getuser(),
        key_files=tuple(os.path.expanduser(k) for k in keys),
        jumps=_jumps(device, found.get("proxyjump"), config),
    )


def _jumps(device, proxyjump, config) -> tuple:
    """``ProxyJump a,b`` -> hops; each hop is itself looked up in the ssh config."""
    if not proxyjump or proxyjump.lower() == "none":
        return ()
    hops = []
    for spec in proxyjump.split(","):
        user, _, hostport = spec.strip().rpartition("@")
        host, port = _split_port(device, hostport)
        hop = _lookup(device, host, config, user=user or None, port=port)
        hops.extend(hop.jumps)
        hops.append(SshTarget(device, hop.hostname, hop.port, hop.user, hop.key_files))
    return tuple(hops)


def _split_port(device, hostport):
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest.lstrip(":") or None
    else:
        host, _, port = hostport.partition(":")
    if port is not None and port != "" and not port.isdigit():
        raise EdgekitError(f"device {device!r}: bad ProxyJump port in {hostport!r}")
    return host, (int(port) if port else None)


def _ssh_config() -> paramiko.SSHConfig:
    path = user_ssh_config()
    if not path.exists():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ssh_exception.ConfigParseError) as exc:
        raise EdgekitError(f"{path}: cannot read the ssh config: {exc}") from None
