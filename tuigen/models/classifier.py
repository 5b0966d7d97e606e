"""A small CNN classifier for the built-in digit, scene and face datasets.

Conv-BN-ReLU pairs, halving the resolution until it is 4x4 or smaller, then global average
pooling and a linear head. The `classifier` kind trains it, and so does the evaluator that
scores conditional generators: both with the loss and the held-out scores below.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .pixels import to_float


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
    rank = logits.argsort(1, descending=True).argsort(1)  # each label's place in its image's ranking
    hits = (targets * (rank < k[:, None])).sum()
    return float(hits) / max(1, int(k.sum()))


def classification_loss(logits: torch.Tensor, y: torch.Tensor, multi: bool) -> torch.Tensor:
    """Cross-entropy on class indices; binary cross-entropy per label for multi-hot targets."""
    return F.binary_cross_entropy_with_logits(logits, y.float()) if multi else F.cross_entropy(logits, y)


@torch.no_grad()
def predict(model: nn.Module, images_u8: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Logits (float32, on the model's device) of uint8 images, in eval mode, batch by batch."""
    model.eval()
    dev = next(model.parameters()).device
    return torch.cat([model(to_float(torch.as_tensor(images_u8[i:i + batch]).to(dev))).float()
                      for i in range(0, len(images_u8), batch)])


def accuracy(logits: torch.Tensor, y: torch.Tensor, multi: bool) -> float:
    """Share of correct labels: argmax for classes, the i-CLEVR rule for multi-hot labels."""
    y = torch.as_tensor(y).to(logits.device)
    return multilabel_accuracy(logits, y.float()) if multi else (logits.argmax(1) == y).float().mean().item()


def held_out_scores(model: nn.Module, images_u8: torch.Tensor, y: torch.Tensor, multi: bool) -> dict:
    """val_loss and val_acc on a held-out split."""
    logits = predict(model, images_u8)
    y = torch.as_tensor(y).to(logits.device)
    return {"val_loss": classification_loss(logits, y, multi).item(), "val_acc": accuracy(logits, y, multi)}
