"""The board as a separate host: sshd in its own network namespace, reached over a veth pair."""

import os
import secrets
import shutil
import subprocess
import threading
import time

import pytest

from edgekit.devices import get_device, load_inventory
from edgekit.devices.connection import Timeouts
from sshd import SshServer, count_connects, require

pytestmark = pytest.mark.timeout(300)


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def remote_host(tmp_path):
    """A namespace with address 10.213.N.2 on a veth pair whose other end (10.213.N.1) stays here."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "root and iproute2 (network namespaces)")
    tag = secrets.token_hex(3)
    netns, outside, inside = f"ek-{tag}", f"ekh{tag}", f"ekd{tag}"
    subnet = f"10.213.{int(tag, 16) % 250 + 1}"
    ip("netns", "add", netns)
    server = None
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", netns)
        ip("addr", "add", f"{subnet}.1/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("netns", "exec", netns, "ip", "addr", "add", f"{subnet}.2/30", "dev", inside)
        ip("netns", "exec", netns, "ip", "link", "set", inside, "up")
        ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        server = SshServer(tmp_path / "sshd", host=f"{subnet}.2", port=22, netns=netns).start()
        yield server, outside
    finally:
        if server:
            server.stop()
        subprocess.run(["ip", "link", "del", outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def test_run_on_a_device_in_its_own_network_namespace_survives_a_stalled_link(edgekit_home, remote_host, tiny_run,
                                                                                 tmp_path):
    server, link = remote_host
    (edgekit_home / ".ssh" / "known_hosts").write_text(server.known_hosts_line)
    (edgekit_home / "devices.toml").write_text(server.device_toml("pi", workdir=str(edgekit_home / "pi-work")))
    device = get_device("pi", load_inventory(edgekit_home / "devices.toml"), poll_interval=0.1,
                        timeouts=Timeouts(command=2.0, keepalive=1), reconnect_delays=(0.5, 1, 2, 4, 4))
    replug = threading.Timer(3.0, ip, ("link", "set", link, "up"))

    def stall_link(state):
        """Take the cable out for 3 s: no RST, the connection just goes silent."""
        if state["state"] == "running" and not replug.is_alive() and not replug.finished.is_set():
            ip("link", "set", link, "down")
            replug.start()

    connects = count_connects(device)
    started = time.monotonic()
    result = device.deploy_and_run(tiny_run.spec(repetitions=30000), tiny_run.files, secrets.token_bytes(32),
                                   progress=stall_link, dest=tmp_path / "got")
    replug.join()
    assert replug.finished.is_set() and len(connects) >= 2
    assert result.ok, (result.error, result.log_tail)
    assert result.records_path.read_text().count("\n") > 4 * 30000
    assert time.monotonic() - started < 120
