"""A tiny sweep on the local device, end to end: rows, columns, value ranges, files; then a
sweep interrupted in the middle and one whose configurations fail, each resumed with no
configuration lost or repeated."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from cloud_side.collector import CollectorThread
from edgekit import results
from edgekit.cli import main
from edgekit.data import load_dataset
from edgekit.experiment.evaluate import choose_private
from edgekit.experiment import sweep as sweep_module
from edgekit.experiment.measure import summary_measurements
from experiment_support import write_experiment

pytestmark = pytest.mark.slow

CONFIGURATIONS = {
    "local_conv1_onnx_fp32_none", "local_conv1_onnx_fp32_dropout-0.5@simulated",
    "local_ReLU2_onnx_fp32_none", "local_ReLU2_onnx_fp32_dropout-0.5@simulated",
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the model is trained and exported once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def workspace(tmp_path, cache, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(cache))
    monkeypatch.setenv("EDGEKIT_CONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("EDGEKIT_DEVICES", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def only_run(root):
    (run,) = results.run_dirs(root)
    return run


def test_tiny_sweep_end_to_end(workspace):
    experiment = write_experiment(workspace)
    assert main(["run", str(experiment), "--output", "out"]) == 0
    run = only_run(workspace / "out")
    summary = pd.read_parquet(run / "summary.parquet")
    assert list(summary.columns) == [c.name for c in results.SUMMARY]
    assert set(summary["configuration"]) == CONFIGURATIONS and len(summary) == 4  # x 1 attack
    assert (summary["status"] == "ok").all() and (summary["error"] == "").all()
    assert (summary["attack"] == "whitebox").all()
    assert summary["latency_ms_p50"].between(0, 1000).all()
    assert (summary["latency_ms_p95"] >= summary["latency_ms_p50"]).all()
    assert summary["ssim_mean"].between(-1, 1).all() and summary["psnr_mean"].between(0, 100).all()
    assert summary["accuracy"].between(0, 1).all()
    assert (summary["n_images"] == 8).all() and (summary["n_attacked"] == 3).all()
    # conv1's feature is 8x24x24 float32, ReLU2's 16x8x8
    assert dict(zip(summary["split"], summary["feature_bytes"])) == {"conv1": 8 * 24 * 24 * 4, "ReLU2": 16 * 8 * 8 * 4}
    # no power sensor here: energy is not measured, and not made up
    no_probe = summary["power_probe"] == "none"
    assert summary.loc[no_probe, "energy_mj_per_inference"].isna().all()
    # the simulated defence rides on the undefended run: same latencies, its own accuracy and attack
    by_key = summary.set_index("configuration")
    assert by_key.loc["local_conv1_onnx_fp32_none", "latency_ms_p50"] == \
        by_key.loc["local_conv1_onnx_fp32_dropout-0.5@simulated", "latency_ms_p50"]
    assert set(by_key["defence_applied"]) == {"none", "simulated"}
    assert summary["defence_ms_p50"].isna().all()  # no defence ran on the device

    inferences = pd.read_parquet(run / "inferences.parquet")
    assert len(inferences) == 4 * 8 and inferences["latency_ms"].gt(0).all()
    images = pd.read_parquet(run / "attack_images.parquet")
    assert len(images) == 4 * 3 and images["ssim"].between(-1, 1).all()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["experiment"]["name"] == "tiny"
    assert set(manifest["device_reports"]) == CONFIGURATIONS
    assert set(manifest["stage_seconds"]) == {"train", "export", "devices", "attacks"}
    recons = results.read_reconstructions(run, "local_conv1_onnx_fp32_none")
    assert recons["whitebox"].shape == (3, 1, 28, 28)
    assert np.load(run / "inputs.npy").shape == (8, 1, 28, 28)

    # the online phase: each configuration measured end to end; its answers as accurate as offline,
    # the simulated defence's too (applied on the cloud side with the same seeds)
    assert (summary["online_accuracy"] == summary["accuracy"]).all()
    for column in ("e2e_ms_p50", "cloud_ms_p50", "transfer_ms_p50", "link_rtt_ms_p50", "link_upload_mbps"):
        assert (summary[column] > 0).all(), column
    for part in ("e2e", "cloud", "transfer", "link_rtt"):
        assert (summary[f"{part}_ms_p95"] >= summary[f"{part}_ms_p50"]).all(), part
    assert (summary["e2e_ms_p50"] > summary["latency_ms_p50"]).all()
    assert summary.loc[no_probe, "e2e_mj_per_inference"].isna().all()
    assert by_key.loc["local_conv1_onnx_fp32_none", "e2e_ms_p50"] == \
        by_key.loc["local_conv1_onnx_fp32_dropout-0.5@simulated", "e2e_ms_p50"]
    online = results.load(run, table="online_inferences")
    assert list(online.columns) == ["run"] + [c.name for c in results.ONLINE_INFERENCES]
    assert len(online) == 4 * 8 and set(online["configuration"]) == CONFIGURATIONS
    assert (online["e2e_ms"] > online["device_ms"] + online["cloud_ms"]).all()
    labels = choose_private(load_dataset("mnist-subset"), 8, 3).labels
    online_accuracy = (online["prediction"] == labels[online["index"]]).groupby(online["configuration"]).mean()
    assert online_accuracy.to_dict() == by_key["online_accuracy"].to_dict()


def test_summary_takes_the_device_defence_median_from_the_agent_report():
    report = {"statistics": {"p50_ms": 0.02}, "defence_statistics": {"count": 8, "p50_ms": 0.004}}
    assert summary_measurements(report)["defence_ms_p50"] == 0.004
    assert math.isnan(summary_measurements({**report, "defence_statistics": None})["defence_ms_p50"])


def test_interrupted_sweep_resumes_without_losing_or_repeating(workspace, monkeypatch):
    experiment = write_experiment(workspace)
    recorded = []
    original = sweep_module.Sweep._record

    def record_then_interrupt(self, configuration, outcome):
        if len(recorded) == 2:
            raise KeyboardInterrupt
        original(self, configuration, outcome)
        recorded.append(configuration.key)

    monkeypatch.setattr(sweep_module.Sweep, "_record", record_then_interrupt)
    assert main(["run", str(experiment), "--output", "out"]) == 130
    run = only_run(workspace / "out")
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"
    assert results.finished_keys(run) == set(recorded)
    stamps = {key: (results.part_dir(run, key) / "summary.parquet").stat().st_mtime_ns for key in recorded}

    redone = []

    def record_and_count(self, configuration, outcome):
        redone.append(configuration.key)
        original(self, configuration, outcome)

    monkeypatch.setattr(sweep_module.Sweep, "_record", record_and_count)
    assert main(["run", str(experiment), "--output", "out", "--resume"]) == 0
    assert sorted(redone) == sorted(CONFIGURATIONS - set(recorded))
    summary = results.load(run)
    assert sorted(summary["configuration"]) == sorted(CONFIGURATIONS)
    assert (summary["status"] == "ok").all()
    assert all((results.part_dir(run, key) / "summary.parquet").stat().st_mtime_ns == stamp
               for key, stamp in stamps.items())


def test_failed_configurations_are_recorded_and_redone_on_resume(workspace, monkeypatch):
    experiment = write_experiment(workspace)
    original = sweep_module.evaluate

    def fail_on_relu2(configuration, *args):
        if configuration.split == "ReLU2":
            raise RuntimeError("board unplugged\nmid-run")
        return original(configuration, *args)

    monkeypatch.setattr(sweep_module, "evaluate", fail_on_relu2)
    assert main(["run", str(experiment), "--output", "out"]) == 1
    run = only_run(workspace / "out")
    summary = results.load(run)
    failed = summary[summary["status"] == "failed"]
    assert set(failed["split"]) == {"ReLU2"} and len(failed) == 2
    assert (failed["error"] == "board unplugged mid-run").all() and failed["ssim_mean"].isna().all()
    assert (summary.loc[summary["split"] == "conv1", "status"] == "ok").all()

    monkeypatch.setattr(sweep_module, "evaluate", original)
    assert main(["run", str(experiment), "--output", "out", "--resume", str(run)]) == 0
    summary = results.load(run)
    assert sorted(summary["configuration"]) == sorted(CONFIGURATIONS) and (summary["status"] == "ok").all()


def test_runs_whose_features_never_arrive_fail_and_leave_nothing_behind(workspace, monkeypatch):
    experiment = write_experiment(workspace)
    register, forget = CollectorThread.register_run, CollectorThread.forget_run
    registered, forgotten = [], []

    def register_relu2_miscounted(self, run_id, key, expect):
        registered.append(run_id)
        if expect["shape"] == [16, 8, 8]:  # ReLU2's feature: the agent's END is refused
            expect = dict(expect, count=expect["count"] + 1)
        register(self, run_id, key, expect)

    def record_forget(self, run_id):
        forgotten.append(run_id)
        forget(self, run_id)

    monkeypatch.setattr(CollectorThread, "register_run", register_relu2_miscounted)
    monkeypatch.setattr(CollectorThread, "forget_run", record_forget)
    assert main(["run", str(experiment), "--output", "out"]) == 1
    run = only_run(workspace / "out")
    summary = results.load(run)
    assert set(summary.loc[summary["status"] == "failed", "split"]) == {"ReLU2"}
    assert (summary.loc[summary["split"] == "conv1", "status"] == "ok").all()
    assert len(registered) == 2 and sorted(forgotten) == sorted(registered)  # one agent run per split
    assert list((run / "features").iterdir()) == []  # no sealed run, no .partial left


def test_resume_refuses_a_run_of_another_experiment(workspace, capsys):
    experiment = write_experiment(workspace)
    run = workspace / "out" / "tiny" / "old"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"fingerprint": "0000", "experiment": {"name": "tiny"}}))
    assert main(["run", str(experiment), "--output", "out", "--resume", str(run)]) == 2
    assert "was started from a different experiment" in capsys.readouterr().err
