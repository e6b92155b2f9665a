"""The report: figures written, and the recommendation under the SSIM threshold, by end-to-end
time, with latencies within noise of each other tied and the tie going to the lower SSIM."""

import json

import numpy as np
import pytest

from edgekit import results
from edgekit.cli import main
from edgekit.links import SHIPPED_LINKS
from edgekit.report.noise import median_interval
from edgekit.report.recommend import describe, recommend
from experiment_support import synthetic_run

ROWS = [
    {"configuration": "local_conv1_onnx_fp32_none", "split": "conv1", "latency": 0.1, "energy": 2.0,
     "ssim": {"whitebox": 0.9, "blackbox-noise": 0.5}},
    {"configuration": "local_ReLU2_onnx_fp32_none", "split": "ReLU2", "latency": 0.3, "energy": 1.0,
     "ssim": {"whitebox": 0.25, "blackbox-noise": 0.2}},
    {"configuration": "local_fc1_onnx_fp32_none", "split": "fc1", "latency": 0.5, "energy": 0.5,
     "ssim": {"whitebox": 0.1, "blackbox-noise": 0.05}},
    {"configuration": "local_conv1_onnx_fp32_dropout-0.5@simulated", "split": "conv1", "latency": 0.1,
     "energy": 2.0, "defence": "dropout-0.5", "applied": "simulated", "accuracy": 0.6,
     "ssim": {"whitebox": 0.35, "blackbox-noise": 0.28}},
]


def test_recommendation_takes_the_fastest_and_the_most_frugal_private_configuration(tmp_path):
    summary = results.load_run(synthetic_run(tmp_path / "s" / "r", rows=ROWS))
    (rec,) = recommend(summary, threshold=0.3)
    assert rec.fastest.choice.configuration == "local_ReLU2_onnx_fp32_none"   # conv1 leaks (0.9), dropout too (0.35)
    assert rec.fastest.choice.worst_attack == "whitebox" and rec.fastest.choice.worst_ssim == 0.25
    assert rec.fastest.ranked_by == "latency_ms_p50" and "end-to-end time not measured" in rec.note
    assert rec.most_frugal.configuration == "local_fc1_onnx_fp32_none"
    (strict,) = recommend(summary, threshold=0.01)
    assert strict.fastest is None and "no configuration" in strict.note
    assert strict.closest.configuration == "local_fc1_onnx_fp32_none"


def test_report_writes_figures_and_recommendation(tmp_path, capsys):
    run = synthetic_run(tmp_path / "s" / "r", rows=ROWS)
    assert main(["report", str(run), "--threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "fastest private configuration" in out and "split ReLU2" in out
    report = run / "report"
    for name in ("privacy_vs_latency", "privacy_vs_energy", "accuracy_vs_ssim", "reconstructions_conv1",
                 "reconstructions_ReLU2", "reconstructions_fc1"):
        for suffix in (".png", ".svg"):
            path = report / f"{name}{suffix}"
            assert path.stat().st_size > 5000, path
    saved = json.loads((report / "recommendation.json").read_text())
    assert saved[0]["fastest"]["choice"]["split"] == "ReLU2"
    assert "NONE QUALIFIES" not in (report / "recommendation.txt").read_text()


def test_report_says_when_none_qualifies_and_skips_unmeasured_energy(tmp_path, capsys):
    rows = [dict(r, energy=np.nan) for r in ROWS]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows)
    assert main(["report", str(run), "--threshold", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "NONE QUALIFIES" in out
    assert not (run / "report" / "privacy_vs_energy.png").exists()
    assert (run / "report" / "privacy_vs_latency.png").exists()


def test_report_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    run = synthetic_run(tmp_path / "s" / "r", rows=ROWS)
    assert main(["report", str(run), "--threshold", "3"]) == 2
    assert "--threshold 3" in capsys.readouterr().err


# --- end to end and noise ------------------------------------------------------------------------

def times(median_ms, count=200, spread=0.08):
    """Per-inference times around ``median_ms``, skewed like real latencies (lognormal); the same
    draws for the same arguments, whichever tests run."""
    return median_ms * np.random.default_rng(round(median_ms * 1e4) + count).lognormal(0.0, spread, count)


def board(split, defence="none", **spec):
    """A Pi-4-like configuration of LeNet on MNIST; feature sizes are LeNet's."""
    sizes = {"conv1": 18_432, "ReLU2": 4_096, "fc1": 480}
    applied = "none" if defence == "none" else "device"
    return {"configuration": f"pi4_{split}_onnx_fp32_{defence}", "device": "pi4", "split": split,
            "defence": defence, "applied": applied, "feature_bytes": sizes[split], **spec}


def test_the_median_interval_is_the_order_statistics_one():
    values = np.arange(1.0, 11.0)  # n = 10: [x(2), x(9)], coverage 1 - 2 * 11/1024
    interval = median_interval(values)
    assert (interval.low, interval.high, interval.median) == (2.0, 9.0, 5.5)
    assert interval.coverage == pytest.approx(1 - 2 * 11 / 1024)
    few = median_interval([3.0, 1.0, 2.0])  # under six records no pair reaches 95%: the whole range, said so
    assert (few.low, few.high) == (1.0, 3.0) and few.coverage == pytest.approx(0.75)


def test_configurations_within_noise_are_a_tie_that_goes_to_the_lower_ssim(tmp_path):
    rows = [board("ReLU2", records=times(0.30), cloud=0.04, e2e_records=times(2.00), ssim={"whitebox": 0.25}),
            board("fc1", records=times(0.36), cloud=0.02, e2e_records=times(2.02), ssim={"whitebox": 0.12}),
            board("conv1", "dropout-0.5", records=times(0.11), cloud=0.05, e2e_records=times(2.60),
                  ssim={"whitebox": 0.28})]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows)
    summary = results.load_run(run)
    (rec,) = recommend(summary, 0.3, results.load_run(run, "inferences"), results.load_run(run, "online_inferences"))
    pick = rec.fastest
    assert pick.ranked_by == "e2e_ms_p50"
    e2e = summary.drop_duplicates("configuration").set_index("split")["e2e_ms_p50"]
    assert e2e["ReLU2"] < e2e["fc1"], "the data must make ReLU2 the faster one by its median"
    assert pick.fastest == "pi4_ReLU2_onnx_fp32_none"
    assert pick.choice.configuration == "pi4_fc1_onnx_fp32_none"   # tied within noise: the lower SSIM wins
    assert [t.configuration for t in pick.tied] == ["pi4_ReLU2_onnx_fp32_none", "pi4_fc1_onnx_fp32_none"]
    # the interval it relied on: the distribution-free 95% interval of fc1's e2e median, from its 200 records
    fc1_records = results.load_run(run, "online_inferences").query("split == 'fc1'")["e2e_ms"]
    expected = median_interval(fc1_records)
    assert pick.interval_ms == (expected.low, expected.high) and pick.records == 200
    assert pick.interval_ms[0] < pick.median_ms < pick.interval_ms[1] and pick.confidence >= 0.95
    text = describe([rec])
    assert "tied within noise with pi4_ReLU2_onnx_fp32_none" in text and "lower worst SSIM" in text
    assert f"[{expected.low:.4g}, {expected.high:.4g}] ms" in text and "200 inferences" in text


def test_a_difference_larger_than_the_noise_is_not_a_tie(tmp_path):
    rows = [board("ReLU2", records=times(0.30), cloud=0.04, e2e_records=times(2.00), ssim={"whitebox": 0.25}),
            board("fc1", records=times(0.36), cloud=0.02, e2e_records=times(2.40), ssim={"whitebox": 0.12})]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows)
    (rec,) = recommend(results.load_run(run), 0.3, results.load_run(run, "inferences"),
                       results.load_run(run, "online_inferences"))
    assert rec.fastest.choice.configuration == "pi4_ReLU2_onnx_fp32_none"
    assert [t.configuration for t in rec.fastest.tied] == ["pi4_ReLU2_onnx_fp32_none"]
    assert "tied within noise" not in describe([rec])


def test_on_a_narrow_band_link_a_deep_split_beats_conv1(tmp_path):
    """conv1 (made private by dropout) computes least on the device but sends 18,432 bytes; fc1 sends 480.
    On Ethernet the device time decides and conv1 wins; on NB-IoT the upload decides and fc1 wins, both
    predicted and as measured behind a shaped 64 kbit/s link."""
    shaped_ms = {"conv1": 18_432 * 8 / 64e3 * 1e3, "fc1": 480 * 8 / 64e3 * 1e3}  # 2304 ms, 60 ms
    rows = [board("conv1", "dropout-0.5", records=times(0.11), cloud=0.05,
                  e2e_records=times(0.11 + 0.05 + 40 + shaped_ms["conv1"]), ssim={"whitebox": 0.28}),
            board("fc1", records=times(1.40), cloud=0.02,
                  e2e_records=times(1.40 + 0.02 + 40 + shaped_ms["fc1"]), ssim={"whitebox": 0.12})]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows, links=[SHIPPED_LINKS["ethernet"].model_dump(),
                                                                 SHIPPED_LINKS["nb-iot"].model_dump()])
    predictions = results.load_run(run, "link_predictions")
    (rec,) = recommend(results.load_run(run), 0.3, results.load_run(run, "inferences"),
                       results.load_run(run, "online_inferences"), predictions)
    assert rec.fastest.ranked_by == "e2e_ms_p50" and rec.fastest.choice.split == "fc1"
    by_link = {pick.link: pick for pick in rec.by_link}
    assert by_link["ethernet"].choice.split == "conv1" and by_link["nb-iot"].choice.split == "fc1"
    nb_iot = by_link["nb-iot"]
    assert nb_iot.ranked_by == "predicted_e2e_ms" and len(nb_iot.tied) == 1
    assert nb_iot.median_ms == pytest.approx(1.40 + 1000 + 61.44 + 0.02, rel=0.05)
    assert nb_iot.interval_ms[0] <= nb_iot.median_ms <= nb_iot.interval_ms[1]
    assert nb_iot.energy_from == "predicted_energy_mj_per_inference"
    assert "nb-iot (62.5 kbit/s up, RTT 1000 ms): split fc1" in describe([rec], predictions)


def test_report_plots_end_to_end_and_per_link_and_writes_strict_json(tmp_path, capsys):
    rows = [board("ReLU2", records=times(0.30), cloud=0.04, e2e_records=times(2.00), ssim={"whitebox": 0.25}),
            board("fc1", records=times(0.36), cloud=0.02, e2e_records=times(2.02), ssim={"whitebox": 0.12}),
            board("conv1", records=times(0.10), cloud=0.05, e2e_records=times(2.50), ssim={"whitebox": 0.95})]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "e2e ms" in out and "cloud ms" in out  # the summary table shows the end-to-end medians
    assert "measured end to end" in out and "per link profile" in out
    for name in ("privacy_vs_e2e", "privacy_vs_link"):
        for suffix in (".png", ".svg"):
            assert (run / "report" / f"{name}{suffix}").stat().st_size > 5000
    text = (run / "report" / "recommendation.json").read_text()
    saved = json.loads(text, parse_constant=lambda name: pytest.fail(f"recommendation.json holds {name}"))
    (device,) = saved
    assert device["fastest"]["choice"]["configuration"] == "pi4_fc1_onnx_fp32_none"
    assert device["fastest"]["choice"]["energy_mj_per_inference"] is None  # no probe: null, not NaN
    assert len(device["fastest"]["interval_ms"]) == 2 and device["fastest"]["records"] == 200
    assert [pick["link"] for pick in device["by_link"]] == list(SHIPPED_LINKS)
