"""What-if link profiles: the experiment's [[links]], the link_predictions table derived from the
summary (and only from it), and `edgekit layers`' upload times."""

import math

import pandas as pd
import pytest

from edgekit import results
from edgekit.cli import main
from edgekit.experiment.config import load_experiment
from edgekit.links import SHIPPED_LINKS, LinkProfile
from edgekit.predictions import link_predictions
from experiment_support import TINY, synthetic_run, write_experiment

# LeNet on MNIST as a Raspberry Pi 4 runs it: conv1's feature is 8x24x24 fp32, fc1's 120.
CONV1 = {"configuration": "pi4_conv1_onnx_fp32_dropout-0.5", "device": "pi4", "split": "conv1",
         "defence": "dropout-0.5", "applied": "device", "feature_bytes": 18_432, "latency": 0.11, "cloud": 0.05,
         "energy": 0.4, "ssim": {"whitebox": 0.28}}
FC1 = {"configuration": "pi4_fc1_onnx_fp32_none", "device": "pi4", "split": "fc1", "feature_bytes": 480,
       "latency": 0.36, "cloud": 0.02, "ssim": {"whitebox": 0.12}}
OWN_LINK = {"name": "farm-gateway", "upload_mbps": 0.25, "rtt_ms": 400.0, "radio_w": 0.6, "source": "iperf3"}


def test_experiment_links_default_to_the_shipped_profiles_and_name_them_or_define_their_own(tmp_path):
    default = load_experiment(write_experiment(tmp_path))
    assert [link.name for link in default.links] == ["ethernet", "wifi", "lte", "3g", "nb-iot"]
    text = TINY.replace("warmup = 1", "warmup = 1\nlinks = ['nb-iot', {name = 'farm-gateway', upload_mbps = 0.25, "
                                      "rtt_ms = 400, radio_w = 0.6, source = 'iperf3'}]")
    chosen = load_experiment(write_experiment(tmp_path, text, "chosen.toml"))
    assert chosen.links == [SHIPPED_LINKS["nb-iot"], LinkProfile(**OWN_LINK)]
    assert chosen.links[0].upload_mbps == 0.0625 and chosen.links[0].rtt_ms == 1000
    # links feed predictions only: adding one must not stop a run from being resumed
    assert chosen.fingerprint() == default.fingerprint()
    # the manifest records the resolved figures, so a later edgekit's profiles cannot change old predictions
    recorded = chosen.model_dump(mode="json")["links"]
    assert recorded[0] == {"name": "nb-iot", "upload_mbps": 0.0625, "rtt_ms": 1000.0, "radio_w": 0.8,
                           "source": SHIPPED_LINKS["nb-iot"].source}


def test_predicted_e2e_is_device_plus_rtt_plus_transfer_plus_cloud():
    summary = results.conform("summary", pd.DataFrame([
        {**_identity(CONV1), "feature_bytes": 18_432, "latency_ms_p50": 0.11, "defence_ms_p50": 0.02,
         "cloud_ms_p50": 0.05, "energy_mj_per_inference": 0.4, "attack": attack, "status": "ok"}
        for attack in ("whitebox", "blackbox-noise")]))  # one row per attack: one prediction per configuration
    nb_iot, own = SHIPPED_LINKS["nb-iot"], LinkProfile(**OWN_LINK)
    table = results.conform("link_predictions", link_predictions(summary, [nb_iot, own, SHIPPED_LINKS["wifi"]]))
    assert list(table["link"]) == ["nb-iot", "farm-gateway", "wifi"]
    row = table.iloc[0]
    assert row["device_ms_p50"] == pytest.approx(0.13)             # the device applied the defence: its time counts
    assert row["predicted_transfer_ms"] == pytest.approx(2359.296)  # 18,432 B at 62.5 kbit/s
    assert row["predicted_e2e_ms"] == pytest.approx(0.13 + 1000 + 2359.296 + 0.05)
    assert row["predicted_radio_mj_per_inference"] == pytest.approx(0.8 * 2359.296)
    assert row["predicted_energy_mj_per_inference"] == pytest.approx(0.4 + 0.8 * 2359.296)
    assert table.iloc[1]["predicted_transfer_ms"] == pytest.approx(18_432 * 8 / 0.25e6 * 1e3)
    wifi = table.iloc[2]  # no radio power shipped for Wi-Fi: no energy estimate, never a made-up one
    assert math.isnan(wifi["profile_radio_w"]) and math.isnan(wifi["predicted_energy_mj_per_inference"])
    # measured names never appear in the predictions: nothing there can pass for a measurement
    assert not {"e2e_ms_p50", "e2e_mj_per_inference", "transfer_ms_p50", "link_upload_mbps",
                "link_rtt_ms_p50"} & set(table.columns)


def test_predicted_energy_is_nan_without_a_measured_device_share_and_e2e_nan_without_cloud_time():
    summary = results.conform("summary", pd.DataFrame([
        {**_identity(FC1), "feature_bytes": 480, "latency_ms_p50": 0.36, "cloud_ms_p50": math.nan,
         "energy_mj_per_inference": math.nan, "attack": "whitebox", "status": "ok"}]))
    (row,) = link_predictions(summary, [SHIPPED_LINKS["lte"]]).to_dict("records")
    assert row["predicted_radio_mj_per_inference"] == pytest.approx(3.9 * 0.64)
    assert math.isnan(row["predicted_energy_mj_per_inference"]) and math.isnan(row["predicted_e2e_ms"])


def test_link_predictions_round_trip_through_results_load_and_agree_with_the_summary(tmp_path):
    run = synthetic_run(tmp_path / "lab" / "r1", rows=[CONV1, FC1], links=[SHIPPED_LINKS["nb-iot"].model_dump(),
                                                                            OWN_LINK])
    loaded = results.load(run, table="link_predictions")
    assert list(loaded.columns) == ["run"] + [c.name for c in results.LINK_PREDICTIONS]
    assert len(loaded) == 2 * 2 and set(loaded["link"]) == {"nb-iot", "farm-gateway"}
    assert loaded["feature_bytes"].dtype == "Int64" and loaded["predicted_e2e_ms"].dtype == "float64"
    summary = results.load(run)
    for _, row in loaded.iterrows():
        measured = summary[summary["configuration"] == row["configuration"]].iloc[0]
        rate = {"nb-iot": 0.0625, "farm-gateway": 0.25}[row["link"]]
        rtt = {"nb-iot": 1000.0, "farm-gateway": 400.0}[row["link"]]
        defence = measured["defence_ms_p50"] if measured["defence_applied"] == "device" else 0.0
        assert row["predicted_e2e_ms"] == pytest.approx(measured["latency_ms_p50"] + defence + rtt
                                                        + measured["feature_bytes"] * 8 / (rate * 1e6) * 1e3
                                                        + measured["cloud_ms_p50"])
    # the file the sweep writes is the same table, and load keeps agreeing after the parts are gone
    results.combine(run)
    written = pd.read_parquet(run / "link_predictions.parquet")
    pd.testing.assert_frame_equal(written, loaded.drop(columns="run"))
    import shutil
    shutil.rmtree(run / results.PARTS)
    pd.testing.assert_frame_equal(results.load(run, table="link_predictions"), loaded)


def test_link_predictions_follow_the_summary_mid_run_and_for_runs_without_recorded_links(tmp_path):
    run = synthetic_run(tmp_path / "old" / "r", rows=[FC1])  # a manifest from before links: shipped ones
    assert list(results.load(run, table="link_predictions")["link"]) == list(SHIPPED_LINKS)
    results.combine(run)
    late = dict(CONV1, configuration="pi4_conv1_onnx_fp32_none", defence="none", applied="none")
    synthetic_run(tmp_path / "scratch" / "r", rows=[late])
    (run / results.PARTS / late["configuration"]).symlink_to(tmp_path / "scratch" / "r" / results.PARTS /
                                                             late["configuration"])
    # a configuration finished after the last combine is in the summary load returns, and so in the predictions
    predicted = results.load(run, table="link_predictions")
    assert set(predicted["configuration"]) == set(results.load(run)["configuration"]) == \
        {FC1["configuration"], late["configuration"]}


def test_layers_shows_each_splits_upload_time_on_every_shipped_link(capsys):
    assert main(["layers", "lenet"]) == 0
    out = capsys.readouterr().out
    for link in SHIPPED_LINKS.values():
        assert link.name in out
    assert "62.5 kbit/s" in out and "941 Mbit/s" in out and "RTT 1000 ms" in out
    conv1 = next(line for line in out.splitlines() if "│ conv1 " in line)
    fc1 = next(line for line in out.splitlines() if "│ fc1 " in line)
    # 18,432 bytes: 2.36 s at NB-IoT's 62.5 kbit/s, 24.6 ms on LTE; fc1's 480 bytes: 61.4 ms, 0.64 ms
    assert "18,432" in conv1 and "2.36 s" in conv1 and "24.6 ms" in conv1
    assert "480" in fc1 and "61.4 ms" in fc1 and "0.64 ms" in fc1


def _identity(spec) -> dict:
    return {"configuration": spec["configuration"], "device": spec["device"], "split": spec["split"],
            "format": "onnx", "precision": "fp32", "defence": spec.get("defence", "none"),
            "defence_applied": spec.get("applied", "none")}
