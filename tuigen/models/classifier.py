"""A small CNN classifier for the built-in digit, scene and face datasets.

Conv-BN-ReLU pairs, halving the resolution until it is 4x4 or smaller, then global average
pooling and a linear head. Also the evaluator that later scores conditional generators.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32,
                 dropout: float = 0.1):
        super().__init__()
        layers, c, size = [], in_channels, image_size
        c_out = width
        while True:
            layers.append(conv_block(c, c_out))
            c = c_out
            if size <= 4:
                break
            layers.append(nn.MaxPool2d(2))
            size //= 2
            c_out = min(c_out * 2, width * 8)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (for t-SNE and feature statistics)."""
        return self.head[:2](self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def multilabel_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The i-CLEVR rule: for each image, the k true labels against the k highest scores;
    correct objects / total objects over the batch."""
    k = targets.sum(1).long()
    ranked = logits.argsort(1, descending=True)
    hits = sum(targets[i, ranked[i, : k[i]]].sum().item() for i in range(len(targets)))
    return hits / max(1, int(k.sum().item()))
