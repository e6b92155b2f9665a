"""``edgekit demo``: the shipped demo experiment on this machine, then its report."""

import argparse

EXAMPLES = """examples:
  edgekit demo                      # results/demo/<run-id>/ with the figures in its report/ folder
  edgekit demo --output /tmp/res    # somewhere else
  edgekit demo --threshold 0.4

The demo trains LeNet on the 5000-image MNIST subset, splits it at conv1, ReLU2 and fc1, exports
ONNX and TFLite in fp32 and int8, runs each on the local device, attacks the received features
with the white-box, black-box and query-free attacks (and with dropout 0.5 applied), and reports.
It takes a few minutes on two cores. Its experiment file: edgekit/experiments/demo.toml.
"""


def register(subparsers):
    from edgekit.commands.run import add_run_options

    parser = subparsers.add_parser(
        "demo", help="run the demo experiment on this machine and write its report",
        description="Run the shipped demo experiment (LeNet, MNIST subset, three splits, ONNX and TFLite, "
                    "fp32 and int8, three attacks, one defence) on the local device, then the report.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(parser)
    parser.add_argument("--threshold", type=float, default=0.3,
                        help="SSIM under which a reconstruction counts as unrecognisable (default 0.3)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from importlib import resources

    from edgekit.commands.console import console
    from edgekit.experiment.sweep import run_experiment
    from edgekit.report.write import write_report

    out = console()
    with resources.as_file(resources.files("edgekit") / "experiments" / "demo.toml") as experiment:
        run_dir = run_experiment(experiment, inventory=args.devices, output=args.output, console=out)
    write_report(run_dir, args.threshold, out)
    return 0
