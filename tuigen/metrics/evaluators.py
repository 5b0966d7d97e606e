"""Fixed classifiers that score conditional generators: did the sample show its label?

One small CNN per (labelled dataset, image size, channels), trained once by tuigen with a
fixed recipe and seed, cached on disk with its held-out accuracy. `accuracy` of generated
images is the fraction classified as their conditioning label; for multi-hot labels the
i-CLEVR rule (correct objects / total objects). The label lists are fixed so accuracies
are comparable across runs and tuigen versions: a balanced list per class dataset, and the
two versioned `shapes` test sets (like i-CLEVR's test.json / new_test.json).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..files import atomic_write
from ..models.classifier import SmallCNN, accuracy, classification_loss, held_out_scores, predict
from ..models.pixels import to_float

EVALUATOR_VERSION = 1  # bump when the recipe below changes: cached evaluators are rebuilt
RECIPE = dict(steps=1500, batch_size=128, lr=2e-3, width=32, val_fraction=0.1, seed=0)


@dataclass
class Evaluator:
    dataset: str
    image_size: int
    channels: int
    multi: bool
    held_out_accuracy: float
    model: SmallCNN
    source: str = ""  # what it was trained on, by content (a folder's fingerprint); see ImageDataset.source

    @property
    def identity(self) -> str:
        return f"{self.source or self.dataset}/size{self.image_size}/ch{self.channels}/v{EVALUATOR_VERSION}"

    def accuracy(self, images_u8: np.ndarray, labels: np.ndarray) -> float:
        """images (N, C, H, W) uint8 at this evaluator's size; labels class indices or multi-hot."""
        return accuracy(predict(self.model, np.ascontiguousarray(images_u8)), torch.as_tensor(labels), self.multi)


def eval_labels(dataset_info_kind: str, num_classes: int, *, per_class: int = 100, which: str = "test") -> np.ndarray:
    """The fixed label list a conditional run is scored on."""
    if dataset_info_kind == "multi":
        from ..data import shapes_test_labels

        return shapes_test_labels(which)
    return np.repeat(np.arange(num_classes), per_class)


def labels_identity(kind: str, per_class: int, which: str) -> str:
    if kind == "multi":
        from ..data import SHAPES_LABELS_VERSION

        return f"shapes-{which}-v{SHAPES_LABELS_VERSION}"
    return f"balanced-{per_class}-per-class"


def cache_dir() -> Path:
    root = Path(os.environ.get("TUIGEN_CACHE") or Path.home() / ".cache" / "tuigen")
    return root / "evaluators"


def evaluator_file(data) -> Path:
    """Where the evaluator of a loaded dataset (at its size and channels) is cached: keyed by the
    data's content (ImageDataset.source), so an edited folder trains a new one, never reuses a stale one."""
    _, c, size, _ = data.images.shape
    return cache_dir() / f"{data.source.replace('/', '_').replace(':', '_')}-{size}-{c}-v{EVALUATOR_VERSION}.pt"


def get_evaluator(dataset: str, image_size: int, channels: int | None = None, *, device: str | torch.device = "cpu",
                  progress: Callable[[int, int], None] | None = None) -> Evaluator:
    """The cached evaluator, or train it now (about a minute on a 2-core CPU at 28px)."""
    from ..data import load_dataset

    data = load_dataset(dataset, image_size, channels)
    if data.label_kind == "none":
        raise ValueError(f"dataset {dataset} has no labels; an evaluator needs a labelled dataset")
    c = data.images.shape[1]
    path = evaluator_file(data)
    model = SmallCNN(c, data.num_classes, image_size, RECIPE["width"]).to(device)
    if path.is_file():
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        acc = float(state["held_out_accuracy"])
    else:
        acc = _train(model, data, device, progress)
        _save(path, {"model": model.state_dict(), "held_out_accuracy": acc, "recipe": json.dumps(RECIPE)})
    model.eval()
    return Evaluator(dataset, image_size, c, data.label_kind == "multi", acc, model, data.source)


def _train(model: SmallCNN, data, device, progress) -> float:
    """The fixed recipe: the `classifier` kind's loss and held-out scores, with a one-cycle lr."""
    train, val = data.split(RECIPE["val_fraction"], RECIPE["seed"])
    multi = data.label_kind == "multi"
    g = torch.Generator().manual_seed(RECIPE["seed"])
    torch.manual_seed(RECIPE["seed"])
    x, y = torch.as_tensor(train.images), torch.as_tensor(train.labels)
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"], total_steps=RECIPE["steps"])
    model.train()
    for step in range(RECIPE["steps"]):
        idx = torch.randint(len(x), (RECIPE["batch_size"],), generator=g)
        loss = classification_loss(model(to_float(x[idx].to(device))), y[idx].to(device), multi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress:
            progress(step + 1, RECIPE["steps"])
    return held_out_scores(model, torch.as_tensor(val.images), torch.as_tensor(val.labels), multi)["val_acc"]


def _save(path: Path, state: dict) -> None:
    with atomic_write(path) as f:
        torch.save(state, f)
