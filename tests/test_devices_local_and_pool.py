"""The local device (same spec, same files, no SSH) and several devices at once."""

import secrets
import stat

import numpy as np
import pytest

from edgekit.devices import DeviceJob, get_device, load_inventory, run_on_devices
from edgekit.errors import EdgekitError
from sshd import free_port

pytestmark = pytest.mark.timeout(300)


def test_local_device_runs_the_agent_with_a_private_key_file(edgekit_home, tiny_run, tmp_path):
    workdir = tmp_path / "local-work"
    (edgekit_home / "devices.toml").write_text(f'[devices.local]\nworkdir = "{workdir}"\n')
    device = get_device("local", load_inventory(edgekit_home / "devices.toml"))
    key = secrets.token_bytes(32)
    observed = {}

    def inspect(state):
        if not observed:
            (run_dir,) = (workdir / "runs").iterdir()
            observed["dir"] = stat.S_IMODE(run_dir.stat().st_mode)
            observed["key"] = stat.S_IMODE((run_dir / "run.key").stat().st_mode)
            observed["key_text"] = (run_dir / "run.key").read_text()

    # nothing listens on the cloud port: the agent fails to stream, after reading the key
    cloud = {"host": "127.0.0.1", "port": free_port(), "key_file": "x"}
    failed = device.deploy_and_run(tiny_run.spec(cloud=cloud), tiny_run.files, key, progress=inspect,
                                   dest=tmp_path / "cloud")
    result = device.deploy_and_run(tiny_run.spec(), tiny_run.files, key, dest=tmp_path / "got")
    assert observed == {"dir": 0o700, "key": 0o600, "key_text": key.hex()}
    assert failed.status == "failed" and failed.error.startswith("device 'local': agent exited with status 1")
    assert result.ok and result.report["status"] == "ok"
    assert np.load(result.features_path, allow_pickle=False).shape[0] == 4
    assert list((workdir / "runs").iterdir()) == []  # the per-run dirs are gone


def test_spec_naming_a_file_not_sent_is_refused(edgekit_home, tiny_run):
    with pytest.raises(EdgekitError, match=r"device 'local': spec inputs.path 'inputs.npy' is not among"):
        get_device("local").deploy_and_run(tiny_run.spec(), {"model.onnx": tiny_run.model}, secrets.token_bytes(32))


def test_one_failing_device_does_not_stop_the_others(edgekit_home, sshd, tiny_run, tmp_path):
    (edgekit_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line)
    (edgekit_home / "devices.toml").write_text(
        sshd.device_toml("board", workdir=str(edgekit_home / "w"))
        + f'[devices.gone]\nhost = "127.0.0.1"\nport = {free_port()}\n')
    inventory = load_inventory(edgekit_home / "devices.toml")
    key = secrets.token_bytes(32)
    jobs = [DeviceJob(get_device(name, inventory, poll_interval=0.1), tiny_run.spec(), tiny_run.files, key,
                      dest=tmp_path / name) for name in ("board", "gone", "local")]
    board, gone, local = run_on_devices(jobs)
    assert board.ok and local.ok, (board.error, local.error)
    assert gone.status == "failed" and gone.error.startswith("device 'gone': cannot reach")
    assert board.records_path.read_text() and local.records_path.read_text()
