"""The FID definitions tuigen can compute, by name (torch-free: the CLI offers them as choices)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FIDMode:
    """One definition of FID's features: the input scaling and which image sizes it takes."""

    name: str
    scaling: str
    any_size: bool  # False: images must already be INPUT_SIZE x INPUT_SIZE
    definition: str


FID_MODES: dict[str, FIDMode] = {
    "pytorch-fid": FIDMode("pytorch-fid", "pytorch-fid", True,
                           "as pytorch-fid: bilinear resize to 299 (align_corners=False), x/127.5 - 1"),
    "tf299": FIDMode("tf299", "tf", False, "as the TF original (TTUR) on 299x299 inputs: x/128 - 1, no resize"),
}
DEFAULT_MODE = "pytorch-fid"


def get_mode(mode: str) -> FIDMode:
    try:
        return FID_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown FID mode {mode!r}; expected one of {', '.join(FID_MODES)}") from None


from ..models.choices import DEFAULT_FID_METHOD as DEFAULT_METHOD, FID_METHODS  # noqa: E402,F401 - declared once, torch-free (re-exported)
