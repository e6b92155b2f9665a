"""The run spec: read, validated, relative paths resolved against the spec file's directory."""

import json
import os
import re

from .defences import Defence
from .errors import AgentError

FORMATS = ("onnx", "tflite")
TOP_KEYS = ("run_id", "artifact", "inputs", "threads", "warmup", "repetitions", "defence", "power",
            "cloud", "online", "output_dir")
POWER_DEFAULTS = {"probe": "auto", "hz": 10.0, "window": 0, "baseline_s": 1.0, "sysfs_root": "/",
                  "vcgencmd": "vcgencmd"}
# host None: the cloud's host; warmup / repetitions None: the timed loop's
ONLINE_DEFAULTS = {"host": None, "port": None, "warmup": None, "repetitions": None, "rtt_samples": 30,
                   "transfer_samples": 30, "goodput_seconds": 1.0, "goodput_max_bytes": 256 << 20}


def read_spec_json(path):
    """The spec file as a dict (AgentError if unreadable or not a JSON object)."""
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as error:
        raise AgentError("cannot read run spec {}: {}".format(path, error))
    if not isinstance(raw, dict):
        raise AgentError("run spec {} must hold a JSON object".format(path))
    return raw


def output_dir_of(raw, spec_path):
    """Where a run's files go, or None if the spec does not say (used to report early failures)."""
    value = raw.get("output_dir") if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(spec_path)), value)


def _need(condition, message, *args):
    if not condition:
        raise AgentError("run spec: " + message.format(*args))


def _int(raw, key, default, minimum):
    value = raw.get(key, default)
    _need(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
          "{} must be an integer >= {}, got {!r}", key, minimum, value)
    return value


def _tensor(raw, where, layout):
    _need(isinstance(raw, dict), "{} must be an object with name, shape, dtype", where)
    shape = raw.get("shape")
    _need(isinstance(shape, list) and shape and all(isinstance(d, int) and d > 0 for d in shape),
          "{}.shape must be a list of positive integers, got {!r}", where, shape)
    _need(isinstance(raw.get("dtype"), str), "{}.dtype must be a string like 'float32'", where)
    tensor = {"name": raw.get("name"), "shape": list(shape), "dtype": raw["dtype"]}
    if layout:
        tensor["layout"] = raw.get("layout", "NCHW")
    return tensor


def _file(raw, where, directory, need_sha):
    _need(isinstance(raw, dict) and isinstance(raw.get("path"), str),
          "{} must be an object with a path", where)
    sha = raw.get("sha256")
    _need((sha is None and not need_sha) or (isinstance(sha, str) and re.match(r"^[0-9a-f]{64}$", sha)),
          "{}.sha256 must be 64 lowercase hex characters, got {!r}", where, sha)
    return os.path.join(directory, raw["path"]), sha


class RunSpec(object):
    """A validated run spec; ``raw`` is the spec as written (it never holds the key itself)."""

    def __init__(self, raw, spec_path):
        _need(isinstance(raw, dict), "must be a JSON object")
        unknown = sorted(set(raw) - set(TOP_KEYS))
        _need(not unknown, "unknown keys {}; accepted: {}", unknown, ", ".join(TOP_KEYS))
        directory = os.path.dirname(os.path.abspath(spec_path))
        self.raw = raw
        self.spec_path = os.path.abspath(spec_path)
        self.run_id = raw.get("run_id")
        _need(isinstance(self.run_id, str) and re.match(r"^[0-9a-f]{32}$", self.run_id),
              "run_id must be 32 lowercase hex characters, got {!r}", self.run_id)

        artifact = raw.get("artifact")
        path, sha = _file(artifact, "artifact", directory, need_sha=True)
        _need(artifact.get("format") in FORMATS, "artifact.format must be one of {}, got {!r}",
              ", ".join(FORMATS), artifact.get("format"))
        self.artifact = {"path": path, "sha256": sha, "format": artifact["format"],
                         "input": _tensor(artifact.get("input"), "artifact.input", False),
                         "output": _tensor(artifact.get("output"), "artifact.output", True)}
        self.inputs_path, self.inputs_sha256 = _file(raw.get("inputs"), "inputs", directory, need_sha=False)

        self.threads = _int(raw, "threads", 1, 1)
        self.warmup = _int(raw, "warmup", 10, 0)
        self.repetitions = _int(raw, "repetitions", 1, 1)
        try:
            self.defence = Defence.from_dict(raw.get("defence"))
        except ValueError as error:
            raise AgentError("run spec: defence: {}".format(error))
        self.power = self._power(raw.get("power") or {}, directory)
        self.cloud = self._cloud(raw.get("cloud"), directory)
        self.online = self._online(raw.get("online"))
        output_dir = output_dir_of(raw, spec_path)
        _need(output_dir is not None, "output_dir must be a non-empty path")
        self.output_dir = output_dir

    @staticmethod
    def _power(raw, directory):
        _need(isinstance(raw, dict), "power must be an object")
        unknown = sorted(set(raw) - set(POWER_DEFAULTS))
        _need(not unknown, "power has unknown keys {}; accepted: {}", unknown, ", ".join(POWER_DEFAULTS))
        power = dict(POWER_DEFAULTS, **raw)
        _need(isinstance(power["probe"], str), "power.probe must be a string")
        for key in ("hz", "baseline_s"):
            value = power[key]
            _need(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
                  "power.{} must be a number >= 0, got {!r}", key, value)
        _need(power["hz"] > 0, "power.hz must be > 0")
        _need(isinstance(power["window"], int) and power["window"] >= 0,
              "power.window must be an integer >= 0 (0: automatic), got {!r}", power["window"])
        power["sysfs_root"] = os.path.join(directory, power["sysfs_root"])
        return power

    @staticmethod
    def _cloud(raw, directory):
        if raw is None:
            return None
        _need(isinstance(raw, dict) and isinstance(raw.get("host"), str)
              and isinstance(raw.get("port"), int) and isinstance(raw.get("key_file"), str),
              "cloud must be null or an object with host, port, key_file")
        return {"host": raw["host"], "port": raw["port"], "key_file": os.path.join(directory, raw["key_file"])}


    def _online(self, raw):
        """The online phase's settings, or None (no phase) when the spec has no ``online``."""
        if raw is None:
            return None
        _need(isinstance(raw, dict), "online must be null or an object with at least port")
        unknown = sorted(set(raw) - set(ONLINE_DEFAULTS))
        _need(not unknown, "online has unknown keys {}; accepted: {}", unknown, ", ".join(ONLINE_DEFAULTS))
        _need(self.cloud is not None, "online needs cloud (its key_file authenticates the online service)")
        online = dict(ONLINE_DEFAULTS, **raw)
        online["host"] = self.cloud["host"] if online["host"] is None else online["host"]
        _need(isinstance(online["host"], str) and online["host"], "online.host must be a host name or address")
        _need(isinstance(online["port"], int) and not isinstance(online["port"], bool) and 0 < online["port"] < 65536,
              "online.port must be an integer 1-65535, got {!r}", online["port"])
        for key, default, minimum in (("warmup", self.warmup, 0), ("repetitions", self.repetitions, 1),
                                      ("rtt_samples", None, 1), ("transfer_samples", None, 1),
                                      ("goodput_max_bytes", None, 1)):
            value = default if online[key] is None else online[key]
            _need(isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
                  "online.{} must be an integer >= {}, got {!r}", key, minimum, value)
            online[key] = value
        value = online["goodput_seconds"]
        _need(isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0,
              "online.goodput_seconds must be a number > 0, got {!r}", value)
        return online


def load_spec(path):
    return RunSpec(read_spec_json(path), path)

