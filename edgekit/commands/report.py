"""``edgekit report RUN_DIR``: figures, summary table and the recommendation of a run."""

import argparse

EXAMPLES = """examples:
  edgekit report results/demo/20250101-120000
  edgekit report results/lab/20250101-120000 --threshold 0.25

Writes RUN_DIR/report/: privacy_vs_latency, privacy_vs_energy (when a power probe measured it),
privacy_vs_e2e (measured end to end), privacy_vs_link (predicted end to end per link profile),
accuracy_vs_ssim and reconstructions_<split>, each as PNG and SVG, and recommendation.txt/.json:
per device, the fastest (end to end) and the most energy-frugal configuration whose best attack
stays under the SSIM threshold (0.3: unrecognisable in He, Zhang, Lee 2019), and the fastest on
each link profile. Latencies whose 95% confidence intervals of the median overlap are a tie, which
goes to the lower worst-case SSIM (docs/links.md).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "report", help="plot a run and recommend a split per device",
        description="Plot privacy against latency (device, end to end, predicted per link profile) and "
                    "energy, accuracy against privacy and the reconstructions of a run, and recommend the "
                    "fastest private split per device and per link profile.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory: results/<experiment>/<run-id>")
    parser.add_argument("--threshold", type=float, default=0.3,
                        help="SSIM under which a reconstruction counts as unrecognisable (default 0.3)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from edgekit.commands.console import console
    from edgekit.report.write import write_report

    write_report(args.run_dir, args.threshold, console())
    return 0
