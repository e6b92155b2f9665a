"""The model registry: ``create_model(name, info)``; every model starts with a ``normalize`` module."""

from edgekit.models import paper, resnet  # noqa: F401  (registers the models)
from edgekit.models.layers import Normalize
from edgekit.models.registry import ModelInfo, create_model, list_models, model_info

__all__ = ["ModelInfo", "Normalize", "create_model", "list_models", "model_info"]
