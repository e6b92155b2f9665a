"""The device inventory: a TOML file with one ``[devices.NAME]`` table per board.

```toml
[devices.pi5]
host = "pi5"                # a host name, an address, or a Host alias from ~/.ssh/config
port = 22
user = "pi"
key_file = "~/.ssh/id_ed25519"
platform = "rpi5"           # a hint shown in ``edgekit devices list``
python = "python3"          # the interpreter that runs the agent (3.8+)
runtime = "tflite"          # the preferred artifact format: onnx or tflite
workdir = "~/.edgekit"      # blobs/ and runs/ live here
```

A ``local`` device (the agent as a subprocess of this machine) always exists and is the default;
a ``[devices.local]`` table may set its ``python``, ``runtime`` and ``workdir``.
"""

import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgekit.devices.settings import inventory_path
from edgekit.errors import EdgekitError, unknown

LOCAL = "local"
RUNTIMES = ("onnx", "tflite")
SSH_FIELDS = {"host": str, "port": int, "user": str, "key_file": str, "platform": str,
              "python": str, "runtime": str, "workdir": str}
LOCAL_FIELDS = ("python", "runtime", "workdir", "platform")


@dataclass(frozen=True)
class DeviceConfig:
    """One inventory entry as written; ``host`` is None for the local device."""

    name: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    key_file: str | None = None
    platform: str | None = None
    python: str = "python3"
    runtime: str | None = None
    workdir: str = "~/.edgekit"  # the local device's default is the system temp dir

    @property
    def is_local(self) -> bool:
        return self.host is None


def local_device(**fields) -> DeviceConfig:
    fields.setdefault("python", sys.executable)
    fields.setdefault("workdir", str(Path(tempfile.gettempdir()) / "edgekit"))
    return DeviceConfig(name=LOCAL, **fields)


class Inventory(dict):
    """Device name -> ``DeviceConfig``; ``inventory[name]`` names the known devices when it fails."""

    path: Path | None = None

    def __missing__(self, name):
        raise unknown("device", name, self.keys())


def load_inventory(path=None) -> Inventory:
    """Read and validate the inventory. Only the default file may be missing (then only the local
    device exists); a file named by ``path`` or ``$EDGEKIT_DEVICES`` must exist."""
    named = path or os.environ.get("EDGEKIT_DEVICES")
    path = inventory_path(path)
    if named and not path.is_file():
        raise EdgekitError(f"device inventory {os.fspath(path)!r} does not exist; name an inventory TOML file "
                           "or leave it out for the default (~/.config/edgekit/devices.toml)")
    inventory = Inventory()
    inventory.path = path
    tables = _read_toml(path).get("devices", {}) if path.exists() else {}
    if not isinstance(tables, dict):
        raise EdgekitError(f"{path}: 'devices' must be a table of [devices.NAME] tables")
    for name, table in tables.items():
        inventory[name] = parse_device(name, table)
    if LOCAL not in inventory:
        inventory[LOCAL] = local_device()
    return inventory


def parse_device(name: str, table) -> DeviceConfig:
    """Validate one ``[devices.NAME]`` table."""
    if not isinstance(table, dict):
        raise EdgekitError(f"device {name!r}: must be a table, got {type(table).__name__}")
    allowed = LOCAL_FIELDS if name == LOCAL else tuple(SSH_FIELDS)
    for field, value in table.items():
        if field not in allowed:
            raise EdgekitError(f"device {name!r}: unknown field {field!r}; accepted: {', '.join(allowed)}")
        expected = SSH_FIELDS[field]
        if not isinstance(value, expected) or isinstance(value, bool) or value == "":
            raise EdgekitError(f"device {name!r}: field {field!r} must be a non-empty {expected.__name__}, "
                               f"got {value!r}")
    if "port" in table and not 0 < table["port"] < 65536:
        raise EdgekitError(f"device {name!r}: field 'port' must be 1..65535, got {table['port']}")
    if table.get("runtime", RUNTIMES[0]) not in RUNTIMES:
        raise EdgekitError(f"device {name!r}: field 'runtime' must be one of {', '.join(RUNTIMES)}, "
                           f"got {table['runtime']!r}")
    if name == LOCAL:
        return local_device(**table)
    if "host" not in table:
        raise EdgekitError(f"device {name!r}: field 'host' is required")
    return DeviceConfig(name=name, **table)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise EdgekitError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise EdgekitError(f"{path}: cannot read the inventory: {exc.strerror}") from None
