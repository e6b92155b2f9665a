"""``edgekit run EXPERIMENT``: run an experiment file into results/<experiment>/<run-id>/."""

import argparse

EXAMPLES = """examples:
  edgekit run examples/demo.toml                      # a new run under results/demo/
  edgekit run examples/lab.toml --devices lab.toml    # boards from an inventory file
  edgekit run examples/lab.toml --resume              # continue the latest run of that experiment
  edgekit run examples/lab.toml --resume results/lab/20250101-120000
  edgekit report results/lab/20250101-120000          # then the figures and the recommendation

A run can be stopped at any time (Ctrl-C): every configuration finished so far is kept, and
--resume redoes only what is not finished (failed configurations included).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "run", help="run an experiment file (train, export, measure on devices, attack, score)",
        description="Validate an experiment file, then train (or reuse) the model, export every split, run "
                    "the agents on the devices with the collector receiving the features, attack them and "
                    "write one results row per configuration and attack.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", help="experiment file (TOML); see examples/*.toml")
    add_run_options(parser)
    parser.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                        help="continue a run: RUN_DIR, or without a value the experiment's latest run")
    parser.set_defaults(func=run)


def add_run_options(parser):
    parser.add_argument("--devices", metavar="FILE", help="device inventory (TOML); default: the experiment's "
                                                          "inventory, else $EDGEKIT_DEVICES or ~/.config/edgekit/devices.toml")
    parser.add_argument("--output", metavar="DIR", help="results root (default: the experiment's output, results)")


def run(args) -> int:
    from edgekit.commands.console import console
    from edgekit.experiment.sweep import run_experiment
    from edgekit.report.table import summary_table
    from edgekit.report.recommend import DEFAULT_THRESHOLD
    from edgekit import results

    out = console()
    run_dir = run_experiment(args.experiment, resume=args.resume, inventory=args.devices, output=args.output,
                             console=out)
    summary = results.load_run(run_dir)
    out.print(summary_table(summary, DEFAULT_THRESHOLD))
    out.print(f"results: {run_dir}   (figures and recommendation: edgekit report {run_dir})")
    return 0 if (summary["status"] == "ok").all() else 1
