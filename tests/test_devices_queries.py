"""Black-box queries answered by a real `serve-queries` agent on a device: the local one (a child
process) and a board behind a real sshd (reached through a direct-tcpip channel), each checked
against the same ONNX file run here, and gone without a trace afterwards."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from device_agents.queries import run_each
from device_agents.runtime import load_runner
from edgekit.devices import get_device, load_inventory
from edgekit.errors import EdgekitError

pytestmark = pytest.mark.timeout(300)

IMAGES = np.random.default_rng(1).random((70, 1, 8, 8), dtype=np.float32)  # more than one batch of 64


def run_here(tiny_run):
    spec = dict(tiny_run.manifest_entry(), path=str(tiny_run.model))
    return run_each(load_runner(spec), IMAGES)


def processes_in(directory: Path) -> list[int]:
    """The processes whose working directory is ``directory`` (the server and, on a board, its wrapper)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == directory:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is still a live process (a zombie left for its parent to reap counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def serving_dir(workdir: Path) -> Path:
    (run_dir,) = (workdir / "runs").iterdir()
    return run_dir.resolve()


def assert_key_private(run_dir: Path, pids: list[int]):
    key_file = run_dir / "run.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    for pid in pids:
        assert key not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")


def test_local_device_answers_queries_with_the_artifact_and_stops(edgekit_home, tiny_run, tmp_path):
    workdir = tmp_path / "local-work"
    (edgekit_home / "devices.toml").write_text(f'[devices.local]\nworkdir = "{workdir}"\n')
    device = get_device("local", load_inventory(edgekit_home / "devices.toml"))
    with device.serve_queries(tiny_run.manifest_entry(), tiny_run.model) as client:
        run_dir = serving_dir(workdir)
        pids = processes_in(run_dir)
        features = client.query(IMAGES)
        assert pids and features.shape == (70, 2, 8, 8)
        assert_key_private(run_dir, pids)
    np.testing.assert_array_equal(features, run_here(tiny_run))
    assert not any(running(pid) for pid in pids) and list((workdir / "runs").iterdir()) == []


def test_board_answers_queries_through_the_ssh_connection_and_stops(edgekit_home, sshd, tiny_run):
    (edgekit_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line)
    workdir = edgekit_home / "board-work"
    (edgekit_home / "devices.toml").write_text(sshd.device_toml("board", workdir=str(workdir)))
    device = get_device("board", load_inventory(edgekit_home / "devices.toml"), poll_interval=0.1)
    with device.serve_queries(tiny_run.manifest_entry(), tiny_run.model) as client:
        run_dir = serving_dir(workdir)
        pids = processes_in(run_dir)
        features = client.query(IMAGES)
        assert len(pids) >= 2  # the detached wrapper and the server
        assert_key_private(run_dir, pids)
    np.testing.assert_array_equal(features, run_here(tiny_run))
    assert not any(running(pid) for pid in pids) and list((workdir / "runs").iterdir()) == []
    assert len(list((workdir / "blobs").iterdir())) >= 2  # agent files and model stay cached for the next run


def test_a_server_that_cannot_start_is_reported_with_its_reason(edgekit_home, tiny_run, tmp_path):
    workdir = tmp_path / "local-work"
    (edgekit_home / "devices.toml").write_text(f'[devices.local]\nworkdir = "{workdir}"\n')
    device = get_device("local", load_inventory(edgekit_home / "devices.toml"))
    wrong = dict(tiny_run.manifest_entry(), sha256="0" * 64)
    with pytest.raises(EdgekitError, match=r"device 'local': the query server did not start: .*sha256 mismatch"):
        with device.serve_queries(wrong, tiny_run.model):
            pass
    assert list((workdir / "runs").iterdir()) == []
