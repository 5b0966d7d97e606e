"""Which torch device a run or a sampling command uses."""
from __future__ import annotations


def pick_device(spec: str = "auto"):
    """'auto' takes the GPU the launcher assigned (CUDA_VISIBLE_DEVICES) if any, else the CPU."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {spec} was asked for, but no CUDA GPU is visible to this process")
    return dev
