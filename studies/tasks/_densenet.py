"""DenseNet-121, CIFAR variant: a 3x3 stem of 2*growth channels, blocks [6, 12, 24, 16], growth 32."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Bottleneck(nn.Module):
    """BN-ReLU-1x1 conv (4*growth) then BN-ReLU-3x3 conv (growth); output concatenated to input."""

    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-1x1 conv compressing the channels, then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNetCIFAR(nn.Module):
    """DenseNet-BC for 32x32 inputs.

    Args:
        blocks: Bottlenecks per dense block; ``(6, 12, 24, 16)`` is DenseNet-121.
        growth: Channels each bottleneck adds.
        reduction: Channel compression of each transition.
        num_classes: Output width.
    """

    def __init__(
        self,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        growth: int = 32,
        reduction: float = 0.5,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        planes = 2 * growth
        self.stem = nn.Conv2d(3, planes, 3, padding=1, bias=False)
        layers: list[nn.Module] = []
        for i, count in enumerate(blocks):
            for _ in range(count):
                layers.append(Bottleneck(planes, growth))
                planes += growth
            if i < len(blocks) - 1:
                out_planes = int(planes * reduction)
                layers.append(Transition(planes, out_planes))
                planes = out_planes
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(planes)
        self.classifier = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.features(self.stem(x))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def densenet121_cifar(num_classes: int = 10) -> DenseNetCIFAR:
    """DenseNet-121 for 32x32 inputs."""
    return DenseNetCIFAR((6, 12, 24, 16), growth=32, num_classes=num_classes)
