"""Demo benchmark: the wall time of `edgekit demo` from a fresh set-up, and of each of its stages.

    .venv/bin/python bench/demo.py [--keep DIR]

Runs ``python -m edgekit.cli demo`` in a subprocess with an empty cache (so training and every
export are included, as on a fresh install), then prints the total wall time and the sweep's
seconds per stage from the run's manifest (train, export, devices, attacks) plus the report.
The target is under 5 minutes on 2 CPU cores.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-demo-") as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, EDGEKIT_CACHE=str(work / "cache"), EDGEKIT_CONFIG=str(work / "config"))
        env.pop("EDGEKIT_DEVICES", None)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "edgekit.cli", "demo", "--output", str(work / "results")],
                              env=env, cwd=work, capture_output=True, text=True)
        total = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
            print(f"edgekit demo failed (exit {done.returncode}) after {total:.1f} s", file=sys.stderr)
            return 1
        (manifest_path,) = (work / "results").rglob("manifest.json")
        manifest = json.loads(manifest_path.read_text())
        stages = manifest["stage_seconds"]
        print(f"edgekit demo, fresh cache, {os.cpu_count()} CPUs: {total:.1f} s "
              f"({'within' if total <= TARGET_S else 'OVER'} the {TARGET_S} s target)")
        for stage in ("train", "export", "devices", "attacks"):
            print(f"  {stage:<9}{stages.get(stage, 0.0):8.1f} s")
        accounted = sum(stages.values())
        print(f"  {'other':<9}{total - accounted:8.1f} s  (start-up, validation, report, imports)")
        print(f"results: {manifest_path.parent}" if args.keep else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
