"""``export_split``: train (cached), cut, convert, run each written file against torch, record.

Each artifact is converted under a temporary name in the output directory, run in its own
runtime on held-out images, and renamed into place and entered in the manifest only if its
parity figures meet their targets. An artifact whose entry and file are unchanged is not
converted again ("cached").
"""

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from device_agents.fileio import sha256_file
from edgekit.data import load_dataset
from edgekit.errors import EdgekitError
from edgekit.export import manifest as manifests
from edgekit.export.artifacts import FORMATS, PRECISIONS, ArtifactSpec, parse_choices, parse_splits, plan
from edgekit.export.parity import Reference, interface_problems, measure, shortfalls
from edgekit.export.runtimes import open_runner
from device_agents.fileio import staged_path
from edgekit.export.tools import EXPORTER_VERSION, require_tflite, tool_versions
from edgekit.models import create_model, model_info
from edgekit.split import split_model

CALIBRATION_IMAGES = 256
HELD_OUT_IMAGES = 200
_NAMES = {"device": ("image", "feature"), "cloud": ("feature", "logits")}


@dataclass
class ArtifactResult:
    """One row of the parity table: ``status`` is ok, cached or failed (``problems`` says why)."""

    file: str
    part: str
    format: str
    precision: str
    size_bytes: int | None
    parity: dict | None
    status: str
    problems: list = field(default_factory=list)
    seconds: float = 0.0  # converting and checking; 0 when cached


class _Rejected(Exception):
    """A written file failed its checks; raised inside the staging block so the file is removed."""

    def __init__(self, problems, parity):
        super().__init__("; ".join(problems))
        self.problems, self.parity = problems, parity


def export_split(model_name, dataset, splits, formats, precisions, out_dir, seed=0, checkpoint=None,
                 report=None) -> dict:
    """Export the device part of ``model_name`` cut at each of ``splits`` (and the cloud part, ONNX fp32).

    ``dataset`` None means the checkpoint's dataset, else the model's default. ``checkpoint`` (a key or
    path) is used instead of training. ``report(ArtifactResult)`` is called after each artifact.
    Raises EdgekitError for bad input (before any work) and, after exporting the rest, for every
    artifact that missed its parity target. Returns the merged manifest.
    """
    info = model_info(model_name)
    splits = parse_splits(splits)
    formats = parse_choices("format", formats, FORMATS)
    precisions = parse_choices("precision", precisions, PRECISIONS)
    ckpt = _given_checkpoint(checkpoint, model_name, dataset)
    dataset = dataset or (ckpt.dataset if ckpt else info.default_dataset)
    data = load_dataset(dataset)
    untrained = create_model(model_name, data.info)
    for split in splits:
        split_model(untrained, split, data.info.shape)
    if "tflite" in formats:
        require_tflite()
    out = _writable_dir(out_dir)
    manifests.read_manifest(out)  # a damaged manifest is refused before any work
    if ckpt is None:
        from edgekit.train import train_model

        ckpt = train_model(model_name, dataset, seed=seed)
    return export_model(ckpt.model, model_name, data, ckpt.key, splits, formats, precisions, out, seed, report)


def export_model(model, model_name, data, checkpoint_key, splits, formats, precisions, out_dir, seed=0,
                 report=None) -> dict:
    """``export_split`` for a model and a ``Dataset`` already in hand, with checked names.

    Calibrates on ``CALIBRATION_IMAGES`` training images picked with ``seed`` and checks parity on the
    first ``HELD_OUT_IMAGES`` held-out images.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(data.x_train), min(CALIBRATION_IMAGES, len(data.x_train)), replace=False)
    job = _Job(model_name, data.info.name, checkpoint_key, seed, out, manifests.read_manifest(out),
               calibration=[data.x_train[i:i + 1] for i in np.sort(picked)],
               held_out=np.ascontiguousarray(data.x_test[:HELD_OUT_IMAGES]))
    failed = []
    with tempfile.TemporaryDirectory(prefix="edgekit-export-") as scratch:
        job.scratch = Path(scratch)
        for split in splits:
            parts = split_model(model, split, data.info.shape)
            reference = Reference.compute(parts, job.held_out)
            for spec in plan(model_name, split, formats, precisions):
                result = job.export(spec, parts, reference)
                if result.status == "failed":
                    failed.append(f"{result.file}: {'; '.join(result.problems)}")
                if report:
                    report(result)
    if failed:
        raise EdgekitError(f"parity check failed, artifact not kept: {' | '.join(failed)}")
    return job.manifest


def _given_checkpoint(checkpoint, model_name, dataset):
    if checkpoint is None:
        return None
    from edgekit.train import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt.model_name != model_name or (dataset and ckpt.dataset != dataset):
        raise EdgekitError(f"checkpoint {checkpoint!s} is {ckpt.model_name} on {ckpt.dataset}, "
                           f"not {model_name} on {dataset or ckpt.dataset}")
    return ckpt


def _writable_dir(out_dir) -> Path:
    """The output directory, created if needed; EdgekitError unless a file can be made in it."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise EdgekitError(f"output directory {os.fspath(out)!r} is not writable: "
                           f"{exc.strerror or exc}") from None
    return out


@dataclass
class _Job:
    model: str
    dataset: str
    checkpoint_key: str
    seed: int
    out: Path
    manifest: dict
    calibration: list
    held_out: np.ndarray
    scratch: Path | None = None

    def made_from(self, spec: ArtifactSpec) -> dict:
        """Everything that determines the file: the manifest's cache key."""
        calibration = ({"images": len(self.calibration), "source": "train", "seed": self.seed}
                       if spec.precision == "int8" else None)
        return {"model": self.model, "dataset": self.dataset, "checkpoint_key": self.checkpoint_key,
                "split": spec.split, "part": spec.part, "format": spec.format, "precision": spec.precision,
                "calibration": calibration, "exporter_version": EXPORTER_VERSION,
                "tool_versions": tool_versions(spec.format)}

    def export(self, spec: ArtifactSpec, parts, reference: Reference) -> ArtifactResult:
        made_from = self.made_from(spec)
        entry = manifests.cached(self.manifest, self.out, spec.file, made_from)
        if entry is not None:
            return ArtifactResult(spec.file, spec.part, spec.format, spec.precision, entry["size_bytes"],
                                  entry["parity"], "cached")
        final = self.out / spec.file
        started = time.perf_counter()
        try:
            with staged_path(final) as staged_name:
                staged = Path(staged_name)
                self.convert(spec, parts, reference, staged)
                entry = self.check(spec, staged, reference, made_from)
        except _Rejected as rejected:
            self.forget(final)
            return ArtifactResult(spec.file, spec.part, spec.format, spec.precision, None, rejected.parity,
                                  "failed", rejected.problems, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        manifests.put(self.manifest, entry)
        manifests.write_manifest(self.out, self.manifest)
        return ArtifactResult(spec.file, spec.part, spec.format, spec.precision, entry["size_bytes"],
                              entry["parity"], "ok", seconds=seconds)

    def convert(self, spec: ArtifactSpec, parts, reference: Reference, path: Path) -> None:
        from edgekit.export import onnx_export

        input_name, output_name = _NAMES[spec.part]
        example = torch.from_numpy(reference.io(spec.part)[0][:1])
        if spec.precision == "int8" and spec.format == "onnx":
            onnx_export.quantize_onnx(self.fp32_source(spec, parts, reference), path, input_name,
                                      self.calibration)
        elif spec.precision == "int8":
            from edgekit.export.tflite_export import quantize_tflite

            quantize_tflite(self.fp32_source(spec, parts, reference), path, self.calibration)
        elif spec.format == "onnx":
            onnx_export.export_onnx(getattr(parts, spec.part), example, path, input_name, output_name)
        else:
            from edgekit.export.tflite_export import export_tflite

            export_tflite(getattr(parts, spec.part), example, path)

    def fp32_source(self, spec: ArtifactSpec, parts, reference: Reference) -> Path:
        """The fp32 file an int8 one is quantised from: the kept artifact if current, else a scratch copy."""
        fp32 = replace(spec, precision="fp32")
        if manifests.cached(self.manifest, self.out, fp32.file, self.made_from(fp32)) is not None:
            return self.out / fp32.file
        path = self.scratch / fp32.file
        if not path.exists():
            self.convert(fp32, parts, reference, path)
        return path

    def check(self, spec: ArtifactSpec, path: Path, reference: Reference, made_from: dict) -> dict:
        """Run the written file against torch; the manifest entry, or _Rejected."""
        runner = open_runner(path, spec.format)
        problems = interface_problems(runner, spec.part, reference)
        if problems:
            raise _Rejected(problems, None)
        parity = measure(runner, spec.part, spec.precision, reference)
        problems = shortfalls(parity)
        if problems:
            raise _Rejected(problems, parity)
        return dict(made_from, file=spec.file, batch=1, sha256=sha256_file(path), size_bytes=path.stat().st_size,
                    inputs=[t.to_dict() for t in runner.inputs], outputs=[t.to_dict() for t in runner.outputs],
                    parity=parity)

    def forget(self, final: Path) -> None:
        """A re-export that failed its check: its predecessor is no longer vouched for either."""
        if manifests.find(self.manifest, final.name) is not None or final.exists():
            manifests.drop(self.manifest, final.name)
            with contextlib.suppress(FileNotFoundError):
                final.unlink()
            manifests.write_manifest(self.out, self.manifest)
