"""``edgekit layers MODEL``: the split points of a model, with feature sizes, device-side cost and the
time each feature takes to upload on each shipped link profile."""

import argparse

EXAMPLES = """examples:
  edgekit layers lenet
  edgekit layers cifar10cnn
  edgekit layers resnet18 --dataset cifar10
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "layers", help="list a model's split points",
        description="List every node where a model can be split: exactly one tensor crosses from the "
                    "device to the cloud. FLOPs count 2 per multiply-accumulate in convolutions and "
                    "linear layers and 1 per output element elsewhere, summed over the device part. The "
                    "last columns are the time one feature (fp32) takes to upload at each shipped link "
                    "profile's goodput, round trip not included (docs/links.md).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model name (see the error message for the list)")
    parser.add_argument("--dataset", help="take the input shape from this dataset (loads it); "
                                          "default: the model's default dataset's shape")
    parser.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from edgekit.data import load_dataset
    from edgekit.links import format_ms, format_rate, shipped_links
    from edgekit.models import create_model, model_info
    from edgekit.split import split_points

    info = load_dataset(args.dataset).info if args.dataset else model_info(args.model).shape_info()
    model = create_model(args.model, info)
    links = shipped_links()
    table = Table(title=f"{args.model} split points, input {tuple(info.shape)} ({info.name})",
                  caption="upload time of one feature at each link profile's goodput (round trip not included)")
    for column in ("split point", "op", "feature shape", "feature bytes", "device FLOPs", "device params"):
        table.add_column(column, justify="left" if column in ("split point", "op") else "right")
    for link in links:
        table.add_column(f"{link.name}\n{format_rate(link.upload_mbps)}\nRTT {link.rtt_ms:g} ms", justify="right")
    for point in split_points(model, info.shape):
        table.add_row(point.name, point.op, "x".join(map(str, point.shape)),
                      f"{point.bytes:,}", f"{point.flops:,}", f"{point.params:,}",
                      *(format_ms(link.transfer_ms(point.bytes)) for link in links))
    Console(width=160).print(table)
    return 0
