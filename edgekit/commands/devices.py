"""``edgekit devices list | check NAME | trust NAME``: the inventory and what each board can do."""

from edgekit.devices.inventory import LOCAL


def register(subparsers):
    parser = subparsers.add_parser("devices", help="list, check and trust the boards in the inventory")
    parser.add_argument("--inventory", metavar="TOML",
                        help="device inventory (default: $EDGEKIT_DEVICES or ~/.config/edgekit/devices.toml)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the devices with the state and time of their last check")
    listing.set_defaults(func=list_devices)
    check = actions.add_parser("check", help="run the agent's check on a device and say what to fix")
    check.add_argument("name", nargs="?", default=LOCAL)
    check.add_argument("--trust-new", action="store_true",
                       help="accept and record the host key if the device is not known yet (never a changed key)")
    check.set_defaults(func=check_device)
    trust = actions.add_parser("trust", help="record a device's host key in edgekit's known_hosts (first use)")
    trust.add_argument("name")
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

    device = get_device(args.name, load_inventory(args.inventory), trust_new=args.trust_new)
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
