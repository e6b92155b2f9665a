"""The model registry: paper layer names, the normalize module, shape checks, fx tracing."""

import pytest
import torch
from torch import nn

from edgekit.data import DatasetInfo
from edgekit.errors import EdgekitError
from edgekit.models import Normalize, create_model, list_models, model_info
from edgekit.split import trace

torch.set_num_threads(2)

MNIST = DatasetInfo("mnist-like", (1, 28, 28), 10, (0.5,), (0.5,))
CIFAR = DatasetInfo("cifar-like", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))

LENET_LAYERS = ["normalize", "conv1", "ReLU1", "pool1", "conv2", "ReLU2", "pool2", "flatten",
                "fc1", "fc1act", "fc2", "fc2act", "fc3"]
CIFAR10CNN_LAYERS = ["normalize", "conv11", "ReLU11", "conv12", "ReLU12", "pool1", "conv21", "ReLU21",
                     "conv22", "ReLU22", "pool2", "conv31", "ReLU31", "conv32", "ReLU32", "pool3",
                     "flatten", "fc1", "fc1act", "fc2"]


def test_registry_lists_models_and_their_defaults():
    assert list_models() == ["cifar10cnn", "lenet", "resnet18"]
    assert model_info("lenet").default_dataset == "mnist-subset"
    assert model_info("lenet").input_shape == (1, 28, 28)
    assert model_info("cifar10cnn").input_shape == (3, 32, 32)


@pytest.mark.parametrize("name, info, layers", [("lenet", MNIST, LENET_LAYERS),
                                                ("cifar10cnn", CIFAR, CIFAR10CNN_LAYERS)])
def test_paper_models_have_paper_layer_names_as_graph_nodes(name, info, layers):
    model = create_model(name, info)
    assert [n for n, _ in model.named_children()] == layers
    nodes = [node.name for node in trace(model).graph.nodes if node.op == "call_module"]
    assert nodes == layers


def test_paper_model_layers_match_the_paper():
    lenet = create_model("lenet", MNIST)
    assert (lenet.conv1.in_channels, lenet.conv1.out_channels, lenet.conv1.kernel_size) == (1, 8, (5, 5))
    assert (lenet.conv2.out_channels, lenet.fc1.in_features, lenet.fc1.out_features) == (16, 256, 120)
    assert (lenet.fc2.out_features, lenet.fc3.out_features) == (84, 10)
    cnn = create_model("cifar10cnn", CIFAR)
    assert cnn.fc1.in_features == 2048 and cnn.fc1.out_features == 512
    assert isinstance(cnn.fc1act, nn.Sigmoid)
    assert all(conv.kernel_size == (3, 3) and conv.padding == (1, 1)
               for conv in cnn.modules() if isinstance(conv, nn.Conv2d))


def test_normalize_holds_dataset_statistics_and_comes_first():
    model = create_model("resnet18", CIFAR)
    assert isinstance(next(model.children()), Normalize)
    assert torch.allclose(model.normalize.mean.flatten(), torch.tensor(CIFAR.mean))
    assert "normalize.std" in model.state_dict()
    x = torch.rand(1, 3, 32, 32)
    expected = (x - torch.tensor(CIFAR.mean).view(1, 3, 1, 1)) / torch.tensor(CIFAR.std).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(x), expected)


def test_models_are_in_eval_mode_and_give_logits():
    model = create_model("resnet18", CIFAR)
    assert not model.training
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_has_residual_blocks():
    model = create_model("resnet18", CIFAR)
    names = [node.name for node in trace(model).graph.nodes]
    assert sum(name.endswith("_add") for name in names) == 8
    assert model.layer2[0].downsample is not None and model.layer1[0].downsample is None


def test_unknown_model_is_a_one_line_error():
    with pytest.raises(EdgekitError, match=r"unknown model 'vgg'; accepted: cifar10cnn, lenet, resnet18"):
        create_model("vgg", MNIST)
    with pytest.raises(EdgekitError, match="unknown model"):
        model_info("vgg")


def test_too_small_input_is_rejected():
    with pytest.raises(EdgekitError, match=r"lenet: input size 8 is too small"):
        create_model("lenet", DatasetInfo("tiny", (1, 8, 8), 10, (0.5,), (0.5,)))


def test_statistics_must_match_channels():
    with pytest.raises(EdgekitError, match="3 channels"):
        create_model("cifar10cnn", DatasetInfo("odd", (3, 32, 32), 10, (0.5,), (0.5,)))
