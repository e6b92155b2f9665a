"""edgekit: how much privacy a split neural network leaks, and what that privacy costs on real boards."""

__version__ = "0.1.0"
