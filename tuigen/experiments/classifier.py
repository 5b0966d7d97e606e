"""`classifier`: a small CNN on a labelled built-in dataset (or a folder of class folders).

Logs loss and held-out accuracy, checkpoints every N steps, resumes exactly. Multi-label
datasets (shapes) use the i-CLEVR rule: of the k objects in an image, how many are among
the top-k predicted labels. The training loop is in `classifier_train.py` (torch).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import knob
from .base import ExperimentKind, Runtime, Score, labelled_dataset


@dataclass
class ClassifierConfig(Runtime):
    dataset: str = knob("digits", "built-in labelled dataset (mnist, digits, mnist-m, shapes, faces) "
                        "or folder:PATH with one subfolder per class", check=labelled_dataset)
    image_size: int = knob(0, "side length images are resized to; 0 keeps the dataset's own", ge=0, le=512)
    batch_size: int = knob(64, "images per step", ge=1, le=65536)
    train_num_steps: int = knob(300, "optimizer steps", ge=1)
    lr: float = knob(1e-3, "AdamW learning rate", gt=0, le=1)
    weight_decay: float = knob(0.0, "AdamW weight decay", ge=0)
    width: int = knob(32, "channels of the first conv block (doubles at each downsampling)", ge=4, le=512)
    val_fraction: float = knob(0.1, "share of the data held out for accuracy", gt=0, lt=1)
    eval_every: int = knob(100, "steps between held-out evaluations", ge=1)
    checkpoint_every: int = knob(100, "steps between checkpoints", ge=1)


KIND = ExperimentKind(
    name="classifier",
    config=ClassifierConfig,
    entry="tuigen.experiments.classifier_train:train",
    summary="a small CNN on a labelled dataset: loss and held-out accuracy (also the evaluator for conditional runs)",
    scores=(Score("val_acc", higher_is_better=True, label="accuracy"),),
    data_parallel=True,
    demo=({"dataset": "digits", "train_num_steps": 300, "eval_every": 50},
          {"dataset": "mnist", "image_size": 16, "train_num_steps": 400, "eval_every": 50},
          {"dataset": "shapes", "image_size": 16, "train_num_steps": 300, "eval_every": 50}),
)
