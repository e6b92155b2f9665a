"""Run a written artifact in its own runtime, and describe the interface the file really has."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_LAYOUTS = {1: "N", 2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}
_ONNX_TYPES = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict:
        """The manifest form; the layout is torch's (channels first), checked against torch's shape."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype,
                "layout": _LAYOUTS[len(self.shape)]}


class OnnxRunner:
    """One onnxruntime CPU session over the file."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [TensorSpec(t.name, tuple(t.shape), _ONNX_TYPES.get(t.type, t.type))
                       for t in self._session.get_inputs()]
        self.outputs = [TensorSpec(t.name, tuple(t.shape), _ONNX_TYPES.get(t.type, t.type))
                        for t in self._session.get_outputs()]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._session.run([self.outputs[0].name], {self.inputs[0].name: x})[0]


class TfliteRunner:
    """One LiteRT interpreter (XNNPACK on CPU, as on the boards) over the file."""

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=os.fspath(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input, self._output = (self._interpreter.get_input_details(),
                                     self._interpreter.get_output_details())
        self.inputs = [TensorSpec(t["name"], tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]).name)
                       for t in self._input]
        self.outputs = [TensorSpec(t["name"], tuple(int(d) for d in t["shape"]), np.dtype(t["dtype"]).name)
                        for t in self._output]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input[0]["index"], x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output[0]["index"])


RUNNERS = {"onnx": OnnxRunner, "tflite": TfliteRunner}


def open_runner(path: Path, fmt: str, threads: int = 1):
    return RUNNERS[fmt](path, threads)
