"""Where edgekit keeps the device inventory, its own known_hosts and the last check of each device.

``$EDGEKIT_CONFIG`` or ``$XDG_CONFIG_HOME/edgekit`` (default ``~/.config/edgekit``).
"""

import os
from pathlib import Path


def config_dir() -> Path:
    """edgekit's configuration directory, created (0700) on first use."""
    explicit = os.environ.get("EDGEKIT_CONFIG")
    xdg = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    path = Path(explicit) if explicit else Path(xdg) / "edgekit"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def inventory_path(explicit=None) -> Path:
    """``--inventory``, else ``$EDGEKIT_DEVICES``, else ``devices.toml`` in the config dir."""
    chosen = explicit or os.environ.get("EDGEKIT_DEVICES")
    return Path(chosen).expanduser() if chosen else config_dir() / "devices.toml"


def edgekit_known_hosts() -> Path:
    """Host keys the user trusted through edgekit (``devices trust`` or ``--trust-new``)."""
    return config_dir() / "known_hosts"


def user_known_hosts() -> Path:
    return Path.home() / ".ssh" / "known_hosts"


def user_ssh_config() -> Path:
    return Path.home() / ".ssh" / "config"


def checks_dir() -> Path:
    path = config_dir() / "checks"
    path.mkdir(exist_ok=True)
    return path
