"""Run spec validation: relative paths resolved against the spec's directory, one-line errors."""

import os

import pytest

from agent_support import RUN_ID
from device_agents.errors import AgentError
from device_agents.spec import RunSpec

SHA = "a" * 64


def raw_spec(**overrides):
    raw = {"run_id": RUN_ID,
           "artifact": {"path": "m/part.onnx", "sha256": SHA, "format": "onnx",
                        "input": {"name": "x", "shape": [1, 1, 8, 8], "dtype": "float32"},
                        "output": {"name": "y", "shape": [1, 4, 4, 4], "dtype": "float32"}},
           "inputs": {"path": "inputs.npy"}, "cloud": {"host": "h", "port": 7000, "key_file": "run.key"},
           "output_dir": "out"}
    raw.update(overrides)
    return raw


def test_paths_are_relative_to_the_spec_and_defaults_filled(tmp_path):
    spec = RunSpec(raw_spec(), str(tmp_path / "spec.json"))
    assert spec.artifact["path"] == os.path.join(str(tmp_path), "m/part.onnx")
    assert spec.inputs_path == os.path.join(str(tmp_path), "inputs.npy")
    assert spec.cloud["key_file"] == os.path.join(str(tmp_path), "run.key")
    assert spec.output_dir == os.path.join(str(tmp_path), "out")
    assert (spec.threads, spec.warmup, spec.repetitions) == (1, 10, 1)
    assert spec.power["probe"] == "auto" and spec.power["sysfs_root"] == "/"
    assert spec.artifact["output"]["layout"] == "NCHW" and spec.defence.kind == "none"


@pytest.mark.parametrize("overrides, words", [
    ({"run_id": "xyz"}, "run_id must be 32 lowercase hex"),
    ({"threads": 0}, "threads must be an integer >= 1"),
    ({"repetitions": True}, "repetitions must be an integer"),
    ({"color": 1}, "unknown keys ['color']"),
    ({"power": {"hz": 0}}, "power.hz must be > 0"),
    ({"power": {"rate": 5}}, "power has unknown keys"),
    ({"defence": {"kind": "dropout", "rate": 2}}, "dropout rate must be in [0, 1)"),
    ({"cloud": {"host": "h"}}, "cloud must be null or an object"),
    ({"output_dir": ""}, "output_dir"),
])
def test_bad_specs_name_the_bad_value(tmp_path, overrides, words):
    with pytest.raises(AgentError) as error:
        RunSpec(raw_spec(**overrides), str(tmp_path / "spec.json"))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_artifact_format_and_sha(tmp_path):
    artifact = dict(raw_spec()["artifact"], format="tensorrt")
    with pytest.raises(AgentError, match="artifact.format must be one of onnx, tflite"):
        RunSpec(raw_spec(artifact=artifact), str(tmp_path / "spec.json"))
    artifact = dict(raw_spec()["artifact"], sha256="ABC")
    with pytest.raises(AgentError, match="artifact.sha256"):
        RunSpec(raw_spec(artifact=artifact), str(tmp_path / "spec.json"))
