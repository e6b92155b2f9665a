"""The two target networks of He, Zhang, Lee (ACSAC 2019), with the paper's layer names.

Each layer is its own attribute, called once, in the order of ``forward``: the traced graph's node
names are the paper's split-point names.
"""

from torch import nn

from edgekit.models.layers import normalize_for
from edgekit.models.registry import conv_output_size, register_model


@register_model("lenet", default_dataset="mnist-subset", input_shape=(1, 28, 28))
class LeNet(nn.Module):
    """LeNet for MNIST: two 5x5 convolutions with max pooling, then three fully connected layers."""

    def __init__(self, info):
        super().__init__()
        channels, height, width = info.shape
        steps = [(5, 1, 0), (2, 2, 0), (5, 1, 0), (2, 2, 0)]
        flat = 16 * conv_output_size("lenet", height, steps) * conv_output_size("lenet", width, steps)
        self.normalize = normalize_for(info)
        self.conv1 = nn.Conv2d(channels, 8, 5)
        self.ReLU1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.ReLU2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(flat, 120)
        self.fc1act = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.fc2act = nn.ReLU()
        self.fc3 = nn.Linear(84, info.num_classes)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x


@register_model("cifar10cnn", default_dataset="cifar10", input_shape=(3, 32, 32))
class CIFAR10CNN(nn.Module):
    """The paper's CIFAR-10 CNN: three blocks of two 3x3 convolutions and a max pool, then two FC layers."""

    def __init__(self, info):
        super().__init__()
        channels, height, width = info.shape
        steps = [(2, 2, 0)] * 3
        flat = 128 * conv_output_size("cifar10cnn", height, steps) * conv_output_size("cifar10cnn", width, steps)
        self.normalize = normalize_for(info)
        self.conv11 = nn.Conv2d(channels, 64, 3, padding=1)
        self.ReLU11 = nn.ReLU()
        self.conv12 = nn.Conv2d(64, 64, 3, padding=1)
        self.ReLU12 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv21 = nn.Conv2d(64, 128, 3, padding=1)
        self.ReLU21 = nn.ReLU()
        self.conv22 = nn.Conv2d(128, 128, 3, padding=1)
        self.ReLU22 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv31 = nn.Conv2d(128, 128, 3, padding=1)
        self.ReLU31 = nn.ReLU()
        self.conv32 = nn.Conv2d(128, 128, 3, padding=1)
        self.ReLU32 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(flat, 512)
        self.fc1act = nn.Sigmoid()
        self.fc2 = nn.Linear(512, info.num_classes)

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x
