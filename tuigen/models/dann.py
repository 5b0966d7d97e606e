"""Domain-adversarial neural network (Ganin & Lempitsky 2015; Ganin et al. 2016, JMLR).

Three parts, named as in the paper:

- G_f, the feature extractor: image -> feature vector f;
- G_y, the label predictor: f -> class logits, trained on labelled source images;
- G_d, the domain classifier: f -> one logit (0 = source, 1 = target), reached through the
  gradient reversal layer R_lambda, so that minimising the domain loss trains G_d to tell the
  domains apart while G_f receives -lambda times that gradient and learns features the domain
  classifier cannot separate.

The gradient reversal layer is the identity forward and multiplies the gradient by -lambda
backward (eq. 13-14 of the JMLR paper). The schedules the paper uses are here too:
lambda_p = 2 / (1 + exp(-gamma p)) - 1 and mu_p = mu_0 / (1 + alpha p)^beta, p in [0, 1].

G_f follows the paper's MNIST architecture (conv 5x5 32 -> pool -> conv 5x5 48 -> pool, then
fully connected 100-100 heads), with batch normalisation and a final 4x4 adaptive pooling so
any image size gives the paper's 48 x 4 x 4 = 768 features.
Knows nothing of the store or the runner.
"""
from __future__ import annotations

import math

import torch
from torch import nn


# -- schedules (the paper's section 5.2.2) -------------------------------------------------
def grl_lambda(p: float, gamma: float = 10.0) -> float:
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1: 0 at the start of training, -> 1 at the end,
    so the domain classifier's noisy early signal is suppressed."""
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def annealed_lr(mu0: float, p: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """mu_p = mu_0 / (1 + alpha p)^beta."""
    return mu0 / (1.0 + alpha * p) ** beta


# -- the gradient reversal layer -----------------------------------------------------------
class GradientReversal(torch.autograd.Function):
    """R_lambda(x) = x forward; dR/dx = -lambda I backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output.neg() * ctx.lambd, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, lambd)


class GRL(nn.Module):
    """The gradient reversal layer as a module; set `.lambd` as training progresses."""

    def __init__(self, lambd: float = 1.0):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambd)

    def extra_repr(self) -> str:
        return f"lambda={self.lambd:g}"


# -- the three networks ----------------------------------------------------------------------
class FeatureExtractor(nn.Module):
    """G_f: two conv 5x5 blocks (width and 1.5 x width channels, 32 and 48 in the paper).

    From 28 px up the convolutions are unpadded as in the paper (28 -> 24 -> 12 -> 8 -> 4, so
    exactly 48 x 4 x 4 features at 28 px, and 2.4x cheaper than padded ones); smaller images
    get "same" padding so that they keep a spatial map. A 4x4 adaptive average pool makes the
    feature size 1.5 x width x 16 at every image size.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, dropout: float = 0.1, image_size: int = 28):
        super().__init__()
        c2 = width * 3 // 2
        pad = 0 if image_size >= 28 else 2
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, padding=pad, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, c2, 5, padding=pad, bias=False), nn.BatchNorm2d(c2), nn.Dropout2d(dropout),
            nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )
        self.out_features = c2 * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LabelPredictor(nn.Module):
    """G_y: fully connected 100 -> 100 -> classes."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 100, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class DomainClassifier(nn.Module):
    """G_d: fully connected 100 -> one logit, P(domain = target)."""

    def __init__(self, in_features: int, hidden: int = 100):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).squeeze(1)


class DANN(nn.Module):
    """G_f, G_y and (behind the GRL) G_d. `forward(x)` returns (class logits, domain logits)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, hidden: int = 100,
                 dropout: float = 0.1, image_size: int = 28):
        super().__init__()
        self.G_f = FeatureExtractor(in_channels, width, dropout, image_size)
        self.G_y = LabelPredictor(self.G_f.out_features, num_classes, hidden, dropout)
        self.grl = GRL(0.0)
        self.G_d = DomainClassifier(self.G_f.out_features, hidden)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The latent features f = G_f(x) (what the t-SNE plots show)."""
        return self.G_f(x)

    def forward(self, x: torch.Tensor, lambd: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if lambd is not None:
            self.grl.lambd = lambd
        f = self.G_f(x)
        return self.G_y(f), self.G_d(self.grl(f))
