"""Which converter and runtime versions made an artifact, and whether the TFLite tools are here.

An artifact's manifest entry records the versions of the tools that made and checked it; a change
of any of them (or of ``EXPORTER_VERSION``) makes the next export convert it again.
"""

import os
from importlib import import_module, metadata

from edgekit.errors import EdgekitError
from edgekit.export.quiet import quiet, quiet_native_stderr

# Bump when the conversion, quantisation or parity procedure changes.
EXPORTER_VERSION = "1"

TOOLS = {
    "onnx": ("torch", "onnx", "onnxscript", "onnxruntime"),
    "tflite": ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer"),
}
_TFLITE_MODULES = ("litert_torch", "ai_edge_litert.interpreter", "ai_edge_quantizer.quantizer")


def _version(distribution: str):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def tool_versions(fmt: str | None = None) -> dict:
    """Installed versions of the tools behind ``fmt`` (all tools when ``fmt`` is None)."""
    names = TOOLS[fmt] if fmt else sorted({name for names in TOOLS.values() for name in names})
    return {name: _version(name) for name in names}


def require_tflite() -> None:
    """Fail early, in one line, when the optional TFLite tools are not importable."""
    for module in _TFLITE_MODULES:
        try:
            # TensorFlow's C++ logging: warnings and errors only (a user's own setting wins)
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
            with quiet("torch", "torchao"), quiet_native_stderr():  # imports narrate optional kernels
                import_module(module)
        except ImportError:
            raise EdgekitError(f"format 'tflite' needs {module.split('.')[0]}, which is not installed; "
                               "install it with: pip install 'edgekit[tflite]'") from None
