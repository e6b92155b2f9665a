"""Devices: the inventory, SSH boards and the local machine, each able to run the agent.

```python
from edgekit.devices import get_device, load_inventory, run_on_devices, DeviceJob
device = get_device("pi5")                       # or "local" (the default)
result = device.deploy_and_run(spec, {"model.onnx": path, "inputs.npy": shard}, run_key)
result.status, result.report, result.records_path, result.features_path, result.log_tail
```
"""

from edgekit.devices.agent_run import RunResult
from edgekit.devices.inventory import LOCAL, DeviceConfig, Inventory, load_inventory
from edgekit.devices.local import LocalDevice
from edgekit.devices.pool import DeviceJob, run_on_devices
from edgekit.devices.ssh import SshDevice


def get_device(name: str = LOCAL, inventory: Inventory | None = None, **options) -> LocalDevice | SshDevice:
    """The device called ``name`` (an EdgekitError listing the known ones otherwise).

    ``options`` go to ``SshDevice`` (``trust_new``, ``timeouts``, ``poll_interval``, ...) and are
    ignored by the local device.
    """
    config = (inventory if inventory is not None else load_inventory())[name]
    if config.is_local:
        return LocalDevice(config)
    return SshDevice(config, **options)


__all__ = ["DeviceConfig", "DeviceJob", "Inventory", "LocalDevice", "RunResult", "SshDevice", "get_device",
           "load_inventory", "run_on_devices"]
