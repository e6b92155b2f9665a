"""The sweep's side of the online phase: its settings, its columns from an agent report, its port."""

import math
import socket

import pytest

from edgekit.errors import EdgekitError
from edgekit.experiment.config import parse_experiment
from edgekit.experiment.measure import agent_spec, online_measurements
from edgekit.experiment.online import OnlineSession
from edgekit.results import SUMMARY

BASE = {"name": "x", "model": "lenet", "dataset": "mnist-subset", "splits": ["conv1"]}
ONLINE_COLUMNS = {"e2e_ms_p50", "e2e_ms_p95", "e2e_mj_per_inference", "cloud_ms_p50", "cloud_ms_p95",
                  "transfer_ms_p50", "transfer_ms_p95", "link_rtt_ms_p50", "link_rtt_ms_p95", "link_upload_mbps"}


def test_online_settings_reach_the_run_spec_and_the_fingerprint_but_not_the_port():
    experiment = parse_experiment({**BASE, "online": {"repetitions": 3, "goodput_seconds": 2.5, "port": 7100}})
    assert experiment.online.spec(7100) == {"repetitions": 3, "rtt_samples": 30, "transfer_samples": 30,
                                            "goodput_seconds": 2.5, "port": 7100}
    spec = agent_spec("0" * 32, {"outputs": [{"name": "y", "shape": [1, 2], "dtype": "float32"}],
                                 "inputs": [{"name": "x", "shape": [1, 1, 2, 2], "dtype": "float32"}],
                                 "sha256": "0" * 64, "format": "onnx"},
                      "m.onnx", "0" * 64, experiment, {"kind": "none"}, None, experiment.online.spec(7100))
    assert spec["online"]["port"] == 7100
    elsewhere = parse_experiment({**BASE, "online": {"repetitions": 3, "goodput_seconds": 2.5, "port": 7200}})
    assert elsewhere.fingerprint() == experiment.fingerprint()
    assert parse_experiment({**BASE, "online": {"repetitions": 2}}).fingerprint() != experiment.fingerprint()
    with pytest.raises(EdgekitError, match=r"online\.goodput_seconds: .*greater than 0"):
        parse_experiment({**BASE, "online": {"goodput_seconds": 0}})


def test_summary_columns_from_an_online_report_and_nan_without_one():
    stats = {"p50_ms": 2.0, "p95_ms": 3.0}
    report = {"online": {"statistics": stats, "cloud_statistics": stats, "energy": None,
                         "link": {"rtt": stats, "transfer": stats, "goodput": {"mbps": 7.5}}}}
    columns = online_measurements(report)
    assert set(columns) == ONLINE_COLUMNS <= {c.name for c in SUMMARY}
    assert columns["link_upload_mbps"] == 7.5 and columns["transfer_ms_p95"] == 3.0
    assert math.isnan(columns["e2e_mj_per_inference"])  # no probe: not measured, not made up
    assert all(math.isnan(v) for v in online_measurements({"online": None}).values())
    no_acks = {"online": {**report["online"], "link": {**report["online"]["link"], "goodput": {"mbps": None}}}}
    assert math.isnan(online_measurements(no_acks)["link_upload_mbps"])


def test_a_port_in_use_is_one_line_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        experiment = parse_experiment({**BASE, "online": {"port": taken.getsockname()[1]}})
        with pytest.raises(EdgekitError, match=r"^online\.port: cannot listen on 127\.0\.0\.1:\d+"):
            with OnlineSession(experiment, progress=None):
                pass


def test_disabled_online_phase_starts_no_server():
    with OnlineSession(parse_experiment({**BASE, "online": {"enabled": False}}), progress=None) as online:
        assert online.server is None and online.register("0" * 32, b"k" * 32, {}, ()) is None
