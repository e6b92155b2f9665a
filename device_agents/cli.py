"""Command line of the device agent: run, probe, check (and serve-queries, when installed)."""

import argparse
import importlib.util
import json
import os
import shutil
import sys
import time

from .errors import AgentError
from .power import PROBE_NAMES, Sampler, detect_probes, make_probe
from .report import versions
from .state import platform_info, snapshot

RUNTIME_PACKAGES = (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai-edge-litert"),
                    ("tflite_runtime", "tflite-runtime"))


def runtimes():
    """Importable runtimes and their versions, found without importing them (they are big)."""
    found = {}
    for module, distribution in RUNTIME_PACKAGES:
        if importlib.util.find_spec(module) is None:
            continue
        try:
            from importlib import metadata
            found[module] = metadata.version(distribution)
        except Exception:  # metadata missing (e.g. a vendored build): importable, version unknown
            found[module] = None
    return found


def probe_command(args):
    detected = detect_probes(args.sysfs_root, args.vcgencmd)
    probe = make_probe(args.probe, args.sysfs_root, args.vcgencmd)
    result = {"sysfs_root": args.sysfs_root, "detected": [p.describe() for p in detected],
              "selected": probe.describe(), "seconds": args.seconds, "readings": [], "mean_w": {}}
    if probe.rails:
        hz = min(args.hz, probe.max_hz)
        sampler = Sampler(probe, hz).start()
        time.sleep(args.seconds)
        sampler.stop()
        times, watts = sampler.samples()
        result.update(hz=hz, samples=len(times), errors=sampler.errors)
        result["readings"] = [[round((t - times[0]) / 1e9, 6), dict(zip(probe.rails, row))]
                              for t, row in zip(times.tolist(), watts.tolist())]
        if len(times):
            result["mean_w"] = dict(zip(probe.rails, watts.mean(axis=0).tolist()))
    return result


def check_command(args):
    state = snapshot(args.sysfs_root, args.vcgencmd)
    disk = shutil.disk_usage(args.workdir)
    return {
        "platform": platform_info(args.sysfs_root),
        "python": sys.version.split()[0],
        "versions": versions(),
        "runtimes": runtimes(),
        "probes": [p.describe() for p in detect_probes(args.sysfs_root, args.vcgencmd)],
        "disk": {"path": os.path.abspath(args.workdir), "free_bytes": disk.free, "total_bytes": disk.total},
        "governors": state["governors"],
        "cpus": state["cpus"],
        "temperatures": state["thermal"],
        "throttling": state["throttling"],
    }


def _sensor_options(parser):
    parser.add_argument("--sysfs-root", default="/", metavar="DIR",
                        help="read /sys, /proc and /etc under DIR instead of / (default: /)")
    parser.add_argument("--vcgencmd", default="vcgencmd", metavar="CMD",
                        help="Raspberry Pi vcgencmd command, may hold several words (default: vcgencmd)")


RUN_SPEC_HELP = """run spec fields (relative paths are relative to the spec file):
  run_id        32 hex characters naming the run
  artifact      {path, sha256, format: onnx|tflite, input: {name, shape, dtype},
                 output: {name, shape, dtype, layout}}; the sha256 is checked before loading
  inputs        {path, sha256 (optional)}: float32 [N, C, H, W] .npy (never unpickled)
  threads       runtime threads                      warmup       untimed inferences first
  repetitions   timed passes over the inputs (features are sent from the first)
  defence       {kind: none} | {kind: gaussian, sigma, seed} | {kind: laplace, b, seed}
                | {kind: dropout, rate, seed}: applied to each feature before it leaves
  power         {probe: one of the probe names below, hz, window (inferences per
                 energy window, 0: automatic), baseline_s, sysfs_root, vcgencmd}
  cloud         null (features saved to output_dir/features.npy) or {host, port, key_file};
                the key file holds the run key in hex and must be readable by its owner only
  output_dir    where state.json, report.json and records.csv are written

probes: """ + ", ".join(PROBE_NAMES) + """

example:
  python -m device_agents run runs/1a2b/spec.json && cat runs/1a2b/out/report.json
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m device_agents",
        description="edgekit device agent: runs an exported device part, times it, measures power, "
                    "applies a defence and streams or saves the features.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="run a spec: writes state.json, report.json, records.csv, "
                              "features.npy (or streams features) into its output_dir",
                              description="Exit status 0 ok, 1 run failed (see report.json), "
                                          "2 spec unreadable or without output_dir.",
                              epilog=RUN_SPEC_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("spec", metavar="SPEC.json", help="run spec (JSON; its fields are below)")
    run.set_defaults(handler=run_handler)

    probe = commands.add_parser("probe", help="detect power sensors and print S seconds of readings as JSON")
    probe.add_argument("--seconds", type=float, default=2.0, metavar="S", help="seconds to sample (default 2)")
    probe.add_argument("--hz", type=float, default=10.0, metavar="H",
                       help="sampling rate, capped at the sensor's maximum (default 10)")
    probe.add_argument("--probe", default="auto", choices=PROBE_NAMES, help="probe to sample (default auto)")
    _sensor_options(probe)
    probe.set_defaults(handler=json_handler(probe_command))

    check = commands.add_parser("check", help="print this device's platform, runtimes, probes, disk, "
                                "governor, temperatures and throttling as JSON")
    check.add_argument("--workdir", default=".", metavar="DIR", help="directory whose free disk is reported")
    _sensor_options(check)
    check.set_defaults(handler=json_handler(check_command))

    if importlib.util.find_spec(__package__ + ".queries") is not None:
        from . import queries  # the query server (wire protocol), registers serve-queries
        queries.register(commands)
    return parser


def run_handler(args):
    from .run import run_command  # imported only for runs: probe and check stay light
    return run_command(args.spec)


def json_handler(command):
    """A handler printing ``command(args)`` as JSON: exit 0, or 1 with the error on stderr."""
    def handle(args):
        try:
            result = command(args)
        except AgentError as error:
            sys.stderr.write("device agent: {}\n".format(error))
            return 1
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    return handle


def main(argv=None):
    """Exit status of the chosen command; every subcommand sets ``handler`` (serve-queries too)."""
    args = build_parser().parse_args(argv)
    return args.handler(args)
