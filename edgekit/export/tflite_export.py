"""torch -> TFLite (litert_torch, no TensorFlow) and TFLite fp32 -> int8 (ai-edge-quantizer static).

litert_torch keeps the torch NCHW interface (it transposes inside the graph). The int8 recipe
quantises every supported op (int8 per-channel weights, int8 activations calibrated on training
images) but leaves the model's input and output float32, so the device agent always feeds float32.
"""

import os
from pathlib import Path

import numpy as np
import torch

from edgekit.export.quiet import quiet


def export_tflite(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``module`` with a fixed batch of 1 as a TFLite flatbuffer."""
    import litert_torch

    shown = litert_torch.config.show_progress
    litert_torch.config.show_progress = False
    try:
        with quiet("torch.onnx", "absl"):
            litert_torch.convert(module, (example,)).export(os.fspath(path))
    finally:
        litert_torch.config.show_progress = shown


def _int8_recipe(quantizer):
    from ai_edge_quantizer import algorithm_manager, qtyping

    ops = qtyping.TFLOperationName
    quantizer.add_static_config(".*", ops.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
    for boundary in (ops.INPUT, ops.OUTPUT):
        quantizer.update_quantization_recipe(regex=".*", operation_name=boundary,
                                             algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)


def quantize_tflite(fp32_path: Path, path: Path, calibration: list[np.ndarray]) -> None:
    """Static int8 with float32 input and output, calibrated on ``calibration`` ([1, C, H, W] images)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer as aeq

    signatures = Interpreter(model_path=os.fspath(fp32_path)).get_signature_list()
    (signature, io_names), = signatures.items()
    (input_name,) = io_names["inputs"]
    quantizer = aeq.Quantizer(os.fspath(fp32_path))
    _int8_recipe(quantizer)
    with quiet("absl"):
        ranges = quantizer.calibrate({signature: [{input_name: image} for image in calibration]},
                                     num_threads=1)
        result = quantizer.quantize(ranges, enable_progress_report=False)
    path.write_bytes(bytes(result.quantized_model))
