"""`ddpm` and `cond-ddpm`: train a UNet denoiser with the knobs researchers already use.

Unconditional on any dataset; conditional on class labels (mnist, digits, ...) or
multi-hot labels (shapes), with the label dropped with probability p_uncond so the same
network also learns the unconditional score for classifier-free guidance.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import knob
from ..models.choices import DEFAULT_FID_METHOD, FID_METHODS, OBJECTIVES, SCHEDULES
from .base import ACCURACY, FID, KID, ExperimentKind, Runtime, any_dataset, labelled_dataset


@dataclass
class DDPMConfig(Runtime):
    dataset: str = knob("mnist", "built-in dataset (mnist, digits, mnist-m, shapes, faces) or folder:PATH",
                        check=any_dataset, group="data")
    image_size: int = knob(32, "side length images are resized to", ge=8, le=256, group="data")
    hflip: bool = knob(False, "random horizontal flips (on for faces and cats, off for digits)", group="data")
    batch_size: int = knob(32, "images per micro-batch", ge=1, le=4096, group="training")
    grad_steps: int = knob(1, "gradient accumulation: effective batch = batch_size x grad_steps", ge=1, group="training")
    train_num_steps: int = knob(10000, "optimizer steps", ge=1, group="training")
    lr: float = knob(1e-4, "AdamW learning rate", gt=0, le=1, group="training")
    weight_decay: float = knob(0.0, "AdamW weight decay", ge=0, group="training")
    max_grad_norm: float = knob(1.0, "clip the gradient norm to this (0 = no clipping)", ge=0, group="training")
    ema_decay: float = knob(0.995, "EMA decay of the weights used for sampling", ge=0, lt=1, group="training")
    ema_every: int = knob(10, "steps between EMA updates", ge=1, group="training")
    channels: int = knob(64, "width of the first UNet level", ge=4, le=1024, group="model")
    dim_mults: tuple[int, ...] = knob((1, 2, 4, 8), "width multiplier per UNet level, e.g. 1,2,4", ge=1, le=16, group="model")
    num_res_blocks: int = knob(2, "residual blocks per UNet level", ge=1, le=8, group="model")
    attn_resolutions: tuple[int, ...] = knob((16,), "feature-map sizes that get self-attention, e.g. 16,8 ('' = none, not even in the middle)",
                                             ge=1, group="model")
    dropout: float = knob(0.0, "dropout in residual blocks", ge=0, lt=1, group="model")
    timesteps: int = knob(1000, "diffusion steps T", ge=10, le=10000, group="diffusion")
    beta_schedule: str = knob("linear", "noise schedule", choices=SCHEDULES, group="diffusion")
    objective: str = knob("pred_noise", "what the network predicts", choices=OBJECTIVES, group="diffusion")
    min_snr_gamma: float = knob(0.0, "Min-SNR loss weighting gamma (0 = off; 5 in the paper)", ge=0, group="diffusion")
    sample_every: int = knob(1000, "steps between sample grids from the EMA model", ge=1, group="outputs")
    num_samples: int = knob(16, "images in each sample grid", ge=1, le=256, group="outputs")
    sample_steps: int = knob(50, "DDIM steps for the grids (0 = full DDPM chain)", ge=0, group="outputs")
    checkpoint_every: int = knob(1000, "steps between checkpoints", ge=1, group="outputs")
    fid_every: int = knob(0, "steps between FIDs of fid_n EMA samples against the dataset (0 = off); "
                          "logged as the metric fid, so FID over training is a curve", ge=0, group="outputs")
    fid_n: int = knob(256, "samples per periodic FID (below 2048 the numbers are flagged as not comparable)",
                      ge=2, le=50000, group="outputs")
    fid_ref_n: int = knob(0, "real images the periodic FID compares with: every k-th of the dataset, this many "
                          "(0 = all of it); part of the reference's identity, so the board ranks it apart",
                          ge=0, le=1_000_000, group="outputs")
    fid_method: str = knob(DEFAULT_FID_METHOD, "the periodic FID's tr sqrt(S1 S2): eigh (symmetric eigendecompositions, "
                           "about 7x faster on a CPU) or pytorch-fid (scipy sqrtm); in the provenance, so the two "
                           "are ranked apart", choices=FID_METHODS, group="outputs")
    log_every: int = knob(10, "steps between logged loss averages", ge=1, group="outputs")

    def validate(self) -> str | None:
        halvings = len(self.dim_mults) - 1
        if self.image_size % (2 ** halvings):
            return (f"--image_size {self.image_size} does not divide by 2^{halvings} = {2 ** halvings} "
                    f"(--dim_mults {','.join(map(str, self.dim_mults))} halves the image {halvings} times); "
                    f"use a multiple of {2 ** halvings} or fewer dim_mults")
        return None


@dataclass
class CondDDPMConfig(DDPMConfig):
    dataset: str = knob("mnist", "labelled dataset: class labels (mnist, digits, mnist-m, faces, folder:PATH "
                        "with class subfolders) or multi-hot labels (shapes)", check=labelled_dataset, group="data")
    p_uncond: float = knob(0.1, "probability of dropping the label, to train the unconditional branch",
                           ge=0, lt=1, group="guidance")
    guidance_scale: float = knob(2.0, "w for the sample grids: eps = (1+w) eps_cond - w eps_uncond; 0 = unguided",
                                 ge=0, group="guidance")


DDPM = ExperimentKind(
    name="ddpm",
    config=DDPMConfig,
    entry="tuigen.experiments.diffusion_train:train",
    summary="unconditional denoising diffusion (DDPM) with a UNet; samples with DDPM or DDIM",
    data_parallel=True,
    trained="diffusion",
    scores=(FID, KID),
    demo=({"dataset": "mnist", "image_size": 16, "channels": 16, "dim_mults": (1, 2), "attn_resolutions": (),
           "timesteps": 200, "batch_size": 32, "lr": 1e-3, "train_num_steps": 300, "sample_every": 100,
           "sample_steps": 20, "checkpoint_every": 100},),
)

COND_DDPM = ExperimentKind(
    name="cond-ddpm",
    config=CondDDPMConfig,
    entry="tuigen.experiments.diffusion_train:train",
    summary="conditional DDPM (class or multi-hot labels) with classifier-free guidance",
    data_parallel=True,
    trained="diffusion",
    scores=(ACCURACY, FID, KID),
    demo=({"dataset": "mnist", "image_size": 16, "channels": 16, "dim_mults": (1, 2), "attn_resolutions": (),
           "timesteps": 200, "batch_size": 32, "lr": 1e-3, "train_num_steps": 300, "sample_every": 100,
           "sample_steps": 20, "checkpoint_every": 100},),
)
