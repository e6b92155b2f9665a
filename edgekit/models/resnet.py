"""ResNet-18 for 32x32 inputs: a 3x3 stem without max pooling, four stages of two BasicBlocks."""

from torch import nn

from edgekit.models.layers import normalize_for
from edgekit.models.registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual add; ``downsample`` matches the shortcut's shape."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


@register_model("resnet18", default_dataset="cifar10", input_shape=(3, 32, 32))
class ResNet18(nn.Module):
    """ResNet-18 (CIFAR variant): 3x3 stem, no max pool, BasicBlocks [2, 2, 2, 2], global average pool."""

    def __init__(self, info):
        super().__init__()
        self.normalize = normalize_for(info)
        self.conv1 = nn.Conv2d(info.shape[0], 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        stages, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, info.num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))
