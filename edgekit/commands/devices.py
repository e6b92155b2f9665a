"""``edgekit devices list | check NAME | trust NAME``: the inventory and what each board can do."""

import argparse

EXAMPLES = """examples:
  edgekit devices list                          # the inventory and each device's last check
  edgekit devices trust pi5                     # show pi5's host key fingerprint and record it (first use)
  edgekit devices check pi5                     # platform, Python, runtimes, probes, disk, throttling
  edgekit devices --inventory lab.toml check jetson --trust-new

The inventory is a TOML file with one [devices.NAME] table per board (host, port, user, key_file,
platform, python, runtime, workdir); Host aliases from ~/.ssh/config are honoured. The `local`
device (the agent as a process of this machine) always exists.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "devices", help="list, check and trust the boards in the inventory",
        description="The lab's boards: list them, record a host key on first use, and check what each can run.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", metavar="TOML",
                        help="device inventory (default: $EDGEKIT_DEVICES or ~/.config/edgekit/devices.toml)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the devices with the state and time of their last check")
    listing.set_defaults(func=list_devices)
    check = actions.add_parser("check", help="run the agent's check on a device and say what to fix")
    check.add_argument("name", nargs="?", help="device name in the inventory (default: local)")
    check.add_argument("--trust-new", action="store_true",
                       help="accept and record the host key if the device is not known yet (never a changed key)")
    check.set_defaults(func=check_device)
    trust = actions.add_parser("trust", help="record a device's host key in edgekit's known_hosts (first use)")
    trust.add_argument("name", help="device name in the inventory")
    trust.set_defaults(func=trust_device)


def list_devices(args) -> int:
    from edgekit.devices import load_inventory
    from edgekit.devices.check import last_check

    inventory = load_inventory(args.inventory)
    print(f"{'NAME':<16} {'WHERE':<32} {'PLATFORM':<12} {'RUNTIME':<8} LAST CHECK")
    for name, config in sorted(inventory.items()):
        check = last_check(name)
        state = "never" if check is None else f"{'ok' if check['ok'] else 'problems'} at {check['time']}"
        print(f"{name:<16} {_where(config):<32} {config.platform or '-':<12} {config.runtime or '-':<8} {state}")
    return 0


def check_device(args) -> int:
    from edgekit.devices import get_device, load_inventory
    from edgekit.devices.check import assess, save_check
    from edgekit.devices.inventory import LOCAL

    device = get_device(args.name or LOCAL, load_inventory(args.inventory), trust_new=args.trust_new)
    check = device.check()
    findings = assess(check, device.config.runtime)
    record = save_check(device.name, check, findings)
    platform = check.get("platform") or {}
    print(f"{device.name}: {platform.get('model') or platform.get('machine') or 'unknown platform'}, "
          f"Python {check.get('python')}; saved to {record['path']}")
    for finding in findings:
        print(f"  {'ok ' if finding.ok else 'FIX'} {finding.what}")
        if finding.fix:
            print(f"      -> {finding.fix}")
    return 0 if record["ok"] else 1


def trust_device(args) -> int:
    from edgekit.devices import get_device, load_inventory
    from edgekit.devices.hostkeys import describe

    device = get_device(args.name, load_inventory(args.inventory), trust_new=True)
    if device.config.is_local:
        print("local: nothing to trust (no SSH)")
        return 0
    with device.connect() as conn:
        key = conn.transport.get_remote_server_key()
    print(f"{device.name}: trusted {describe(key)} (edgekit known hosts: {device.hostkeys.own_file})")
    return 0


def _where(config) -> str:
    if config.is_local:
        return "this machine"
    user = f"{config.user}@" if config.user else ""
    port = f":{config.port}" if config.port else ""
    return f"{user}{config.host}{port}"
