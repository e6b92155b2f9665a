"""The generic fx split: every split point cuts the model into parts that compose back exactly."""

import pytest
import torch

from edgekit.data import DatasetInfo
from edgekit.errors import EdgekitError
from edgekit.models import create_model
from edgekit.split import split_model, split_points

torch.set_num_threads(2)

MNIST = DatasetInfo("mnist-like", (1, 28, 28), 10, (0.5,), (0.5,))
CIFAR = DatasetInfo("cifar-like", (3, 32, 32), 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return create_model("lenet", MNIST)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return create_model("resnet18", CIFAR)


def assert_splits_exactly(model, name, shape):
    x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    parts = split_model(model, name, shape)
    with torch.no_grad():
        feature = parts.device(x)
        assert tuple(feature.shape[1:]) == parts.feature_shape == parts.split.shape
        assert torch.equal(parts.cloud(feature), model(x))
    return parts


@pytest.mark.parametrize("name, info", [("lenet", MNIST), ("cifar10cnn", CIFAR)])
def test_every_split_point_of_the_paper_models_composes_exactly(name, info):
    torch.manual_seed(0)
    model = create_model(name, info)
    points = split_points(model, info.shape)
    assert [p.name for p in points] == [n for n, _ in model.named_children()]
    for point in points:
        assert_splits_exactly(model, point.name, info.shape)


@pytest.mark.parametrize("name", ["relu", "layer2_1_add", "layer3_0_relu_1", "flatten"])
def test_resnet18_splits_after_blocks(resnet18, name):
    assert_splits_exactly(resnet18, name, CIFAR.shape)


def test_resnet18_split_points_are_block_boundaries(resnet18):
    names = [p.name for p in split_points(resnet18, CIFAR.shape)]
    assert names[:4] == ["normalize", "conv1", "bn1", "relu"]
    assert "layer1_0_relu_1" in names and "layer4_1_relu_1" in names
    assert not any("conv" in n or "bn" in n for n in names[4:])


def test_split_inside_a_residual_block_names_the_crossing_tensors(resnet18):
    with pytest.raises(EdgekitError) as error:
        split_model(resnet18, "layer1_0_bn1", CIFAR.shape)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("cannot split resnet18 at 'layer1_0_bn1': 2 tensors cross (relu, layer1_0_bn1)")
    assert "valid split points: normalize, conv1, bn1, relu, layer1_0_add, layer1_0_relu_1" in message


def test_unknown_split_point_lists_valid_ones(lenet):
    with pytest.raises(EdgekitError, match=r"unknown lenet split point 'relu2'; accepted: .*ReLU2"):
        split_model(lenet, "relu2", MNIST.shape)


def test_incompatible_input_shape_is_an_edgekit_error(lenet):
    with pytest.raises(EdgekitError, match=r"lenet does not accept input shape \(3, 28, 28\)"):
        split_points(lenet, (3, 28, 28))


def test_split_point_sizes_and_costs(lenet):
    points = {p.name: p for p in split_points(lenet, MNIST.shape)}
    assert points["ReLU2"].shape == (16, 8, 8) and points["ReLU2"].bytes == 16 * 8 * 8 * 4
    assert points["flatten"].shape == (256,)
    # normalize: 784 elements; conv1: 8x24x24 outputs x 25 MACs x 2
    assert points["conv1"].flops == 784 + 8 * 24 * 24 * 25 * 2
    assert points["conv1"].params == 8 * 25 + 8
    assert points["fc3"].params == sum(p.numel() for p in lenet.parameters())


def test_parts_keep_eval_mode_and_export_to_onnx(resnet18, tmp_path):
    import onnxruntime

    parts = split_model(resnet18, "layer1_1_relu_1", CIFAR.shape)
    assert not parts.device.training and not parts.cloud.training
    x = torch.rand(1, *CIFAR.shape)
    torch.onnx.export(parts.device, (x,), tmp_path / "device.onnx", dynamo=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "device.onnx"))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(out), parts.device(x), atol=1e-5)
