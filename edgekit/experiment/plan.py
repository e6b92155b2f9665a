"""Expanding an experiment into configurations and the agent runs that measure them.

A configuration is (device, split, format, precision, defence); it yields one results row per
attack. A defence applied on the device needs its own agent run; a simulated defence is applied by
the cloud side to the features of the undefended run, so one agent run serves the undefended
configuration and every simulated defence of the same (device, split, format, precision).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from edgekit.experiment.config import NO_DEFENCE, Experiment


@dataclass(frozen=True)
class Configuration:
    device: str
    split: str
    format: str
    precision: str
    defence: object  # a config Defence

    @property
    def key(self) -> str:
        """A stable, file-name-safe identity (the unit of resume)."""
        return "_".join([self.device, self.split, self.format, self.precision, self.defence.tag])


@dataclass(frozen=True)
class AgentRun:
    """One run of the agent on one device, and the configurations its features serve."""

    device: str
    split: str
    format: str
    precision: str
    defence: object  # what the agent applies: NO_DEFENCE or a device-applied defence
    serves: tuple[Configuration, ...]

    @property
    def artifact(self) -> tuple[str, str, str]:
        return self.split, self.format, self.precision


def plan_runs(experiment: Experiment) -> list[AgentRun]:
    """Every agent run, ordered split-major so that attacks fitted for a split are used back to back."""
    on_device = [d for d in experiment.defences if d.applied == "device"]
    simulated = [d for d in experiment.defences if d.applied == "simulated"]
    measured_undefended = any(d.applied == "none" for d in experiment.defences)
    runs = []
    for split, fmt, precision, device in itertools.product(
            experiment.splits, experiment.formats, experiment.precisions, experiment.devices):
        def configuration(defence):
            return Configuration(device, split, fmt, precision, defence)
        if measured_undefended or simulated:
            served = ([configuration(NO_DEFENCE)] if measured_undefended else []) + \
                     [configuration(d) for d in simulated]
            runs.append(AgentRun(device, split, fmt, precision, NO_DEFENCE, tuple(served)))
        for defence in on_device:
            runs.append(AgentRun(device, split, fmt, precision, defence, (configuration(defence),)))
    return runs


def configurations(runs: list[AgentRun]) -> list[Configuration]:
    return [c for run in runs for c in run.serves]


def device_batches(runs: list[AgentRun]) -> list[list[AgentRun]]:
    """Runs grouped so that each group has one run per device (run in parallel), in plan order."""
    groups: dict[tuple, list[AgentRun]] = {}
    for run in runs:
        groups.setdefault((run.split, run.format, run.precision, run.defence), []).append(run)
    return list(groups.values())
