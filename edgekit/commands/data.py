"""``edgekit data``: list the datasets and where their files are, and download them."""

import argparse

EXAMPLES = """\
examples:
  edgekit data list
  edgekit data fetch mnist
  edgekit data fetch cifar10 --dest /data/cifar10
  edgekit data fetch fashion-mnist --mirror http://127.0.0.1:8000/fashion/
  EDGEKIT_DATA_MIRROR=http://mirror.lan/mnist/ edgekit data fetch mnist
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="list and download datasets",
        description="List the registered datasets and download MNIST, Fashion-MNIST and CIFAR-10 "
                    "into the edgekit cache ($EDGEKIT_CACHE/datasets/NAME).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the datasets and where their files are found",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    listing.set_defaults(func=list_command)

    fetch = actions.add_parser(
        "fetch", help="download a dataset, checking its published checksums (resumes a partial download)",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    fetch.add_argument("name", metavar="NAME", help="mnist, fashion-mnist or cifar10")
    fetch.add_argument("--dest", metavar="DIR",
                       help="download into DIR instead of the cache (then load it with root=DIR)")
    fetch.add_argument("--mirror", metavar="URL",
                       help="base URL to download the files from (default: $EDGEKIT_DATA_MIRROR, "
                            "else the dataset's public mirror)")
    fetch.set_defaults(func=fetch_command)


def list_command(args) -> int:
    from edgekit.data import list_datasets
    from edgekit.data.registry import locate_dataset

    names = list_datasets()
    width = max(len(n) for n in names)
    for name in names:
        if name.startswith("folder:"):
            where = "any folder of PATH/<class>/*.png|jpg"
        else:
            found = locate_dataset(name)
            where = str(found) if found else f"not downloaded (edgekit data fetch {name})"
        print(f"{name:<{width}}  {where}")
    return 0


def fetch_command(args) -> int:
    from edgekit.data.fetch import fetch

    directory = fetch(args.name, dest=args.dest, mirror=args.mirror)
    print(f"{args.name}: {directory}")
    return 0
