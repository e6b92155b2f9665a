"""The sweep's online session: the cloud's online inference server, and its answers per configuration.

The server (``cloud_side.online``) listens beside the collector, on the collector's listen address,
so a board reaches it by the same path its features take. Each agent run is registered with its
run key and its split's cloud part (the exported ONNX fp32 file); the run spec's ``online`` turns
the agent's online phase on. A run's online answers serve every configuration the run serves: the
undefended one and a device-applied defence by the answers the device received; a simulated defence
by the cloud part's classes for the features the server received, defended here as the cloud side
defends the collected features (``evaluate.received_features``: same defence, seed and inference
index), since no defence ran on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents.errors import AgentError
from edgekit.errors import EdgekitError
from edgekit.experiment.evaluate import received_features
from edgekit.experiment.measure import artifact_spec, online_rows


@dataclass
class OnlineRun:
    """One agent run's online phase: its records (``measure.online_rows``) and the server's log."""

    rows: pd.DataFrame
    log: object  # cloud_side.online.OnlineRunLog


class OnlineSession:
    """``with OnlineSession(experiment, progress) as online:`` for the sweep; does nothing when the
    experiment's ``[online] enabled = false``."""

    def __init__(self, experiment, progress):
        self.settings = experiment.online
        self.listen = experiment.collector.listen
        self.progress = progress
        self.server = None
        self.cloud_part = None
        self._registered = set()

    def __enter__(self):
        if self.settings.enabled:
            from cloud_side.online import OnlineServerThread

            try:
                self.server = OnlineServerThread(host=self.listen, port=self.settings.port).start()
            except OSError as exc:
                raise EdgekitError(f"online.port: cannot listen on {self.listen}:{self.settings.port} for online "
                                   f"inference: {exc.strerror or exc}; accepted: a free port, or 0 for any") from None
        return self

    def __exit__(self, *exc):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def use_split(self, export_dir: Path, split: str) -> None:
        """Answer the next runs with ``split``'s exported cloud part (none: no online phase for them)."""
        from edgekit.export.manifest import read_manifest

        entry = next((a for a in read_manifest(export_dir)["artifacts"]
                      if a["split"] == split and a["part"] == "cloud" and a["format"] == "onnx"), None)
        self.cloud_part = None if entry is None else artifact_spec(entry, str(export_dir / entry["file"]))
        if entry is None and self.server is not None:
            self.progress.log(f"{split}: no exported cloud part, so no online phase for this split")

    def register(self, run_id: str, key: bytes, expect: dict, serves) -> dict | None:
        """The run spec's ``online`` for a run about to start (None: no online phase for it).

        The server keeps the run's features only when a configuration it serves has a simulated defence.
        """
        if self.server is None or self.cloud_part is None:
            return None
        keep = any(c.defence.applied == "simulated" for c in serves)
        try:
            self.server.register_run(run_id, key, self.cloud_part, expect, keep_features=keep)
        except (ValueError, AgentError) as exc:  # too many features kept, an unloadable cloud part
            self.progress.log(f"run {run_id}: no online phase: {exc}")
            return None
        self._registered.add(run_id)
        return self.settings.spec(self.server.port)

    def collect(self, run_id: str, online_path: Path | None) -> OnlineRun | None:
        """Drop the run from the server; its online phase, or None when it had none."""
        if run_id not in self._registered:
            return None
        self._registered.discard(run_id)
        log = self.server.finish_run(run_id)
        return None if online_path is None else OnlineRun(online_rows(online_path), log)


def configuration_online(configuration, online: OnlineRun | None, labels: np.ndarray,
                         seed: int) -> tuple[dict, pd.DataFrame | None]:
    """(``online_accuracy``, the configuration's online_inferences rows) from its run's online phase."""
    if online is None:
        return {"online_accuracy": math.nan}, None
    rows = online.rows
    images = rows["index"].to_numpy()
    if configuration.defence.applied == "simulated":
        from cloud_side.online import top1

        log = online.log
        if log.received is None or not log.received.all():
            raise RuntimeError(f"the online server did not receive every image's feature for {configuration.key}")
        predictions = top1(log.runner, received_features(configuration, log.features, seed))[images]
        rows = rows.assign(prediction=predictions)
    accuracy = float(np.mean(rows["prediction"].to_numpy() == labels[images]))
    return {"online_accuracy": accuracy}, rows
