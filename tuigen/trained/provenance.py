"""What makes two scores comparable: the sampler settings, the reference set, the extractor.

One builder per kind of score, used by `tuigen fid` / `tuigen accuracy` and by the periodic
FID inside training alike, so a board never ranks scores that were made differently and never
splits ones that were made the same way. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SamplerSettings:
    sampler: str = "ddim"  # ddim | ddpm (GANs ignore it)
    steps: int | None = 50
    eta: float = 0.0
    guidance: float = 0.0
    batch: int = 64
    seed: int = 0

    def provenance(self, timesteps: int) -> dict:
        return {"sampler": self.sampler, "steps": self.steps if self.sampler == "ddim" else timesteps,
                "eta": self.eta if self.sampler == "ddim" else 1.0, "guidance": self.guidance, "seed": self.seed}


def sampler_provenance(trained, settings: SamplerSettings) -> dict:
    """How the scored images were drawn: a GAN's single forward pass, or the diffusion sampler;
    with the seed, since the sample set is a function of it."""
    if trained.is_gan:
        return {"sampler": "gan", "guidance": 0.0, "seed": settings.seed}
    return settings.provenance(trained.diffusion.T)


def reference_identity(data) -> str:
    """A stable name for a dataset's images (an ImageDataset) in the FID stats cache and in score
    provenance: a built-in by name, a folder by its content fingerprint (never its path), so an
    edited folder is a new reference and a copied one the same."""
    from ..data.cache import DATA_VERSION

    n, c, size, _ = data.images.shape
    return f"dataset:{data.source}/size{size}/ch{c}/n{n}/data-v{DATA_VERSION}"


def reference_subset(data, n: int):
    """n of a dataset's images spread over all of it (every k-th, so every class is in it), and the
    identity of that subset; the whole dataset when n is 0 or not smaller than it."""
    if not n or n >= len(data.images):
        return data.images, reference_identity(data)
    k = len(data.images) // n
    return data.images[::k][:n], f"{reference_identity(data)}/every{k}-first{n}"


def fid_provenance(result, reference: str, sampler: dict, weights: str) -> dict:
    """What must match for two FIDs (or KIDs) to be ranked together (not the checkpoint step)."""
    p = result.provenance
    return {"n": result.n_a, "reference": reference, "reference_n": result.n_b, "fid_mode": p["fid_mode"],
            "extractor": p["extractor"], "input_scaling": p["input_scaling"], "fid_method": p["fid_method"],
            "kid": f"{p['kid']['subsets']}x{p['kid']['subset_size']}", "weights": weights, **sampler}


def fid_scores(result) -> list[tuple[str, float, float | None]]:
    """The (metric, value, std) rows an FID comparison stores: FID and KID, one provenance."""
    return [("fid", result.fid, None), ("kid", result.kid_mean, result.kid_std)]


def accuracy_provenance(n: int, labels: str, evaluator, weights: str, sampler: dict) -> dict:
    return {"n": n, "labels": labels, "evaluator": evaluator.identity,
            "evaluator_held_out_accuracy": round(evaluator.held_out_accuracy, 4), "weights": weights, **sampler}


def held_out_provenance(data, *, val_fraction: float, split_seed: int, n: int, **extra) -> dict:
    """What makes two held-out accuracies comparable: the data by content (a folder's fingerprint,
    never its path), its size, and the split (fraction, seed, count)."""
    from ..data.cache import DATA_VERSION

    return {"dataset": data.source, "image_size": data.image_size, "data_version": DATA_VERSION, "split": "held-out",
            "val_fraction": val_fraction, "split_seed": split_seed, "n": n, **extra}
