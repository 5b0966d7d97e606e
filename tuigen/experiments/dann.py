"""`dann`: unsupervised domain adaptation with a gradient reversal layer
(Ganin & Lempitsky 2015, "Unsupervised Domain Adaptation by Backpropagation";
Ganin et al. 2016, JMLR, "Domain-Adversarial Training of Neural Networks").

One network (features G_f, label predictor G_y, domain classifier G_d behind the GRL) in
three modes, which are the three rows of the report's table:

- `source-only`: G_f + G_y on labelled source images (the lower bound);
- `dann`: the same, plus G_d trained to tell source (0) from target (1) on the UNLABELLED
  target training split, through the GRL with lambda_p = 2/(1+exp(-gamma p)) - 1;
- `target-only`: G_f + G_y on labelled target images (the upper bound).

Target accuracy is always measured on the held-out target split. Scenarios: mnist -> mnist-m,
mnist -> digits, or any two labelled folders with the same class names. Every image is
resized to `image_size` and made 3-channel, so one network serves both domains.

The training function lives in `dann_train.py` (torch); this module stays torch-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import knob
from ..data.catalog import BUILTIN, FOLDER_PREFIX, folder_path, has_image
from .base import ExperimentKind, Runtime, Score, labelled_dataset

MODES = ("source-only", "dann", "target-only")
OPTIMIZERS = ("sgd", "adam")
SGD_MOMENTUM = 0.9  # the paper's
ANNEAL_ALPHA, ANNEAL_BETA = 10.0, 0.75  # mu_p = mu_0 / (1 + alpha p)^beta, the paper's constants

def scenario_name(source: str, target: str) -> str:
    """How a (source, target) pair is shown: 'MNIST -> MNIST-M', 'folder:a -> folder:b'."""
    def show(spec: str) -> str:
        return spec if spec.startswith(FOLDER_PREFIX) else spec.upper()
    return f"{show(source)} -> {show(target)}"


@dataclass
class DANNConfig(Runtime):
    source: str = knob("mnist", "labelled source domain: mnist, digits, mnist-m, faces or folder:PATH with one "
                       "subfolder per class", check=labelled_dataset, group="data")
    target: str = knob("mnist-m", "target domain (its labels are used only by --mode target-only and for the "
                       "held-out accuracy); same class names as the source", check=labelled_dataset, group="data")
    mode: str = knob("dann", "source-only (lower bound), dann (adaptation through the gradient reversal layer) "
                     "or target-only (upper bound)", choices=MODES, group="training")
    image_size: int = knob(28, "side length both domains are resized to (all images become 3-channel)",
                           ge=8, le=256, group="data")
    val_fraction: float = knob(0.2, "share of each domain held out; target_acc is measured on the target's",
                               gt=0, lt=1, group="data")
    batch_size: int = knob(64, "images per step and per domain (dann: this many source plus this many target)",
                           ge=2, le=65536, group="training")
    epochs: int = knob(10, "epochs; an epoch is one pass over the larger of the two training splits",
                       ge=1, group="training")
    steps_per_epoch: int = knob(0, "optimizer steps per epoch; 0 = ceil(larger training split / batch_size)",
                                ge=0, group="training")
    optimizer: str = knob("sgd", f"sgd (momentum {SGD_MOMENTUM}, as in the paper) or adam (AdamW)",
                          choices=OPTIMIZERS, group="training")
    lr: float = knob(0.01, "initial learning rate mu_0", gt=0, le=1, group="training")
    lr_anneal: bool = knob(True, f"anneal the lr as mu_p = mu_0 / (1 + {ANNEAL_ALPHA:g} p)^{ANNEAL_BETA:g}, "
                           "p = training progress in [0, 1]", group="training")
    weight_decay: float = knob(0.0, "weight decay (sgd: L2 in the gradient; adam: AdamW's decoupled decay)",
                               ge=0, group="training")
    gamma: float = knob(10.0, "GRL schedule: lambda_p = 2 / (1 + exp(-gamma p)) - 1", ge=0, group="adaptation")
    lambda_max: float = knob(1.0, "scale of lambda_p (the domain loss weight reached at the end)",
                             ge=0, group="adaptation")
    width: int = knob(32, "channels of G_f's first conv (the second has 1.5x; 32 and 48 in the paper)",
                      ge=2, le=512, group="model")
    dropout: float = knob(0.1, "dropout in G_f and G_y", ge=0, lt=1, group="model")
    tsne_points: int = knob(500, "held-out images per domain in the final t-SNE plots (0 = no t-SNE)",
                            ge=0, le=10000, group="outputs")
    checkpoint_every: int = knob(1, "epochs between checkpoints (a stop request always checkpoints)",
                                 ge=1, group="outputs")

    def __post_init__(self) -> None:
        # Store folder paths absolute: the worker may start in another working folder.
        for name in ("source", "target"):
            spec = getattr(self, name)
            if isinstance(spec, str) and spec.startswith(FOLDER_PREFIX) and folder_path(spec):
                setattr(self, name, FOLDER_PREFIX + os.path.abspath(folder_path(spec)))

    @property
    def scenario(self) -> str:
        return scenario_name(self.source, self.target)

    def validate(self) -> str | None:
        if self.source == self.target:
            return (f"--source and --target are both {self.source!r}; domain adaptation needs two different "
                    "domains (e.g. --source mnist --target mnist-m)")
        names = []
        for flag, spec in (("--source", self.source), ("--target", self.target)):
            try:
                names.append(cheap_class_names(spec))
            except ValueError as e:
                return f"{flag} {spec}: {e}"
        a, b = names
        if a is not None and b is not None and a != b:
            return class_mismatch_message(self.source, a, self.target, b)
        return None


def class_mismatch_message(source: str, a: list[str], target: str, b: list[str]) -> str:
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    detail = "; ".join(x for x in (f"only in the source: {', '.join(only_a)}" if only_a else "",
                                   f"only in the target: {', '.join(only_b)}" if only_b else "") if x)
    return (f"--source {source} and --target {target} have different classes "
            f"({len(a)} vs {len(b)}{'; ' + detail if detail else ''}); dann needs the same class names in both domains")


_DIGITS = [str(d) for d in range(10)]
_BUILTIN_CLASSES = {"mnist": _DIGITS, "digits": _DIGITS, "mnist-m": _DIGITS, "faces": ["non-face", "face"]}


def cheap_class_names(spec: str) -> list[str] | None:
    """Class names known without loading any image (standard library only, so the CLI stays fast):
    the built-ins' names, or a folder's subfolders that hold at least one image.
    None when unknown; ValueError for a dataset dann cannot use."""
    if spec.startswith(FOLDER_PREFIX):
        root = folder_path(spec)
        try:
            with os.scandir(root) as entries:
                subdirs = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return None  # the dataset rule reports missing folders
        names = [d for d in subdirs if has_image(os.path.join(root, d))]
        if not names:
            raise ValueError("no class subfolders with images; dann needs one subfolder per class")
        return names
    if spec in BUILTIN and BUILTIN[spec].labels != "class":
        what = "its labels are multi-hot" if BUILTIN[spec].labels == "multi" else "it has no labels"
        raise ValueError(f"{what}, but dann needs one class label per image")
    return _BUILTIN_CLASSES.get(spec)


KIND = ExperimentKind(
    name="dann",
    config=DANNConfig,
    entry="tuigen.experiments.dann_train:train",
    summary="domain adaptation (DANN): source-only, dann (gradient reversal) or target-only; "
            "target accuracy and t-SNE of the features",
    # each epoch's held-out accuracies: the target's (the table's number) and the source's (the
    # validation accuracy a label-free model selection may use)
    scores=(Score("target_acc", higher_is_better=True, label="target accuracy"),
            Score("source_acc", higher_is_better=True, label="source validation accuracy")),
    demo=({"source": "mnist", "target": "mnist-m", "mode": "dann", "image_size": 16, "epochs": 2, "width": 16,
           "tsne_points": 200},),
    progress_metric="loss",
)
