"""``edgekit train MODEL``: train a model (or reuse its cached checkpoint) and print its accuracy."""

import argparse

EXAMPLES = """examples:
  edgekit train lenet                          # on its default dataset, mnist-subset
  edgekit train lenet --dataset fashion-mnist
  edgekit train cifar10cnn --dataset cifar10 --epochs 60 --seed 1
  edgekit train lenet --limit 500 --epochs 2   # a quick run on the first 500 training images

Checkpoints are cached under $EDGEKIT_CACHE/checkpoints (default ~/.cache/edgekit), keyed by model,
dataset, recipe, seed and limit: running the same command again reuses the checkpoint.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model, with a checkpoint cache",
        description="Train a model with the paper's recipe (Adam, amsgrad, eps 1e-3, batch 32, lr halved "
                    "every few epochs) and print its held-out accuracy and checkpoint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model name: lenet, cifar10cnn, resnet18")
    parser.add_argument("--dataset", help="dataset name (default: the model's default dataset)")
    parser.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling and augmentation (default 0)")
    parser.add_argument("--limit", type=int, help="train on the first N training images only")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads while training (default 1: fastest for batches of 32 on small models)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    parser.set_defaults(func=run)


def run(args) -> int:
    import dataclasses

    from edgekit.models import model_info
    from edgekit.train import recipe_for, train_model

    dataset = args.dataset or model_info(args.model).default_dataset
    recipe = recipe_for(args.model, dataset)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    checkpoint = train_model(args.model, dataset, recipe=recipe, seed=args.seed, limit=args.limit,
                             progress=not args.quiet, threads=args.threads)
    print(f"held-out accuracy: {checkpoint.accuracy:.2%}")
    print(f"checkpoint: {checkpoint.key}{' (cached)' if checkpoint.cached else ''}")
    print(f"path: {checkpoint.path}")
    return 0
