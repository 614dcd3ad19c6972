"""CIFAR-style ResNet-18 (He et al. 2016) and PreAct ResNet-18 (He et al. 2016b): a 3x3 stem without
max-pooling, as in the adversarial-training literature; global average pooling lets 64x64 inputs through."""
import torch.nn.functional as F
from torch import nn

from .base import MODELS


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        return self.conv2(F.relu(self.bn2(out))) + skip


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes, in_channels, preact):
        super().__init__()
        self.preact = preact
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = None if preact else nn.BatchNorm2d(64)
        layers, cin = [], 64
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            for j in range(n):
                layers.append(block(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.bn_final = nn.BatchNorm2d(512) if preact else None
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        if not self.preact:
            out = F.relu(self.bn1(out))
        out = self.layers(out)
        if self.preact:
            out = F.relu(self.bn_final(out))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


@MODELS.register("resnet18")
def resnet18(num_classes=10, in_channels=3):
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels, preact=False)


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes=10, in_channels=3):
    return ResNet(PreActBlock, (2, 2, 2, 2), num_classes, in_channels, preact=True)
