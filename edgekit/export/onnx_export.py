"""torch -> ONNX (torch.onnx's dynamo exporter) and ONNX fp32 -> int8 (onnxruntime static QDQ)."""

from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgekit.export.quiet import quiet


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str,
                output_name: str) -> None:
    """Write ``module`` with a fixed batch of 1 as one self-contained ONNX file."""
    with quiet("torch.onnx"):
        torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                          output_names=[output_name], dynamo=True, external_data=False, verbose=False)


class _Calibration(CalibrationDataReader):
    """Feeds [1, C, H, W] float32 images one at a time."""

    def __init__(self, input_name: str, images: list[np.ndarray]):
        self._feeds = iter([{input_name: image} for image in images])

    def get_next(self):
        return next(self._feeds, None)


def quantize_onnx(fp32_path: Path, path: Path, input_name: str, calibration: list[np.ndarray]) -> None:
    """Static int8 (QDQ, per-channel weights, MinMax activation ranges from ``calibration``).

    The model's input and output stay float32: the quantize/dequantize pairs sit inside the graph.
    """
    with quiet(""):  # the root logger: it advises shape pre-processing, which static graphs do not need
        quantize_static(str(fp32_path), str(path), _Calibration(input_name, calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
