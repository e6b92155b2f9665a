"""The report: figures written, and the recommendation under the SSIM threshold."""

import json

import numpy as np

from edgekit import results
from edgekit.cli import main
from edgekit.report.recommend import recommend
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
    assert rec.fastest.configuration == "local_ReLU2_onnx_fp32_none"   # conv1 leaks (0.9), dropout too (0.35)
    assert rec.fastest.worst_attack == "whitebox" and rec.fastest.worst_ssim == 0.25
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
    assert saved[0]["fastest"]["split"] == "ReLU2"
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
