"""Fully connected classifier: the MNIST, digits and MNIST-1D models."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``in -> hidden[0] -> ... -> classes`` with ReLU between layers.

    Args:
        in_features: Input width (784 for MNIST, 64 for digits, 40 for MNIST-1D).
        hidden: Width of each hidden layer.
        num_classes: Output width.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], num_classes: int) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
