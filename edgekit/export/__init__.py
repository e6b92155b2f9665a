"""Export a split model's parts to ONNX and TFLite (fp32 and int8), each file proven against torch.

``export_split`` writes the device part in every requested format and precision and the cloud part
as ONNX fp32, runs each written file in its own runtime on held-out images, and records what it
made in ``DIR/manifest.json``. See docs/interfaces.md for the manifest.
"""

from edgekit.export.artifacts import FORMATS, PRECISIONS
from edgekit.export.pipeline import ArtifactResult, export_split

__all__ = ["FORMATS", "PRECISIONS", "ArtifactResult", "export_split"]
