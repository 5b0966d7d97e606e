"""How labels enter a conditional model, and the labels its preview grids show."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Conditioning:
    """none, a class index, or a multi-hot vector; stored in checkpoints as cond_kind/size/names."""

    kind: str  # "none" | "class" | "multi"
    size: int  # number of classes, or multi-hot width
    names: list[str]

    def unet_args(self) -> dict:
        return {"num_classes": self.size if self.kind == "class" else 0,
                "cond_dim": self.size if self.kind == "multi" else 0}

    @classmethod
    def of_dataset(cls, data, conditional: bool = True) -> "Conditioning":
        if not conditional:
            return cls("none", 0, [])
        return cls(data.label_kind, data.num_classes, list(data.class_names))

    @classmethod
    def of_checkpoint(cls, state: dict) -> "Conditioning":
        return cls(state.get("cond_kind", "none"), int(state.get("cond_size", 0)), list(state.get("class_names", [])))

    def meta(self) -> dict:
        """What a checkpoint stores of it."""
        return {"cond_kind": self.kind, "cond_size": self.size, "class_names": self.names}


def preview_labels(cond: Conditioning, n: int, device) -> torch.Tensor | None:
    """Labels for the sample grids: each class in turn (rows = classes), or fixed test scenes."""
    if cond.kind == "class":
        per_class = max(1, n // cond.size)
        return torch.arange(cond.size, device=device).repeat_interleave(per_class)
    if cond.kind == "multi":
        from ..data import shapes_test_labels

        labels = torch.from_numpy(shapes_test_labels("test"))
        return labels[torch.arange(n) % len(labels)].to(device)
    return None


def grid_columns(cond: Conditioning, n: int) -> int | None:
    """Class grids show one class per row."""
    return n // cond.size if cond.kind == "class" else None


def balanced_labels(cond: Conditioning, n: int) -> torch.Tensor | None:
    """Labels for n scored samples: every class equally often (in turn), or the fixed shapes
    test scenes cycled; None for an unconditional model."""
    if cond.kind == "class":
        return torch.arange(cond.size).repeat(-(-n // cond.size))[:n]
    if cond.kind == "multi":
        from ..data import shapes_test_labels

        table = torch.from_numpy(shapes_test_labels("test"))
        return table[torch.arange(n) % len(table)]
    return None
