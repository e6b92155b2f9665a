"""edgekit device agent: runs an exported device part on a board, measures it, streams features.

Runs on Python 3.8+ with the standard library, numpy and one runtime (onnxruntime or LiteRT).
It never imports torch, edgekit or cloud_side.
"""

__version__ = "0.1.0"
