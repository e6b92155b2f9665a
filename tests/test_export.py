"""Export with proof: real conversions, each written file run in its own runtime against torch."""

import json
import shutil

import numpy as np
import pytest
import torch

from device_agents.fileio import sha256_file
from edgekit.cli import main
from edgekit.data import load_dataset
from edgekit.errors import EdgekitError
from edgekit.export import export_split, parity
from edgekit.split import split_model
from edgekit.train import load_checkpoint, train_model

torch.set_num_threads(2)

SPLITS = ("conv1", "ReLU2")
ENTRY_FIELDS = {"file", "model", "dataset", "checkpoint_key", "split", "part", "format", "precision", "inputs",
                "outputs", "sha256", "size_bytes", "parity", "batch", "tool_versions", "exporter_version",
                "calibration"}


@pytest.fixture(scope="module")
def lenet():
    """The shared, cached LeNet trained on mnist-subset (about 97% held-out accuracy)."""
    return train_model("lenet", "mnist-subset", progress=False)


@pytest.fixture(scope="module")
def exported(lenet, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    results = []
    manifest = export_split("lenet", "mnist-subset", ",".join(SPLITS), ("onnx", "tflite"), ("fp32", "int8"), out,
                            report=results.append)
    return out, manifest, results


def _run_file(path, fmt, images):
    """The written file in its own runtime, one image at a time, independently of the exporter."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: images[i:i + 1]})[0] for i in range(len(images))])
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    (given,), (wanted,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for i in range(len(images)):
        interpreter.set_tensor(given["index"], images[i:i + 1])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(wanted["index"]))
    return np.concatenate(outputs)


def test_export_writes_every_artifact_and_each_passes_its_targets(exported):
    out, manifest, results = exported
    expected = {f"lenet-{split}-{part}-{fmt}-{precision}.{fmt}"
                for split in SPLITS
                for part, fmt, precision in [("cloud", "onnx", "fp32")] + [("device", f, p) for f in ("onnx", "tflite")
                                                                          for p in ("fp32", "int8")]}
    assert {entry["file"] for entry in manifest["artifacts"]} == expected
    assert {result.file for result in results} == expected
    assert {result.status for result in results} <= {"ok", "cached"}
    for entry in manifest["artifacts"]:
        figures = entry["parity"]
        assert figures["images"] == 200
        if entry["precision"] == "fp32":
            assert figures["max_abs_diff"] <= 1e-4
        else:
            assert figures["cosine"] >= 0.99 and figures["top1_agreement"] >= 0.98


def test_each_written_file_matches_torch_in_its_own_runtime(exported):
    out, manifest, _ = exported
    data = load_dataset("mnist-subset")
    images = np.ascontiguousarray(data.x_test[-50:])  # not the images the exporter checked
    for entry in manifest["artifacts"]:
        model = load_checkpoint(entry["checkpoint_key"]).model
        parts = split_model(model, entry["split"], data.info.shape)
        with torch.no_grad():
            features = parts.device(torch.from_numpy(images))
            logits = parts.cloud(features)
        given, expected = (images, features) if entry["part"] == "device" else (features.numpy(), logits)
        got = _run_file(out / entry["file"], entry["format"], given)
        if entry["precision"] == "fp32":
            assert np.abs(got - expected.numpy()).max() <= 1e-4, entry["file"]
            continue
        a, b = got.reshape(len(got), -1), expected.numpy().reshape(len(got), -1)
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosine.mean() >= 0.99, entry["file"]
        with torch.no_grad():
            agreement = (parts.cloud(torch.from_numpy(got)).argmax(1) == logits.argmax(1)).float().mean()
        assert agreement >= 0.96, entry["file"]


def test_manifest_records_interface_hash_and_provenance(exported, lenet):
    out, manifest, _ = exported
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert set(on_disk["tool_versions"]) >= {"torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert",
                                             "ai-edge-quantizer"}
    feature_shapes = {"conv1": [1, 8, 24, 24], "ReLU2": [1, 16, 8, 8]}
    for entry in manifest["artifacts"]:
        assert set(entry) >= ENTRY_FIELDS, entry["file"]
        assert entry["sha256"] == sha256_file(out / entry["file"])
        assert entry["size_bytes"] == (out / entry["file"]).stat().st_size
        assert (entry["model"], entry["dataset"], entry["checkpoint_key"], entry["batch"]) == \
            ("lenet", "mnist-subset", lenet.key, 1)
        assert all(entry["tool_versions"].values())
        image = {"shape": [1, 1, 28, 28], "dtype": "float32", "layout": "NCHW"}
        feature = {"shape": feature_shapes[entry["split"]], "dtype": "float32", "layout": "NCHW"}
        logits = {"shape": [1, 10], "dtype": "float32", "layout": "NC"}
        (given,), (made,) = entry["inputs"], entry["outputs"]
        assert given["name"] and made["name"]
        wanted = (image, feature) if entry["part"] == "device" else (feature, logits)
        assert ({k: given[k] for k in image}, {k: made[k] for k in image}) == wanted, entry["file"]


def test_reexport_is_a_cache_hit_and_says_so(exported, capsys):
    out, _, _ = exported
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    code = main(["export", "lenet", "--split", ",".join(SPLITS), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    rows = [line for line in printed.splitlines() if line.startswith("lenet-")]
    assert len(rows) == 10 and all(line.endswith("cached") for line in rows)
    after = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    assert {k: v for k, v in after.items() if k != "manifest.json"} == \
        {k: v for k, v in before.items() if k != "manifest.json"}


def test_a_changed_file_is_converted_again(exported):
    out, _, _ = exported
    target = out / "lenet-conv1-device-tflite-fp32.tflite"
    with open(target, "ab") as handle:
        handle.write(b"\0")
    damaged = sha256_file(target)
    results = []
    manifest = export_split("lenet", "mnist-subset", "conv1", "tflite", "fp32", out, report=results.append)
    assert [(r.file, r.status) for r in results] == [("lenet-conv1-cloud-onnx-fp32.onnx", "cached"),
                                                     (target.name, "ok")]
    (entry,) = [entry for entry in manifest["artifacts"] if entry["file"] == target.name]
    assert sha256_file(target) == entry["sha256"] != damaged


def test_another_split_merges_into_the_manifest(exported):
    out, _, _ = exported
    manifest = export_split("lenet", None, "pool1", "onnx", "fp32", out)
    files = {entry["file"] for entry in manifest["artifacts"]}
    assert {"lenet-pool1-device-onnx-fp32.onnx", "lenet-conv1-device-tflite-int8.tflite"} <= files
    assert json.loads((out / "manifest.json").read_text())["artifacts"] == manifest["artifacts"]


def test_a_failed_parity_check_raises_and_keeps_nothing(lenet, tmp_path, monkeypatch):
    monkeypatch.setattr(parity, "INT8_MIN_COSINE", 1.01)
    results = []
    with pytest.raises(EdgekitError, match=r"lenet-conv1-device-onnx-int8\.onnx: cosine [\d.]+ < 1\.01"):
        export_split("lenet", "mnist-subset", "conv1", "onnx", "int8", tmp_path, report=results.append)
    assert [r.status for r in results] == ["ok", "failed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet-conv1-cloud-onnx-fp32.onnx", "manifest.json"]
    listed = [entry["file"] for entry in json.loads((tmp_path / "manifest.json").read_text())["artifacts"]]
    assert listed == ["lenet-conv1-cloud-onnx-fp32.onnx"]


def _cli_error(capsys, *argv):
    code = main(["export", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edgekit: error: "), err
    return err[0]


@pytest.mark.parametrize("argv, words", [
    (["nonet", "--split", "conv1"], ["'nonet'", "lenet", "cifar10cnn"]),
    (["lenet", "--split", "conv9"], ["'conv9'", "conv1", "ReLU2"]),
    (["lenet", "--split", "conv1", "--dataset", "nodata"], ["'nodata'", "mnist-subset"]),
    (["lenet", "--split", "conv1", "--format", "onnx,coreml"], ["'coreml'", "onnx", "tflite"]),
    (["lenet", "--split", "conv1", "--precision", "fp16"], ["'fp16'", "fp32", "int8"]),
    (["resnet18", "--dataset", "mnist-subset", "--split", "layer1_0_conv1"], ["cannot split", "layer1_0_add"]),
])
def test_bad_input_is_one_line_naming_value_and_choices(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("edgekit.train.train_model", pytest.fail)
    line = _cli_error(capsys, *argv, "--out", str(tmp_path / "out"))
    assert all(word in line for word in words), line
    assert not (tmp_path / "out").exists()


def test_unwritable_output_directory_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("edgekit.train.train_model", pytest.fail)
    (tmp_path / "file").write_text("not a directory")
    line = _cli_error(capsys, "lenet", "--split", "conv1", "--out", str(tmp_path / "file" / "out"))
    assert str(tmp_path / "file" / "out") in line and "not writable" in line


def test_corrupt_checkpoint_is_refused(lenet, tmp_path, capsys):
    for suffix in (".pt", ".json"):
        shutil.copy(lenet.path.with_suffix(suffix), tmp_path / f"ckpt{suffix}")
    with open(tmp_path / "ckpt.pt", "r+b") as handle:
        handle.truncate(100)
    line = _cli_error(capsys, "lenet", "--split", "conv1", "--checkpoint", str(tmp_path / "ckpt.pt"),
                      "--out", str(tmp_path / "out"))
    assert "ckpt.pt" in line and "sha256" in line


def test_checkpoint_of_another_model_is_refused(lenet, tmp_path, capsys):
    line = _cli_error(capsys, "cifar10cnn", "--split", "conv11", "--checkpoint", str(lenet.path),
                      "--out", str(tmp_path / "out"))
    assert "is lenet on mnist-subset, not cifar10cnn" in line


def test_tflite_without_the_extra_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "litert_torch", None)
    line = _cli_error(capsys, "lenet", "--split", "conv1", "--format", "tflite", "--out", str(tmp_path / "out"))
    assert "pip install 'edgekit[tflite]'" in line
