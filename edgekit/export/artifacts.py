"""What an export request makes: one file per (split, part, format, precision)."""

from dataclasses import dataclass

from edgekit.errors import EdgekitError, unknown

FORMATS = ("onnx", "tflite")
PRECISIONS = ("fp32", "int8")
SUFFIX = {"onnx": ".onnx", "tflite": ".tflite"}


@dataclass(frozen=True)
class ArtifactSpec:
    model: str
    split: str
    part: str  # "device" or "cloud"
    format: str
    precision: str

    @property
    def file(self) -> str:
        return f"{self.model}-{self.split}-{self.part}-{self.format}-{self.precision}{SUFFIX[self.format]}"


def parse_choices(kind: str, values, accepted) -> tuple[str, ...]:
    """``values`` (a comma-separated string or a sequence) checked against ``accepted``, deduplicated."""
    items = values.split(",") if isinstance(values, str) else list(values)
    items = [item.strip() for item in items if item.strip()]
    if not items:
        raise EdgekitError(f"no {kind} given; accepted: {', '.join(accepted)}")
    for item in items:
        if item not in accepted:
            raise unknown(kind, item, accepted)
    return tuple(dict.fromkeys(items))


def parse_splits(values) -> tuple[str, ...]:
    items = values.split(",") if isinstance(values, str) else list(values)
    items = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not items:
        raise EdgekitError("no split given; name one or more layers, e.g. --split conv1,ReLU2")
    return items


def plan(model: str, split: str, formats, precisions) -> list[ArtifactSpec]:
    """The cloud part (ONNX fp32), then the device part per format, fp32 before int8."""
    specs = [ArtifactSpec(model, split, "cloud", "onnx", "fp32")]
    for fmt in formats:
        for precision in sorted(precisions, key=PRECISIONS.index):
            specs.append(ArtifactSpec(model, split, "device", fmt, precision))
    return specs
