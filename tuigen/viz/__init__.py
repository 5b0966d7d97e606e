"""Pictures to PNG: image grids now; strips and plots join as kinds need them."""
from .images import image_grid, save_png, to_uint8

__all__ = ["image_grid", "save_png", "to_uint8"]
