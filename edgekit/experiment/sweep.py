"""Running an experiment: train, export, run the agents, receive the features, attack, score, record.

The sweep goes split by split (the attacks fitted for a split serve its configurations), and
within a split runs each (format, precision, defence) on every device at once. Each configuration
is recorded as soon as it is scored (``edgekit.results.write_part``); a configuration that fails
is recorded as failed and the sweep goes on. A resumed sweep skips the configurations already
recorded as ok and redoes the rest. Beside the collector, the online session
(``edgekit.experiment.online``) answers each agent's online phase with the split's cloud part.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents.fileio import atomic_write, sha256_file
from edgekit import results
from edgekit.experiment.attackers import AttackerPool
from edgekit.experiment.config import Experiment
from edgekit.experiment.evaluate import choose_private, evaluate, received_features
from edgekit.experiment.measure import (agent_spec, feature_bytes, inference_rows, online_measurements,
                                        summary_measurements)
from edgekit.experiment.online import OnlineRun, OnlineSession, configuration_online
from edgekit.experiment.plan import AgentRun, Configuration, configurations, device_batches, plan_runs
from edgekit.experiment.progress import SweepProgress
from edgekit.paths import cache_dir

SEAL_TIMEOUT_S = 60.0


@dataclass
class Outcome:
    """What one agent run produced, or why it did not."""

    error: str | None = None
    artifact: dict | None = None
    report: dict = field(default_factory=dict)
    inferences: pd.DataFrame | None = None
    features: np.ndarray | None = None
    online: OnlineRun | None = None


@dataclass
class Sweep:
    experiment: Experiment
    run_dir: Path
    inventory: object = None
    console: object = None  # rich Console for the progress display
    stage_seconds: Counter = field(default_factory=Counter)
    checkpoint: object = None  # edgekit.train.Checkpoint, once trained or reused (None: nothing was pending)

    @contextlib.contextmanager
    def _stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] += time.perf_counter() - start

    def run(self) -> pd.DataFrame:
        """Run every configuration not yet recorded as ok; returns the combined summary."""
        from edgekit.data import load_dataset

        runs = plan_runs(self.experiment)
        done = results.finished_keys(self.run_dir)
        pending = [r for r in runs if any(c.key not in done for c in r.serves)]
        self.data = load_dataset(self.experiment.dataset)
        self.private = choose_private(self.data, self.experiment.images, self.experiment.attacked_images)
        self.inputs = self.run_dir / "inputs.npy"
        if not self.inputs.exists():
            with atomic_write(self.inputs) as handle:
                np.save(handle, self.private.images, allow_pickle=False)
        all_keys = [c.key for c in configurations(runs)]
        with SweepProgress(len(all_keys), sum(k in done for k in all_keys), self.console) as self.progress, \
                torch_threads(self.experiment.cloud_threads):
            if pending:
                with self._stage("train"):
                    self.checkpoint = self._train()
                self.attackers = AttackerPool(self.experiment, self.data, self.private.indices, self.export_dir(),
                                              self.inventory)
                self._run_pending(pending, done)
        return results.combine(self.run_dir)

    def _train(self):
        from edgekit.train import recipe_for, train_model

        self.progress.step(f"training {self.experiment.model} on {self.experiment.dataset}")
        train = self.experiment.train
        recipe = replace(recipe_for(self.experiment.model, self.experiment.dataset), **train.recipe_overrides())
        checkpoint = train_model(self.experiment.model, self.experiment.dataset, recipe=recipe,
                                 seed=self.experiment.seed, limit=train.limit, progress=False)
        self.progress.log(f"{self.experiment.model} on {self.experiment.dataset}: held-out accuracy "
                          f"{checkpoint.accuracy:.2%} ({'cached' if checkpoint.cached else 'trained'} checkpoint "
                          f"{checkpoint.key})")
        return checkpoint

    def _run_pending(self, pending: list[AgentRun], done: set[str]) -> None:
        from cloud_side.collector import CollectorThread

        store = self.run_dir / "features"
        settings = self.experiment.collector
        with CollectorThread(str(store), host=settings.listen, port=settings.port) as collector, \
                OnlineSession(self.experiment, self.progress) as online:
            self.collector, self.store, self.online = collector, store, online
            for split, split_runs in itertools.groupby(pending, key=lambda r: r.split):
                with self._stage("export"):
                    artifacts = self._export(split)
                self._use_split(split, artifacts)
                online.use_split(self.export_dir(), split)
                for batch in device_batches(list(split_runs)):
                    with self._stage("devices"):
                        outcomes = self._measure(batch, artifacts)
                    for run, outcome in zip(batch, outcomes):
                        for configuration in run.serves:
                            if configuration.key not in done:
                                with self._stage("attacks"):
                                    self._record(configuration, outcome)

    def _export(self, split: str) -> dict:
        """Manifest entries of ``split``'s device parts by (format, precision); failures by the same key."""
        from edgekit.errors import EdgekitError
        from edgekit.export import export_split
        from edgekit.export.table import result_row

        self.progress.step(f"{split}: exporting {', '.join(self.experiment.formats)} "
                           f"{', '.join(self.experiment.precisions)}")
        out = self.export_dir()
        error = None
        try:
            manifest = export_split(self.experiment.model, self.experiment.dataset, [split], self.experiment.formats,
                                    self.experiment.precisions, out, seed=self.experiment.seed,
                                    checkpoint=self.checkpoint.key,
                                    report=lambda result: self.progress.log(result_row(result)))
        except EdgekitError as exc:
            from edgekit.export.manifest import read_manifest

            manifest, error = read_manifest(out), str(exc)
        entries = {}
        for fmt, precision in itertools.product(self.experiment.formats, self.experiment.precisions):
            entry = next((a for a in manifest["artifacts"] if a["split"] == split and a["part"] == "device"
                          and a["format"] == fmt and a["precision"] == precision), None)
            entries[(fmt, precision)] = entry or f"export failed: {error or 'no artifact'}"
        return entries

    def export_dir(self) -> Path:
        """Exports are cached per checkpoint, shared by every run of the same model."""
        return cache_dir("exports", f"{self.experiment.model}-{self.experiment.dataset}-{self.checkpoint.key}")

    def _use_split(self, split: str, artifacts: dict) -> None:
        from edgekit.split import split_model

        self.parts = split_model(self.checkpoint.model, split, self.data.info.shape)
        self.attackers.use_split(split, self.parts, artifacts)

    def _measure(self, batch: list[AgentRun], artifacts: dict) -> list[Outcome]:
        """Run ``batch`` (one run per device) in parallel; an ``Outcome`` per run, in order."""
        from edgekit.devices import DeviceJob, get_device, load_inventory, run_on_devices

        first = batch[0]
        self.progress.step(f"{first.split} {first.format} {first.precision} {first.defence.tag}: "
                           f"running on {', '.join(r.device for r in batch)}")
        outcomes, jobs, runs_ids = [], [], []
        for run in batch:
            artifact = artifacts[(run.format, run.precision)]
            if isinstance(artifact, str):
                outcomes.append(Outcome(error=artifact))
                continue
            run_id, key = uuid.uuid4().hex, secrets.token_bytes(32)
            output = artifact["outputs"][0]
            expect = {"dtype": output["dtype"], "shape": output["shape"][1:], "layout": output.get("layout", "NCHW"),
                      "count": len(self.private.images)}
            self.collector.register_run(run_id, key, expect)
            online = self.online.register(run_id, key, expect, run.serves)
            device = get_device(run.device, load_inventory(self.inventory))
            cloud = {"host": self.experiment.collector.host_for(device.config.is_local), "port": self.collector.port,
                     "key_file": "run.key"}
            spec = agent_spec(run_id, artifact, artifact["file"], sha256_file(self.inputs), self.experiment,
                              run.defence.spec(self.experiment.seed), cloud, online)
            files = {artifact["file"]: self.export_dir() / artifact["file"], "inputs.npy": self.inputs}
            outcomes.append(Outcome(artifact=artifact))
            jobs.append(DeviceJob(device, spec, files, key, dest=self.run_dir / "agent-runs" / run_id,
                                  label=run.device))
            runs_ids.append((len(outcomes) - 1, run_id))
        for (position, run_id), result in zip(runs_ids, run_on_devices(jobs)):
            self._collect(outcomes[position], run_id, result)
        return outcomes

    def _collect(self, outcome: Outcome, run_id: str, result) -> None:
        from cloud_side.collector import read_features

        outcome.report = result.report or {}
        try:
            if result.status != "done":
                outcome.error = result.error or f"agent run failed: {result.log_tail[-300:]}"
                return
            self.collector.wait_sealed(run_id, SEAL_TIMEOUT_S)
            outcome.features = read_features(str(self.store), run_id)
        except Exception as exc:  # the features never arrived whole: the configuration fails, the sweep goes on
            outcome.error = f"features of run {run_id} not received: {exc}"
            return
        finally:  # the features are in memory (or never will be): the collector and the store let the run go
            self.collector.forget_run(run_id)
            for directory in (run_id, f"{run_id}.partial"):
                shutil.rmtree(self.store / directory, ignore_errors=True)
            outcome.online = self.online.collect(run_id, result.online_path if result.status == "done" else None)
        outcome.inferences = inference_rows(result.records_path, outcome.report)

    def _record(self, configuration: Configuration, outcome: Outcome) -> None:
        self.progress.step(f"{configuration.key}: accuracy and attacks")
        identity = self._identity(configuration, outcome)
        try:
            if outcome.error:
                raise RuntimeError(outcome.error)
            features = received_features(configuration, outcome.features, self.experiment.seed)
            scored = evaluate(configuration, features, self.private, self.attackers, self.experiment.attacks)
            online, online_inferences = configuration_online(configuration, outcome.online, self.private.labels,
                                                             self.experiment.seed)
        except Exception as exc:  # recorded as a failed configuration; the sweep goes on
            error = " ".join(str(exc).split()) or type(exc).__name__
            rows = [{**identity, "attack": a.name, "attack_kind": a.kind, "status": "failed", "error": error}
                    for a in self.experiment.attacks] or [{**identity, "attack": "none", "status": "failed",
                                                          "error": error}]
            results.write_part(self.run_dir, configuration.key, pd.DataFrame(rows),
                               device_report=outcome.report or None)
            self.progress.finished(configuration.key, False, error)
            return
        base = {**identity, **summary_measurements(outcome.report), **online_measurements(outcome.report), **online,
                "accuracy": scored.accuracy, "status": "ok", "error": ""}
        rows = [{**base, **row} for row in scored.rows] or [{**base, "attack": "none"}]
        inferences = outcome.inferences.assign(**_configuration_columns(configuration))
        images = pd.DataFrame(scored.image_rows).assign(**_configuration_columns(configuration)) \
            if scored.image_rows else None
        if online_inferences is not None:
            online_inferences = online_inferences.assign(**_configuration_columns(configuration))
        results.write_part(self.run_dir, configuration.key, pd.DataFrame(rows), inferences, images,
                           scored.reconstructions, outcome.report, online_inferences)
        self.progress.finished(configuration.key, True)

    def _identity(self, configuration: Configuration, outcome: Outcome) -> dict:
        artifact = outcome.artifact or {}
        point = self.parts.split
        return {
            **_configuration_columns(configuration), "model": self.experiment.model,
            "dataset": self.experiment.dataset, "n_images": len(self.private.images),
            "n_attacked": self.private.attacked_count, "feature_shape": "x".join(map(str, point.shape)),
            "feature_bytes": feature_bytes(artifact) if artifact else point.bytes,
            "device_mflops": point.flops / 1e6,
        }


@contextlib.contextmanager
def torch_threads(count: int):
    """PyTorch's intra-op threads set to ``count`` for the block (restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _configuration_columns(configuration: Configuration) -> dict:
    return {"configuration": configuration.key, "device": configuration.device, "split": configuration.split,
            "format": configuration.format, "precision": configuration.precision,
            "defence": configuration.defence.label, "defence_applied": configuration.defence.applied}


def run_experiment(path, resume=None, inventory=None, output=None, console=None) -> Path:
    """Validate the experiment file, then run it into a new run directory (or resume one); returns it.

    ``resume``: None for a new run, True for the experiment's latest run, or a run directory.
    """
    from edgekit.experiment.checks import check_experiment
    from edgekit.experiment.config import load_experiment
    from edgekit.experiment.rundir import new_run_dir, now, resume_run_dir, write_manifest

    experiment = load_experiment(path)
    if inventory is None and experiment.inventory:
        inventory = str(Path(path).parent / Path(experiment.inventory).expanduser())
    check_experiment(experiment, Path(path).name, inventory)
    run_dir = resume_run_dir(experiment, resume, output) if resume else new_run_dir(experiment, output)
    write_manifest(run_dir, experiment, str(path), status="running", inventory=inventory,
                   configurations=[c.key for c in configurations(plan_runs(experiment))])
    sweep = Sweep(experiment, run_dir, inventory, console)
    try:
        summary = sweep.run()
    except BaseException:
        write_manifest(run_dir, experiment, str(path), status="interrupted",
                       stage_seconds=dict(sweep.stage_seconds), device_reports=device_reports(run_dir))
        raise
    failed = int((summary["status"] != "ok").sum())
    trained = {} if sweep.checkpoint is None else {
        "checkpoint": {"key": sweep.checkpoint.key, "accuracy": sweep.checkpoint.accuracy}}
    write_manifest(run_dir, experiment, str(path), status="finished" if not failed else "finished with failures",
                   finished_at=now(), stage_seconds=dict(sweep.stage_seconds),
                   device_reports=device_reports(run_dir), **trained)
    return run_dir


def device_reports(run_dir: Path) -> dict:
    """Each recorded configuration's agent report, by configuration key."""
    import json

    return {path.parent.name: json.loads(path.read_text())
            for path in sorted((run_dir / results.PARTS).glob("*/device_report.json"))}
