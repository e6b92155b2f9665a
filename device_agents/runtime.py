"""Load an exported device part into its runtime, after checking its sha256.

Runtimes are imported lazily, only the one the artifact needs: onnxruntime for .onnx, LiteRT
(ai_edge_litert, else the older tflite_runtime) for .tflite.
"""

import numpy as np

from .errors import AgentError
from .fileio import sha256_file

ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32",
              "tensor(int64)": "int64"}


def verify_sha256(path, expected):
    try:
        actual = sha256_file(path)
    except OSError as error:
        raise AgentError("cannot read {}: {}".format(path, error))
    if actual != expected:
        raise AgentError("sha256 mismatch for {}: expected {}, got {}".format(path, expected, actual))


class OnnxRunner(object):
    runtime = "onnxruntime"

    def __init__(self, path, threads, input_name=None, output_name=None):
        try:
            import onnxruntime
        except ImportError:
            raise AgentError("onnxruntime is not installed on this device: pip install onnxruntime")
        self.runtime_version = onnxruntime.__version__
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise AgentError("onnxruntime cannot load {}: {}".format(path, error))
        first_in, first_out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = input_name or first_in.name
        self.output_name = output_name or first_out.name
        node = dict((i.name, i) for i in self.session.get_inputs()).get(self.input_name)
        if node is None:
            raise AgentError("model {} has no input {!r}".format(path, self.input_name))
        self.input_shape = [d if isinstance(d, int) else None for d in node.shape]
        self.input_dtype = np.dtype(ONNX_TYPES.get(node.type, "float32"))
        self._outputs = [self.output_name]

    def run(self, x):
        return self.session.run(self._outputs, {self.input_name: x})[0]


def _litert_interpreter():
    try:
        from ai_edge_litert.interpreter import Interpreter
        from importlib import metadata
        return Interpreter, "ai-edge-litert", metadata.version("ai-edge-litert")
    except ImportError:
        pass
    try:
        import tflite_runtime
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite-runtime", tflite_runtime.__version__
    except ImportError:
        raise AgentError("no LiteRT interpreter on this device: pip install ai-edge-litert "
                         "(Python 3.10+) or pip install tflite-runtime (older Pythons, armv7l)")


class LiteRtRunner(object):
    def __init__(self, path, threads):
        interpreter_class, self.runtime, self.runtime_version = _litert_interpreter()
        try:
            self.interpreter = interpreter_class(model_path=path, num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise AgentError("LiteRT cannot load {}: {}".format(path, error))
        source = self.interpreter.get_input_details()[0]
        self.input_name = source["name"]
        self.input_shape = [int(d) for d in source["shape"]]
        self.input_dtype = np.dtype(source["dtype"])
        self._input = source["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]

    def run(self, x):
        self.interpreter.set_tensor(self._input, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)


def load_runner(artifact, threads=1):
    """A Runner for ``artifact`` ({"path", "sha256", "format", optional "input"/"output" with names}).

    The file's sha256 is checked before the runtime sees it; AgentError on any problem.
    """
    verify_sha256(artifact["path"], artifact["sha256"])
    if artifact["format"] == "onnx":
        return OnnxRunner(artifact["path"], threads,
                          (artifact.get("input") or {}).get("name"), (artifact.get("output") or {}).get("name"))
    if artifact["format"] == "tflite":
        return LiteRtRunner(artifact["path"], threads)
    raise AgentError("unknown artifact format {!r}; accepted: onnx, tflite".format(artifact["format"]))
