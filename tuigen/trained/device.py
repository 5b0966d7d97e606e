"""Which torch device a run or a sampling command uses, and the switches that make it fast."""
from __future__ import annotations

from ..errors import InputError


class DeviceError(InputError):
    """A device that is not there: one line naming --device."""


def pick_device(spec: str = "auto"):
    """'auto' takes the GPU the launcher assigned (CUDA_VISIBLE_DEVICES) if any, else the CPU."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {spec} was asked for, but no CUDA GPU is visible to this process")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"--device {spec}: this process sees {torch.cuda.device_count()} GPU(s)")
    return dev


def tune_for(device) -> None:
    """The switches that are safe for every run on a GPU: cuDNN picks its fastest kernels for
    the (fixed) shapes, and fp32 matmuls/convolutions use TF32 tensor cores (about 10 mantissa
    bits, what PyTorch itself defaults convolutions to). Nothing changes on the CPU."""
    import torch

    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
