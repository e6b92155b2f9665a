"""Host keys against a real sshd: unknown refused, trust on first use recorded, changed always refused."""

import subprocess

import paramiko
import pytest

from edgekit.cli import main
from edgekit.devices import get_device, load_inventory
from edgekit.devices.hostkeys import fingerprint
from edgekit.errors import EdgekitError
from sshd import SshServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def inventory(edgekit_home, sshd):
    (edgekit_home / "devices.toml").write_text(sshd.device_toml("board"))
    return edgekit_home / "devices.toml"


def server_fingerprint(server) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{server.host_key}.pub"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_fingerprint_matches_ssh_keygen(sshd):
    key = paramiko.Ed25519Key.from_private_key_file(str(sshd.host_key))
    assert fingerprint(key) == server_fingerprint(sshd)


def test_unknown_host_key_is_refused_with_type_and_fingerprint(inventory, sshd, edgekit_home):
    device = get_device("board", load_inventory(inventory))
    with pytest.raises(EdgekitError) as refused:
        device.connect()
    message = str(refused.value)
    assert "device 'board': unknown host key" in message
    assert f"ssh-ed25519 key {server_fingerprint(sshd)}" in message
    assert "edgekit devices trust board" in message
    assert not device.hostkeys.own_file.exists()


def test_trust_on_first_use_writes_edgekits_known_hosts_then_connects_plainly(inventory, sshd, capsys):
    assert main(["devices", "--inventory", str(inventory), "trust", "board"]) == 0
    assert server_fingerprint(sshd) in capsys.readouterr().out
    device = get_device("board", load_inventory(inventory))
    assert device.hostkeys.own_file.read_text() == sshd.known_hosts_line
    assert oct(device.hostkeys.own_file.stat().st_mode & 0o777) == "0o600"
    with device.connect() as conn:  # no trust asked for: the recorded key is known now
        assert conn.run("echo hello").stdout == "hello\n"


def test_changed_host_key_is_refused_even_with_trust_and_says_how_to_remove_it(inventory, sshd, edgekit_home,
                                                                                tmp_path):
    impostor = SshServer(tmp_path / "impostor", port=sshd.port, user_key=sshd.user_key)  # never started: only its key
    (edgekit_home / ".ssh" / "known_hosts").write_text(impostor.known_hosts_line)  # the "old" key
    device = get_device("board", load_inventory(inventory), trust_new=True)
    with pytest.raises(EdgekitError) as refused:
        device.connect()
    message = str(refused.value)
    assert "HOST KEY CHANGED" in message and server_fingerprint(sshd) in message
    assert server_fingerprint(impostor) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message
    assert not device.hostkeys.own_file.exists()


def test_cli_prints_one_line_and_exits_2_on_refusal(inventory, capsys):
    assert main(["devices", "--inventory", str(inventory), "check", "board"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown host key" in err and "Traceback" not in err
