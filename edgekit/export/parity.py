"""Parity of a written artifact with torch, measured by running the file in its runtime.

fp32 files must match torch to ``FP32_MAX_ABS_DIFF``. An int8 device part is judged by what it
costs: the mean cosine similarity of its features with torch's, and how often the whole split
model (int8 device part, then the fp32 torch cloud part) picks the same class as the fp32 model.
"""

from dataclasses import dataclass

import numpy as np
import torch

FP32_MAX_ABS_DIFF = 1e-4
INT8_MIN_COSINE = 0.99
INT8_MIN_TOP1_AGREEMENT = 0.98


@dataclass
class Reference:
    """Held-out images and what torch makes of them: the device part's features and the logits."""

    images: np.ndarray
    features: np.ndarray
    logits: np.ndarray
    cloud: torch.nn.Module

    @classmethod
    def compute(cls, parts, images: np.ndarray) -> "Reference":
        with torch.no_grad():
            features = parts.device(torch.from_numpy(images))
            logits = parts.cloud(features)
        return cls(images, features.numpy(), logits.numpy(), parts.cloud)

    def io(self, part: str):
        """The inputs a part's file is fed and the outputs torch gives for them."""
        return (self.images, self.features) if part == "device" else (self.features, self.logits)


def _run_each(runner, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate([runner(np.ascontiguousarray(inputs[i:i + 1])) for i in range(len(inputs))])


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    cosine = np.where(both_zero, 1.0, (a * b).sum(axis=1) / np.maximum(norms, np.finfo(np.float64).tiny))
    return float(cosine.mean())


def measure(runner, part: str, precision: str, reference: Reference) -> dict:
    """Run the file on every held-out input (batch 1) and compare with torch."""
    inputs, expected = reference.io(part)
    got = _run_each(runner, inputs)
    parity = {"images": int(len(inputs)), "max_abs_diff": float(np.abs(got - expected).max())}
    if precision == "fp32":
        parity["target"] = {"max_abs_diff": FP32_MAX_ABS_DIFF}
        return parity
    with torch.no_grad():
        logits = reference.cloud(torch.from_numpy(got)).numpy()
    parity["cosine"] = _mean_cosine(got, expected)
    parity["top1_agreement"] = float((logits.argmax(1) == reference.logits.argmax(1)).mean())
    parity["target"] = {"cosine": INT8_MIN_COSINE, "top1_agreement": INT8_MIN_TOP1_AGREEMENT}
    return parity


def shortfalls(parity: dict) -> list[str]:
    """Each figure that misses its target, as 'figure value vs target'."""
    target = parity["target"]
    misses = []
    if "max_abs_diff" in target and not parity["max_abs_diff"] <= target["max_abs_diff"]:
        misses.append(f"max abs diff {parity['max_abs_diff']:.3g} > {target['max_abs_diff']:g}")
    for figure in ("cosine", "top1_agreement"):
        if figure in target and not parity[figure] >= target[figure]:
            misses.append(f"{figure.replace('_', ' ')} {parity[figure]:.4f} < {target[figure]:g}")
    return misses


def interface_problems(runner, part: str, reference: Reference) -> list[str]:
    """How the file's input/output differ from torch's (batch 1, float32, same NC.. shape)."""
    inputs, expected = reference.io(part)
    problems = []
    for kind, specs, array in (("input", runner.inputs, inputs), ("output", runner.outputs, expected)):
        want = (1, *array.shape[1:])
        if len(specs) != 1:
            problems.append(f"{len(specs)} {kind}s, expected 1")
        elif specs[0].shape != want or specs[0].dtype != "float32":
            problems.append(f"{kind} {list(specs[0].shape)} {specs[0].dtype}, expected {list(want)} float32")
    return problems
