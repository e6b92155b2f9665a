"""Results: schema conformance, crash-safe parts, the done-ledger, loading one run and many."""

import math
from pathlib import Path

import pandas as pd
import pytest

from edgekit import results
from edgekit.errors import EdgekitError
from experiment_support import synthetic_run

README = Path(__file__).resolve().parents[1] / "results" / "README.md"
ROWS = [
    {"configuration": "local_conv1_onnx_fp32_none", "split": "conv1", "latency": 0.1,
     "ssim": {"whitebox": 0.9, "blackbox-noise": 0.5}},
    {"configuration": "local_ReLU2_onnx_fp32_none", "split": "ReLU2", "latency": 0.3,
     "ssim": {"whitebox": 0.4, "blackbox-noise": 0.2}},
]


def test_load_one_run_is_tidy_and_typed(tmp_path):
    run = synthetic_run(tmp_path / "synthetic" / "r1", rows=ROWS)
    frame = results.load(run)
    assert list(frame.columns) == ["run"] + [c.name for c in results.SUMMARY]
    assert len(frame) == 4 and set(frame["run"]) == {"synthetic/r1"}
    assert frame["feature_bytes"].dtype == "Int64" and frame["ssim_mean"].dtype == "float64"
    assert frame["energy_mj_per_inference"].isna().all()


def test_load_many_runs_adds_the_run_column(tmp_path):
    synthetic_run(tmp_path / "synthetic" / "r1", rows=ROWS)
    synthetic_run(tmp_path / "other" / "r2", experiment="other", rows=ROWS[:1])
    frame = results.load(tmp_path)
    assert frame.groupby("run").size().to_dict() == {"synthetic/r1": 4, "other/r2": 2}


def test_load_refuses_a_directory_without_runs(tmp_path):
    with pytest.raises(EdgekitError, match="holds no edgekit run"):
        results.load(tmp_path)
    synthetic_run(tmp_path / "s" / "r", rows=ROWS)
    with pytest.raises(EdgekitError, match="unknown results table 'nope'"):
        results.load(tmp_path, table="nope")


def test_combine_writes_the_tables_and_load_reads_them_without_parts(tmp_path):
    run = synthetic_run(tmp_path / "s" / "r", rows=ROWS)
    combined = results.combine(run)
    assert len(combined) == 4
    for table in results.TABLES:
        assert (run / f"{table}.parquet").exists()
    (run / "summary.parquet").rename(tmp_path / "kept.parquet")
    import shutil
    shutil.rmtree(run / results.PARTS)
    (tmp_path / "kept.parquet").rename(run / "summary.parquet")
    assert len(results.load(run)) == 4


def test_only_finished_ok_parts_count_as_done(tmp_path):
    rows = ROWS + [{"configuration": "local_fc1_onnx_fp32_none", "split": "fc1", "latency": 0.5,
                    "ssim": {"whitebox": math.nan}, "status": "failed"}]
    run = synthetic_run(tmp_path / "s" / "r", rows=rows)
    # a part whose summary was never written (a crash mid-part) is not done either
    (run / results.PARTS / "local_pool2_onnx_fp32_none").mkdir()
    assert results.finished_keys(run) == {"local_conv1_onnx_fp32_none", "local_ReLU2_onnx_fp32_none"}
    assert set(results.load(run)["configuration"]) == {r["configuration"] for r in rows}


def test_conform_refuses_columns_outside_the_schema():
    with pytest.raises(ValueError, match="not in the schema"):
        results.conform("summary", pd.DataFrame({"latency": [1.0]}))


def test_readme_documents_every_column():
    text = README.read_text()
    for columns in results.SCHEMAS.values():
        for column in columns:
            assert f"`{column.name}`" in text, f"results/README.md does not document {column.name}"
    assert "`run`" in text
    from cloud_side.metrics import CONVENTION
    assert CONVENTION in text


def test_a_retried_configuration_keeps_nothing_of_the_earlier_attempt(tmp_path):
    run = synthetic_run(tmp_path / "s" / "r", rows=ROWS[:1])
    key = ROWS[0]["configuration"]
    summary = results.load(run).drop(columns="run")
    inferences = pd.DataFrame({"configuration": [key] * 2, "index": [0, 1], "repetition": [0, 0],
                               "latency_ms": [0.1, 0.2]})
    results.write_part(run, key, summary, inferences=inferences)
    assert len(results.load(run, table="inferences")) == 2
    # the retry fails before measuring anything: its part is a failed summary alone
    results.write_part(run, key, summary.assign(status="failed"))
    assert results.load(run, table="inferences").empty
    assert not (results.part_dir(run, key) / "reconstructions.npz").exists()
