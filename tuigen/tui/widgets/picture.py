"""Pictures in any terminal: Kitty graphics or Sixel where the terminal supports them
(textual-image detects it, tmux passthrough included), else half-block Unicode colour that
works over plain SSH. TUIGEN_IMAGES=auto|kitty|sixel|halfcell|unicode forces one."""
from __future__ import annotations

import os

PROTOCOLS = ("auto", "kitty", "sixel", "halfcell", "unicode")


def picture_class(protocol: str | None = None):
    protocol = (protocol or os.environ.get("TUIGEN_IMAGES") or "auto").lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"TUIGEN_IMAGES must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    from textual_image import widget as w

    return {"auto": w.Image, "kitty": w.TGPImage, "sixel": w.SixelImage, "halfcell": w.HalfcellImage,
            "unicode": w.UnicodeImage}[protocol]
