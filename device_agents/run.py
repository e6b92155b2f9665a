"""``python -m device_agents run SPEC.json``: one measured run of a device part over an input shard.

Order: verify and load the artifact and the shard, open the feature sink, start the power sampler,
record the device state, measure the idle baseline, warm up, then ``repetitions`` timed passes.
Only the runtime call sits between the two monotonic_ns stamps; the defence and the sink come
after it. A defence other than none is timed apart, on the same clock, around its own call. When
the spec has ``online``, the sink is closed (its stream must not share the link with what follows),
the link to the cloud is measured (``linkprobe``) and the online phase runs (``online``), under the
same power sampler. Any error ends the run with report status "failed", state "failed", exit status
1, and no half-written file (everything is written atomically; records and features only on success).
"""

import csv
import os
import signal
import sys
import time
import traceback

import numpy as np

from . import report as info
from .defences import apply_defence
from .energy import MIN_SAMPLES_PER_WINDOW, PowerMonitor, choose_window
from .errors import AgentError
from .fileio import atomic_write, write_json
from .linkprobe import measure_link
from .online import CLOCK as ONLINE_CLOCK
from .online import OnlinePhase, open_link
from .online import write_records as write_online_records
from .protocol import ProtocolError, load_key_file
from .power import Sampler, make_probe
from .runtime import load_runner, verify_sha256
from .sinks import check_reachable, open_sink
from .spec import RunSpec, output_dir_of, read_spec_json
from .state import platform_info, snapshot, state_warnings
from .timing import latency_stats

STATE_EVERY_S = 1.0
MMAP_ABOVE_BYTES = 32 << 20
RECORD = np.dtype([("index", np.int64), ("image", np.int64), ("repetition", np.int64),
                   ("start_ns", np.int64), ("end_ns", np.int64), ("latency_ms", np.float64),
                   ("window", np.int64)])


def load_shard(spec, runner):
    """The input shard, checked against the artifact's input [1, C, H, W].

    A shard bigger than MMAP_ABOVE_BYTES is memory-mapped to keep the agent's memory small; a
    smaller one is read whole, as copying an image out of a mapping costs a little inside the loop.
    """
    if spec.inputs_sha256:
        verify_sha256(spec.inputs_path, spec.inputs_sha256)
    try:
        big = os.path.getsize(spec.inputs_path) > MMAP_ABOVE_BYTES
        shard = np.load(spec.inputs_path, mmap_mode="r" if big else None, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise AgentError("cannot load input shard {}: {}".format(spec.inputs_path, error))
    expected = spec.artifact["input"]
    image_shape = tuple(expected["shape"][1:])
    if shard.ndim != len(expected["shape"]) or tuple(shard.shape[1:]) != image_shape or len(shard) == 0:
        raise AgentError("input shard {} has shape {}; the model takes images of shape {} ([N, {}])".format(
            spec.inputs_path, list(shard.shape), list(image_shape), ", ".join(map(str, image_shape))))
    if shard.dtype != np.dtype(expected["dtype"]) or shard.dtype != runner.input_dtype:
        raise AgentError("input shard {} has dtype {}; the model takes {}".format(
            spec.inputs_path, shard.dtype, runner.input_dtype))
    model_shape = [d for d in runner.input_shape]
    if any(m is not None and m != s for m, s in zip(model_shape, expected["shape"])) \
            or len(model_shape) != len(expected["shape"]):
        raise AgentError("artifact input shape {} differs from the spec's {}".format(model_shape, expected["shape"]))
    return shard


class AgentRun(object):
    """One run: its output directory, its state file, and everything the report gathers."""

    def __init__(self, output_dir, raw_spec):
        self.output_dir = output_dir
        self.report = {"status": "running", "error": None, "spec": raw_spec, "warnings": [],
                       "versions": info.versions(), "affinity": info.affinity(),
                       "clock": "time.monotonic_ns; latency: the runtime call only; "
                                "defence_statistics: the defence call only"}
        self.done, self.total = 0, 0
        self.sampler = None
        self.sink = None

    def set_state(self, state, error=None):
        write_json(os.path.join(self.output_dir, "state.json"),
                   {"state": state, "pid": os.getpid(), "done": self.done, "total": self.total,
                    "error": error})

    def execute(self, spec_path, raw):
        try:
            self.set_state("starting")
            spec = RunSpec(raw, spec_path)
            self.measure(spec)
        except Exception as error:  # every failure, expected or not, must end in a failed report
            message = str(error) if isinstance(error, AgentError) else "internal error: {}: {}".format(
                type(error).__name__, error)
            if not isinstance(error, AgentError):
                traceback.print_exc()
            return self.fail(message)
        self.report["status"] = "ok"
        write_json(os.path.join(self.output_dir, "report.json"), self.report)
        self.set_state("done")
        return 0

    def fail(self, message):
        if self.sampler is not None:
            self.sampler.stop()
        if self.sink is not None and hasattr(self.sink, "abort"):
            self.sink.abort()
        self.report.update(status="failed", error=message)
        sys.stderr.write("device agent: run failed: {}\n".format(message))
        write_json(os.path.join(self.output_dir, "report.json"), self.report)
        self.set_state("failed", message)
        return 1

    def measure(self, spec):
        rss_start, _ = info.memory_mb()
        runner = load_runner(spec.artifact, spec.threads)
        rss_loaded, _ = info.memory_mb()
        info.reset_peak_rss()
        self.report["versions"] = info.versions(runner)
        self.report["threads"] = spec.threads
        self.report["defence"] = spec.defence.to_dict()
        shard = load_shard(spec, runner)
        self.total = len(shard) * spec.repetitions
        output = spec.artifact["output"]
        meta = {"dtype": output["dtype"], "shape": output["shape"][1:], "layout": output["layout"],
                "count": len(shard)}

        power = spec.power
        probe = make_probe(power["probe"], power["sysfs_root"], power["vcgencmd"])
        self.report["probe"] = probe.describe()
        self.report["rails"] = list(probe.rails)
        self.report["boundary"] = self.report["probe"]["boundary"]
        self.sink = open_sink(spec, meta, self.output_dir)
        if spec.online is not None:
            check_reachable(spec.online["host"], spec.online["port"], what="cloud online service")
        platform_state = platform_info(power["sysfs_root"])
        before = snapshot(power["sysfs_root"], power["vcgencmd"])

        monitor = None
        hz = min(power["hz"], probe.max_hz) if probe.rails else None
        if probe.rails:
            self.sampler = Sampler(probe, hz).start()
            monitor = PowerMonitor(self.sampler)
            if power["baseline_s"] > 0:
                self.set_state("baseline")
                monitor.measure_baseline(power["baseline_s"])

        self.set_state("warmup")
        first_ms, warmup_ms = self.warm_up(runner, shard, spec.warmup, output)
        median_ms = float(np.median(warmup_ms)) if warmup_ms else first_ms
        window, window_choice = choose_window(median_ms, hz or 1.0, power["window"])

        self.set_state("running")
        records, defence_ms = self.timed_passes(runner, shard, spec, window)

        self.set_state("finishing")
        self.report["sink"] = self.sink.close(timeout=60.0)  # before the link is measured: it shares the path
        self.sink = None
        online = None
        if spec.online is not None:
            online = self.online_phase(spec, runner, shard, meta, hz)
        energy = None
        if monitor is not None:
            last = online["records"] if online is not None else records
            monitor.wait_for_sample_after(int(last["end_ns"][-1]))
            self.sampler.stop()
            energy = self.energy(monitor, records, window, window_choice, hz, "")
            if online is not None:
                online["report"]["energy"] = self.energy(monitor, online["records"], online["window"],
                                                         online["window_choice"], hz, "online ")
        self.report["online"] = None if online is None else online["report"]
        after = snapshot(power["sysfs_root"], power["vcgencmd"])
        _, rss_peak = info.memory_mb()
        self.report.update({
            "statistics": latency_stats(records["latency_ms"], first_ms, warmup_ms),
            "defence_statistics": None if defence_ms is None else latency_stats(defence_ms, None, []),
            "energy": energy,
            "device_state": {"platform": platform_state, "before": before, "after": after},
            "rss_mb": {"start": rss_start, "after_model_load": rss_loaded, "peak_during_run": rss_peak,
                       "beyond_model": None if rss_peak is None else rss_peak - rss_loaded},
        })
        self.report["warnings"].extend(state_warnings(before, after))
        write_records(os.path.join(self.output_dir, "records.csv"), records)
        if online is not None:
            write_online_records(os.path.join(self.output_dir, "online.csv"), online["records"])

    def energy(self, monitor, records, window, window_choice, hz, phase):
        """The energy report of ``records`` (timed or online inferences), with a warning if coarse."""
        energy = energy_report(monitor, records, window, window_choice, hz)
        if energy["min_samples_per_window"] < MIN_SAMPLES_PER_WINDOW:
            self.report["warnings"].append(
                "{}energy windows hold as few as {} power samples: figures are coarse{}".format(
                    phase, energy["min_samples_per_window"],
                    "; the run has fewer inferences than one window ({}): add repetitions".format(window)
                    if window > len(records) else ""))
        return energy

    def online_phase(self, spec, runner, shard, meta, hz):
        """Link measurements, then online inferences: {"report", "records", "window", "window_choice"}."""
        online = spec.online
        self.total += len(shard) * online["repetitions"]
        self.set_state("online")
        self._next_state = time.monotonic() + STATE_EVERY_S
        try:
            key = load_key_file(spec.cloud["key_file"])
        except (OSError, ValueError) as error:
            raise AgentError("run key: {}".format(error))
        with open_link(online, key, spec.run_id, meta) as link:
            feature_bytes = int(np.prod(meta["shape"])) * np.dtype(meta["dtype"]).itemsize
            try:
                link_report = measure_link(link, feature_bytes, online)
            except (OSError, ProtocolError) as error:
                raise AgentError("measuring the link to the cloud {}:{}: {}".format(
                    online["host"], online["port"], error))
            phase = OnlinePhase(link, runner, shard, spec.defence, self.count_done)
            warmup_ms = phase.warm_up(online["warmup"])
            median_ms = float(np.median(warmup_ms)) if warmup_ms else 1.0
            window, window_choice = choose_window(median_ms, hz or 1.0, spec.power["window"])
            records = phase.passes(online["repetitions"], window)
        report = {
            "cloud": {"host": online["host"], "port": online["port"]},
            "settings": dict((k, online[k]) for k in ("warmup", "repetitions", "rtt_samples", "transfer_samples",
                                                      "goodput_seconds", "goodput_max_bytes")),
            "link": link_report,
            "clock": ONLINE_CLOCK,
            "statistics": latency_stats(records["e2e_ms"], None, warmup_ms),
            "device_statistics": latency_stats(records["device_ms"], None, []),
            "cloud_statistics": latency_stats(records["cloud_ms"], None, []),
            "server_statistics": latency_stats(records["server_ms"], None, []),
            "energy": None,
        }
        return {"report": report, "records": records, "window": window, "window_choice": window_choice}

    def count_done(self):
        """One more online inference done; the state file says so at most every STATE_EVERY_S."""
        self.done += 1
        if time.monotonic() >= self._next_state:
            self.set_state("online")
            self._next_state = time.monotonic() + STATE_EVERY_S

    def warm_up(self, runner, shard, count, output):
        """(first inference ms, warm-up latencies ms); checks the output against the spec."""
        latencies = []
        for k in range(count + 1):
            x = np.ascontiguousarray(shard[k % len(shard)][None])
            start = time.monotonic_ns()
            y = runner.run(x)
            latencies.append((time.monotonic_ns() - start) / 1e6)
            if k == 0 and (list(y.shape) != output["shape"] or y.dtype != np.dtype(output["dtype"])):
                raise AgentError("artifact output is {} {}, the spec says {} {}".format(
                    y.dtype, list(y.shape), output["dtype"], output["shape"]))
        return latencies[0], latencies[1:]

    def timed_passes(self, runner, shard, spec, window):
        """(one RECORD row per timed inference, ms of each defence call or None without a defence).

        Features of the first pass go to the sink, defended; an undefended run does nothing else
        between runtime calls.
        """
        records = np.zeros(self.total, dtype=RECORD)
        defence_ms = None if spec.defence.kind == "none" else np.zeros(len(shard))
        next_state = time.monotonic() + STATE_EVERY_S
        k = 0
        for repetition in range(spec.repetitions):
            for image in range(len(shard)):
                x = np.ascontiguousarray(shard[image][None])
                start = time.monotonic_ns()
                y = runner.run(x)
                end = time.monotonic_ns()
                records[k] = (k, image, repetition, start, end, (end - start) / 1e6, k // window)
                if repetition == 0:
                    feature = y[0]
                    if defence_ms is not None:
                        before = time.monotonic_ns()
                        feature = apply_defence(spec.defence, feature, image)
                        defence_ms[image] = (time.monotonic_ns() - before) / 1e6
                    self.sink.put(image, feature, start, end)
                k += 1
                self.done = k
                if time.monotonic() >= next_state:
                    self.set_state("running")
                    next_state = time.monotonic() + STATE_EVERY_S
        return records, defence_ms


def write_records(path, records):
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RECORD.names)
        for row in records.tolist():
            writer.writerow(row[:5] + ("{:.6f}".format(row[5]), row[6]))


def energy_report(monitor, records, window, window_choice, hz):
    """Energy of each window of ``window`` inferences and per inference, gross and net, per rail."""
    samples = monitor.sampler.samples()
    primary = monitor.sampler.probe.primary
    windows = []
    windows_ids = records["window"]
    totals_gross = dict((rail, 0.0) for rail in monitor.rails)
    totals_net = dict(totals_gross)
    for w in range(int(windows_ids[-1]) + 1):
        rows = np.nonzero(windows_ids == w)[0]
        start, end = records["start_ns"][rows[0]], records["end_ns"][rows[-1]]
        m = monitor.measure("window-{}".format(w), int(start), int(end), samples)
        for rail in monitor.rails:
            totals_gross[rail] += m.gross_j[rail]
            totals_net[rail] += m.net_j[rail]
        windows.append({"window": w, "inferences": len(rows), "start_ns": int(start), "end_ns": int(end),
                        "samples": m.samples, "gross_j": m.gross_j[primary], "net_j": m.net_j[primary]})
    count = float(len(records))
    return {
        "probe": monitor.sampler.probe.name,
        "primary_rail": primary,
        "hz": hz,
        "samples": int(len(samples[0])),
        "sample_errors": monitor.sampler.errors,
        "baseline_w": monitor.baseline_w,
        "window_inferences": window,
        "window_choice": window_choice,
        "windows": windows,
        "min_samples_per_window": min(w["samples"] for w in windows),
        "per_inference_j": {"gross": dict((r, j / count) for r, j in totals_gross.items()),
                            "net": dict((r, j / count) for r, j in totals_net.items())},
        "total_j": {"gross": totals_gross, "net": totals_net},
    }


def _terminate(signum, frame):
    raise AgentError("terminated by signal {}".format(signum))


def run_command(spec_path):
    """Exit status of a run: 0 ok, 1 failed (report written), 2 no usable output_dir."""
    try:
        raw = read_spec_json(spec_path)
    except AgentError as error:
        sys.stderr.write("device agent: {}\n".format(error))
        return 2
    output_dir = output_dir_of(raw, spec_path)
    if output_dir is None:
        sys.stderr.write("device agent: run spec {} has no output_dir\n".format(spec_path))
        return 2
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        sys.stderr.write("device agent: cannot create output_dir {}: {}\n".format(output_dir, error))
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    return AgentRun(output_dir, raw).execute(spec_path, raw)
