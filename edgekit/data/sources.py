"""The built-in dataset loaders: importing this module registers each of them."""

from edgekit.data import cifar, folder, mnist  # noqa: F401
