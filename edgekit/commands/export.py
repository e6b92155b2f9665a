"""``edgekit export MODEL --split L --out DIR``: device part to ONNX/TFLite, fp32/int8, with proof."""

import argparse

EXAMPLES = """examples:
  edgekit export lenet --split conv1,ReLU2 --out artifacts/lenet
  edgekit export lenet --split ReLU2 --format onnx --precision int8 --out artifacts/lenet
  edgekit export cifar10cnn --split pool1 --dataset cifar10 --seed 1 --out artifacts/cifar
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "export", help="export a split model's parts and check each file against torch",
        description="Write the device part (up to and including each split layer) as ONNX and/or TFLite, "
                    "fp32 and/or int8 (static, calibrated on training images), and the cloud part as ONNX "
                    "fp32. Each written file is run in its own runtime on held-out images: fp32 must match "
                    "torch within 1e-4, int8 must keep a mean feature cosine >= 0.99 and top-1 agreement "
                    ">= 98%. DIR/manifest.json records every artifact; unchanged artifacts are reused.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model name (see the error message for the list)")
    parser.add_argument("--split", required=True, metavar="LAYER[,LAYER..]",
                        help="split layers (see `edgekit layers MODEL`)")
    parser.add_argument("--format", default="onnx,tflite", metavar="onnx,tflite",
                        help="formats of the device part (default: onnx,tflite)")
    parser.add_argument("--precision", default="fp32,int8", metavar="fp32,int8",
                        help="precisions of the device part (default: fp32,int8)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created; merged into)")
    parser.add_argument("--dataset", help="training dataset (default: the model's default)")
    parser.add_argument("--seed", type=int, default=0, help="training and calibration seed (default: 0)")
    parser.add_argument("--checkpoint", metavar="KEY|PATH",
                        help="use this checkpoint instead of training (key or .pt path)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from edgekit.export import export_split
    from edgekit.export.table import header, result_row

    rows = []

    def report(result):
        if not rows:  # the header waits for the first row, so that bad input prints only its error
            print(header(), flush=True)
        rows.append(result)
        print(result_row(result), flush=True)

    export_split(args.model, args.dataset, args.split, args.format, args.precision, args.out,
                 seed=args.seed, checkpoint=args.checkpoint, report=report)
    print(f"manifest: {args.out}/manifest.json")
    return 0
