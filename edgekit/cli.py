"""The ``edgekit`` command: one sub-command per module in ``edgekit.commands``.

Each command module defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``. Command modules import heavy libraries (torch, onnx) inside their
handlers, so that ``edgekit --help`` stays fast.
"""

import argparse
import importlib
import sys

from edgekit import __version__
from edgekit.errors import EdgekitError

COMMANDS = ("layers", "data", "train", "export", "devices", "run", "demo", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Measure how much privacy a split DNN leaks on real boards, and at what latency and energy.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"edgekit.commands.{name}").register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EdgekitError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
