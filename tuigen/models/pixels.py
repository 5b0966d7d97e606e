"""The pixel convention every model here works in: uint8 [0, 255] in storage, float [-1, 1] inside."""
from __future__ import annotations

import torch


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images_u8.float().div_(127.5).sub_(1.0)


VALUE_RANGE = (-1.0, 1.0)  # what every model here takes and outputs; images are written with it
