"""The board as a separate host: sshd in its own network namespace, reached over a veth pair."""

import secrets
import threading
import time

import pytest

import netns
from edgekit.devices import get_device, load_inventory
from edgekit.devices.connection import Timeouts
from netns import ip
from sshd import SshServer, count_connects, require

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def remote_host(tmp_path):
    """sshd in a namespace of its own, reached over a veth pair whose host end stays here."""
    require(netns.available(shaping=False), "root and iproute2 (network namespaces)")
    with netns.Namespace() as host:
        server = SshServer(tmp_path / "sshd", host=host.address, port=22, netns=host.name).start()
        try:
            yield server, host.outside
        finally:
            server.stop()


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
