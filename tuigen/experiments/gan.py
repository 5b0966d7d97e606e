"""`dcgan`, `cgan` and `stylegan`: adversarial training with the knobs researchers already use.

- dcgan: the "4-2-1" DCGAN (Radford et al. 2016), BCE (non-saturating) or hinge loss, Adam
  with beta1 0.5.
- cgan: the same with a label (class index or multi-hot vector) embedded and concatenated
  with z in G, and given to D by concatenation or a projection discriminator.
- stylegan: a compact StyleGAN2 (mapping network, modulated convs, noise, skip ToRGBs,
  residual D), lazy R1, style-mixing regularisation and an EMA generator.

Configs only; the training loop is in `gan_train.py` (torch), imported in the worker only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config import knob
from .base import ACCURACY, FID, KID, ExperimentKind, Runtime, any_dataset, labelled_dataset

LOSSES = ("bce", "hinge")
D_COND = ("concat", "projection")


def gan_image_size(v: int) -> str | None:
    """The generators double a 4x4 (or 7x7) start, so the side must be 8 x 2^k or 28."""
    k = v // 8
    if v == 28 or (v % 8 == 0 and k >= 1 and k & (k - 1) == 0):
        return None
    return f"expected 8 x 2^k (8, 16, 32, 64, 128, 256) or 28, got {v}"


@dataclass
class DCGANConfig(Runtime):
    family: ClassVar[str] = "dcgan"
    conditional: ClassVar[bool] = False

    dataset: str = knob("mnist", "built-in dataset (mnist, digits, mnist-m, shapes, faces) or folder:PATH",
                        check=any_dataset, group="data")
    image_size: int = knob(64, "side length images are resized to: 8 x 2^k (8, 16, 32, 64, ...) or 28",
                           ge=8, le=256, check=gan_image_size, group="data")
    hflip: bool = knob(False, "random horizontal flips of real images (on for faces and cats, off for digits)",
                       group="data")
    batch_size: int = knob(32, "real (and fake) images per step", ge=2, le=4096, group="training")
    train_num_steps: int = knob(10000, "generator steps", ge=1, group="training")
    lr: float = knob(2e-4, "Adam learning rate of G and D", gt=0, le=1, group="training")
    beta1: float = knob(0.5, "Adam beta1 (0.5 in DCGAN; 0.9 makes training oscillate)", ge=0, lt=1, group="training")
    beta2: float = knob(0.999, "Adam beta2", ge=0, lt=1, group="training")
    loss: str = knob("bce", "bce: non-saturating BCE-with-logits (the Sigmoid is inside the loss); "
                     "hinge: max(0, 1 - D(x)) + max(0, 1 + D(G(z))), G minimises -D(G(z))",
                     choices=LOSSES, group="training")
    d_steps: int = knob(1, "discriminator steps per generator step", ge=1, le=100, group="training")
    latent_dim: int = knob(100, "size of z", ge=1, le=4096, group="model")
    g_width: int = knob(64, "generator channels at full resolution (x2 per halving, up to x8)", ge=1, le=1024,
                        group="model")
    d_width: int = knob(64, "discriminator channels at full resolution (x2 per halving, up to x8)", ge=1, le=1024,
                        group="model")
    sample_every: int = knob(500, "steps between fixed-noise sample grids and mode-collapse checks", ge=1,
                             group="outputs")
    num_samples: int = knob(64, "images in each sample grid (cgan: a row per class)", ge=2, le=256, group="outputs")
    checkpoint_every: int = knob(1000, "steps between checkpoints", ge=1, group="outputs")
    log_every: int = knob(10, "steps between logged loss averages", ge=1, group="outputs")
    collapse_ratio: float = knob(0.3, "warn of mode collapse when fakes' mean pairwise distance falls below this "
                                 "fraction of reals' (0 = never)", ge=0, le=1, group="outputs")
    collapse_after: int = knob(1000, "first step of the mode-collapse check (a fresh generator's samples are all "
                               "alike; the ratio is logged from the start)", ge=0, group="outputs")


@dataclass
class CGANConfig(DCGANConfig):
    conditional: ClassVar[bool] = True

    dataset: str = knob("mnist", "labelled dataset: class labels (mnist, digits, mnist-m, faces, folder:PATH "
                        "with class subfolders) or multi-hot labels (shapes)", check=labelled_dataset, group="data")
    embed_dim: int = knob(64, "size of the label embedding concatenated with z in G", ge=1, le=4096,
                          group="conditioning")
    d_cond: str = knob("concat", "how D sees the label: concat (an embedded label map as an extra input "
                       "channel) or projection (Miyato & Koyama 2018: + <V y, phi(x)>)", choices=D_COND,
                       group="conditioning")


@dataclass
class StyleGANConfig(DCGANConfig):
    family: ClassVar[str] = "stylegan"

    lr: float = knob(2.5e-3, "Adam learning rate of G and D (StyleGAN2: 0.0025)", gt=0, le=1, group="training")
    beta1: float = knob(0.0, "Adam beta1 (StyleGAN2: 0)", ge=0, lt=1, group="training")
    beta2: float = knob(0.99, "Adam beta2 (StyleGAN2: 0.99)", ge=0, lt=1, group="training")
    latent_dim: int = knob(256, "size of z (StyleGAN2: 512; 256 keeps CPU runs quick)", ge=1, le=4096,
                           group="model")
    w_dim: int = knob(256, "size of w, the intermediate latent (StyleGAN2: 512)", ge=1, le=4096, group="model")
    mapping_layers: int = knob(8, "fully connected layers in the mapping network z -> w (StyleGAN: 8)", ge=1,
                               le=16, group="model")
    g_width: int = knob(32, "generator channels at full resolution (x2 per halving, up to x8)", ge=1, le=1024,
                        group="model")
    d_width: int = knob(32, "discriminator channels at full resolution (x2 per halving, up to x8)", ge=1, le=1024,
                        group="model")
    mbstd: bool = knob(True, "minibatch standard deviation layer at the end of D", group="model")
    r1_gamma: float = knob(10.0, "R1 weight gamma: gamma/2 E||grad D(x)||^2 on reals (StyleGAN2-ADA's "
                           "heuristic 0.0002 x image_size^2 / batch_size suggests ~0.03 at 64 px)", ge=0,
                           group="regularisation")
    r1_every: int = knob(16, "lazy R1: apply it every this many steps, scaled up to match (StyleGAN2 sec. 3.1)",
                         ge=1, group="regularisation")
    mixing_prob: float = knob(0.9, "probability of style-mixing regularisation in a step", ge=0, le=1,
                              group="regularisation")
    ema_decay: float = knob(0.999, "EMA decay of the generator copy used for samples_ema and sampling", ge=0, lt=1,
                            group="regularisation")
    truncation: float = knob(1.0, "truncation psi for the sample grids (1 = none; 0 = the mean image)", ge=0, le=2,
                             group="outputs")


_TINY = {"dataset": "digits", "image_size": 16, "batch_size": 32, "train_num_steps": 300, "sample_every": 100,
         "checkpoint_every": 100, "num_samples": 16}

DCGAN = ExperimentKind(
    name="dcgan",
    config=DCGANConfig,
    entry="tuigen.experiments.gan_train:train",
    summary="DCGAN: the 4-2-1 convolutional GAN, BCE or hinge loss, fixed-noise sample grids",
    trained="gan",
    scores=(FID, KID),
    demo=({**_TINY, "latent_dim": 32, "g_width": 16, "d_width": 16},),
    progress_metric="d_loss",
)

CGAN = ExperimentKind(
    name="cgan",
    config=CGANConfig,
    entry="tuigen.experiments.gan_train:train",
    summary="conditional DCGAN: class or multi-hot labels in G and D (concat or projection)",
    trained="gan",
    scores=(ACCURACY, FID, KID),
    demo=({**_TINY, "latent_dim": 32, "g_width": 16, "d_width": 16, "num_samples": 20},),
    progress_metric="d_loss",
)

STYLEGAN = ExperimentKind(
    name="stylegan",
    config=StyleGANConfig,
    entry="tuigen.experiments.gan_train:train",
    summary="compact StyleGAN2: mapping network, modulated convs, lazy R1, style mixing, EMA generator",
    trained="gan",
    scores=(FID, KID),
    demo=({**_TINY, "latent_dim": 64, "w_dim": 64, "mapping_layers": 4, "g_width": 16, "d_width": 16},),
    progress_metric="d_loss",
)
