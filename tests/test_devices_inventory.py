"""The inventory: validation, the always-present local device, and ~/.ssh/config aliases."""

import getpass

import pytest

from edgekit.cli import main
from edgekit.devices import get_device, load_inventory
from edgekit.devices.sshconfig import resolve_target
from edgekit.errors import EdgekitError

pytestmark = pytest.mark.timeout(120)


def write(home, text):
    path = home / "devices.toml"
    path.write_text(text)
    return path


def test_missing_inventory_leaves_the_local_device_as_default(edgekit_home):
    inventory = load_inventory()
    assert list(inventory) == ["local"] and get_device(inventory=inventory).config.is_local


def test_environment_variable_chooses_the_inventory(edgekit_home, monkeypatch):
    monkeypatch.setenv("EDGEKIT_DEVICES", str(write(edgekit_home, '[devices.pi]\nhost = "pi.lan"\n')))
    assert set(load_inventory()) == {"pi", "local"}


@pytest.mark.parametrize("table, complaint", [
    ('[devices.pi]\nhost = "pi"\nprot = 22\n', "device 'pi': unknown field 'prot'"),
    ('[devices.pi]\nhost = "pi"\nport = "22"\n', "device 'pi': field 'port' must be a non-empty int"),
    ('[devices.pi]\nhost = "pi"\nport = 70000\n', "device 'pi': field 'port' must be 1..65535"),
    ('[devices.pi]\nhost = "pi"\nruntime = "tensorrt"\n', "device 'pi': field 'runtime' must be one of onnx, tflite"),
    ('[devices.pi]\nuser = "pi"\n', "device 'pi': field 'host' is required"),
    ('[devices.local]\nhost = "x"\n', "device 'local': unknown field 'host'"),
    ('[devices.pi\n', "not valid TOML"),
])
def test_bad_entries_name_the_device_and_field(edgekit_home, table, complaint):
    with pytest.raises(EdgekitError, match=complaint.replace("(", r"\(")):
        load_inventory(write(edgekit_home, table))


def test_unknown_device_lists_the_known_ones(edgekit_home, capsys):
    path = write(edgekit_home, '[devices.pi5]\nhost = "pi5"\n')
    with pytest.raises(EdgekitError, match="unknown device 'jetson'; accepted: local, pi5"):
        get_device("jetson", load_inventory(path))
    assert main(["devices", "--inventory", str(path), "check", "jetson"]) == 2
    assert "unknown device 'jetson'" in capsys.readouterr().err


def test_ssh_config_alias_gives_hostname_user_port_key_and_jump(edgekit_home):
    (edgekit_home / ".ssh" / "config").write_text(
        "Host bastion\n  HostName 10.0.0.1\n  User ops\n  Port 2200\n\n"
        "Host pi\n  HostName 192.168.7.2\n  User pi\n  Port 2222\n  IdentityFile ~/.ssh/pi_key\n"
        "  ProxyJump bastion,admin@gw:2022\n")
    path = write(edgekit_home, '[devices.board]\nhost = "pi"\n[devices.other]\nhost = "pi"\nuser = "me"\nport = 22\n')
    target = resolve_target(load_inventory(path)["board"])
    assert (target.hostname, target.user, target.port) == ("192.168.7.2", "pi", 2222)
    assert target.key_files == (str(edgekit_home / ".ssh" / "pi_key"),)
    assert [(j.hostname, j.user, j.port) for j in target.jumps] == [("10.0.0.1", "ops", 2200),
                                                                      ("gw", "admin", 2022)]
    other = resolve_target(load_inventory(path)["other"])  # the inventory wins over the ssh config
    assert (other.user, other.port) == ("me", 22)


def test_connects_through_a_proxyjump_over_a_real_sshd(edgekit_home, sshd):
    """The jump host and the target are the same sshd: the second hop is a direct-tcpip channel."""
    (edgekit_home / ".ssh" / "config").write_text(
        f"Host jump\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {getpass.getuser()}\n"
        f"  IdentityFile {sshd.user_key}\n\n"
        f"Host board-alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n  ProxyJump jump\n")
    (edgekit_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line)
    path = write(edgekit_home, f'[devices.board]\nhost = "board-alias"\nkey_file = "{sshd.user_key}"\n')
    with get_device("board", load_inventory(path)).connect() as conn:
        assert len(conn._clients) == 2
        assert conn.run("echo through").stdout == "through\n"


def test_list_shows_the_inventory_and_last_check(edgekit_home, capsys):
    path = write(edgekit_home, '[devices.pi5]\nhost = "pi5"\nuser = "pi"\nplatform = "rpi5"\nruntime = "tflite"\n')
    assert main(["devices", "--inventory", str(path), "list"]) == 0
    out = capsys.readouterr().out
    assert "pi@pi5" in out and "rpi5" in out and "tflite" in out and "never" in out


def test_an_inventory_named_but_missing_is_refused(edgekit_home, monkeypatch, capsys):
    missing = edgekit_home / "lab-devics.toml"
    assert main(["devices", "--inventory", str(missing), "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and "does not exist" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("EDGEKIT_DEVICES", str(missing))
    with pytest.raises(EdgekitError, match="does not exist"):
        load_inventory()
