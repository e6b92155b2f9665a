"""The agent deployed and run end to end through a real sshd (the "board" is this machine)."""

import getpass
import json
import os
import secrets
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.devices import get_device, load_inventory
from edgekit.devices.connection import Connection
from edgekit.errors import EdgekitError
from sshd import count_connects, require

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def board(edgekit_home, sshd):
    """An inventory with device "board" on the test sshd, its host key in ~/.ssh/known_hosts."""
    (edgekit_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line)
    workdir = edgekit_home / "board-work"
    (edgekit_home / "devices.toml").write_text(sshd.device_toml("board", workdir=str(workdir)))
    inventory = load_inventory(edgekit_home / "devices.toml")
    return get_device("board", inventory, poll_interval=0.1, reconnect_delays=(0.2, 0.5, 1, 2)), workdir


def test_run_end_to_end_fetches_report_records_and_features_and_cleans_up(board, tiny_run, tmp_path):
    device, workdir = board
    seen = []
    result = device.deploy_and_run(tiny_run.spec(), tiny_run.files, secrets.token_bytes(32),
                                   progress=lambda state: seen.append(state["state"]), dest=tmp_path / "got")
    assert result.status == "done", (result.error, result.log_tail)
    assert result.report["status"] == "ok"
    assert result.records_path.read_text().count("\n") >= 4
    assert np.load(result.features_path, allow_pickle=False).shape[0] == 4
    assert seen[-1] == "done"
    assert os.listdir(workdir / "runs") == []
    assert len(os.listdir(workdir / "blobs")) >= 3  # agent files, model, inputs stay cached


def test_repeat_deploy_sends_nothing_already_on_the_device(board, tiny_run, tmp_path, monkeypatch):
    device, _ = board
    key = secrets.token_bytes(32)
    sent, original = [], Connection.put
    monkeypatch.setattr(Connection, "put", lambda self, local, remote: sent.append(local.name) or
                        original(self, local, remote))
    device.deploy_and_run(tiny_run.spec(), tiny_run.files, key, dest=tmp_path / "1")
    first = list(sent)
    sent.clear()
    result = device.deploy_and_run(tiny_run.spec(), tiny_run.files, key, dest=tmp_path / "2")
    assert {"model.onnx", "inputs.npy", "__main__.py"} <= set(first)
    assert sent == [] and result.ok


def test_dropped_connection_mid_run_is_resumed_and_the_report_is_complete(board, tiny_run, sshd, tmp_path):
    device, _ = board
    dropped = threading.Event()

    def drop_once(state):
        if state["state"] == "running" and not dropped.is_set():
            dropped.set()
            sshd.drop_connections()  # kills sshd's session processes: the TCP connection dies

    spec = tiny_run.spec(repetitions=30000)
    connects = count_connects(device)
    result = device.deploy_and_run(spec, tiny_run.files, secrets.token_bytes(32), progress=drop_once,
                                   dest=tmp_path / "got")
    assert dropped.is_set() and len(connects) >= 2
    assert result.status == "done", (result.error, result.log_tail)
    assert result.report["status"] == "ok"
    assert result.records_path.read_text().count("\n") > 4 * 30000


def test_killed_agent_is_reported_failed_with_cause_and_log_tail_and_can_be_retried(board, tiny_run, tmp_path):
    device, workdir = board

    def kill_agent(state):
        if state["state"] == "running" and state.get("pid"):
            os.kill(state["pid"], 9)  # the device is this machine: its pid is ours to kill

    spec = tiny_run.spec(repetitions=30000)
    result = device.deploy_and_run(spec, tiny_run.files, secrets.token_bytes(32), progress=kill_agent,
                                   dest=tmp_path / "killed")
    assert result.status == "failed"
    assert "killed by signal 9" in result.error and "'board'" in result.error
    assert "edgekit: agent exit status 137" in result.log_tail
    assert os.listdir(workdir / "runs") == []
    retried = device.deploy_and_run(tiny_run.spec(), tiny_run.files, secrets.token_bytes(32), dest=tmp_path / "again")
    assert retried.ok


def test_run_key_is_a_0600_file_in_a_0700_dir_and_never_on_a_command_line(board, tiny_run, tmp_path, monkeypatch):
    device, workdir = board
    key = secrets.token_bytes(32)
    commands, observed = [], {}
    original_run = Connection.run
    monkeypatch.setattr(Connection, "run",
                        lambda self, cmd, *a, **k: commands.append(cmd) or original_run(self, cmd, *a, **k))

    def inspect(state):
        if observed:
            return
        (run_dir,) = (workdir / "runs").iterdir()
        observed["dir"] = stat.S_IMODE(run_dir.stat().st_mode)
        observed["key"] = stat.S_IMODE((run_dir / "run.key").stat().st_mode)
        observed["key_text"] = (run_dir / "run.key").read_text()
        observed["ps"] = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout

    # nothing listens on the cloud port: the agent fails to stream, after the key is in place
    cloud = {"host": "127.0.0.1", "port": 9, "key_file": "ignored"}
    device.deploy_and_run(tiny_run.spec(cloud=cloud, repetitions=200), tiny_run.files, key, progress=inspect,
                          dest=tmp_path / "got")
    assert observed["dir"] == 0o700 and observed["key"] == 0o600
    assert observed["key_text"].strip() == key.hex()
    assert key.hex() not in observed["ps"]
    assert not any(key.hex() in command for command in commands)


def configured(home, sshd, **fields):
    (home / "devices.toml").write_text(sshd.device_toml("board", **fields))
    return get_device("board", load_inventory(home / "devices.toml"))


def test_missing_runtime_is_refused_with_the_fix(board, tiny_run, edgekit_home, sshd):
    device = configured(edgekit_home, sshd, python=f"{sys.executable} -S", workdir=str(edgekit_home / "w"))
    with pytest.raises(EdgekitError, match=r"device 'board': no onnx runtime .* fix: pip install onnxruntime"):
        device.deploy_and_run(tiny_run.spec(), tiny_run.files, secrets.token_bytes(32))
    assert os.listdir(edgekit_home / "w" / "runs") == [] and os.listdir(edgekit_home / "w" / "blobs") == []


def test_missing_python_is_named(board, tiny_run, edgekit_home, sshd):
    device = configured(edgekit_home, sshd, python="python-does-not-exist")
    with pytest.raises(EdgekitError, match="device 'board': python command 'python-does-not-exist' not found"):
        device.deploy_and_run(tiny_run.spec(), tiny_run.files, secrets.token_bytes(32))


def test_python_older_than_3_8_is_refused(board, tiny_run, edgekit_home, sshd):
    old = edgekit_home / "python3.7"  # answers the probe as a Python 3.7 would
    old.write_text("#!/bin/sh\necho '{\"version\": [3, 7, 3], \"executable\": \"/usr/bin/python3.7\"}'\n")
    old.chmod(0o755)
    device = configured(edgekit_home, sshd, python=str(old))
    with pytest.raises(EdgekitError, match=r"device 'board': '.*python3.7' is Python 3.7.3; the agent needs 3.8\+"):
        device.deploy_and_run(tiny_run.spec(), tiny_run.files, secrets.token_bytes(32))


def test_full_disk_is_refused_before_sending(board, tiny_run, edgekit_home, sshd, tmp_path):
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], capture_output=True)
    require(mounted.returncode == 0, "mounting a tmpfs (root)")
    try:
        big = tmp_path / "inputs.npy"
        np.save(big, np.zeros((80_000, 1, 8, 8), dtype=np.float32))  # 20 MB
        device = configured(edgekit_home, sshd, workdir=str(small / "w"))
        with pytest.raises(EdgekitError, match=r"device 'board': not enough free disk .* MiB free"):
            device.deploy_and_run(tiny_run.spec(), {**tiny_run.files, "inputs.npy": big}, secrets.token_bytes(32))
        assert os.listdir(small / "w" / "blobs") == [] and os.listdir(small / "w" / "runs") == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_check_over_ssh_is_saved_and_listed(edgekit_home, sshd, capsys):
    workdir = edgekit_home / "checked"
    inventory = edgekit_home / "devices.toml"
    inventory.write_text(sshd.device_toml("board", workdir=str(workdir)))
    status = main(["devices", "--inventory", str(inventory), "check", "board", "--trust-new"])  # first use
    out = capsys.readouterr().out
    saved = json.loads((edgekit_home / "edgekit-config" / "checks" / "board.json").read_text())
    assert status == (0 if saved["ok"] else 1)
    assert f"Python {sys.version.split()[0]}" in out and "onnx runtime: onnxruntime" in out
    assert "onnxruntime" in saved["check"]["runtimes"] and saved["check"]["workdir"] == str(workdir)
    assert os.listdir(workdir / "runs") == []
    assert main(["devices", "--inventory", str(inventory), "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{getpass.getuser()}@127.0.0.1:{sshd.port}" in listed
    assert ("ok at" if saved["ok"] else "problems at") in listed
