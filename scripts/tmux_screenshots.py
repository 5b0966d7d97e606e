"""Screenshots from a real terminal: the TUI in tmux (half-block pictures, as over plain SSH),
driven by keys, each screen read back with `tmux capture-pane -p -e` and drawn cell by cell
to PNG (assets/screens/tmux-*.png).

    PYTHONPATH=$PWD .venv/bin/python scripts/tmux_screenshots.py

The example store: two ddpm runs that differ only in lr, with curves and sample grids made of
16 real MNIST digits each (28 px, so a grid is 122x122 px); no model is trained for them.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
OUT = ROOT / "assets" / "screens"
SIZE = (120, 36)
CELL_W, CELL_H = 9, 18  # px of one cell in the picture
FG, BG = (204, 204, 204), (24, 24, 24)  # the terminal's own colours (cells tmux reports as default)


def example_store(folder: Path):
    from PIL import Image

    from tuigen.data.builtin import load_mnist
    from tuigen.store import Store
    from tuigen.viz.images import image_grid

    digits = load_mnist().images.transpose(0, 2, 3, 1)  # N,H,W,C as image_grid takes them
    rng = np.random.default_rng(0)
    store = Store(f"sqlite:///{folder / 'runs.db'}")
    for name, lr in (("ddpm-lr1e-3", 1e-3), ("ddpm-lr2e-4", 2e-4)):
        cfg = {"dataset": "mnist", "image_size": 28, "lr": lr, "channels": 32, "train_num_steps": 1000}
        run = store.create_run("ddpm", json.dumps(cfg), name=name, dataset="mnist", total_steps=1000,
                               status="completed")
        store.update_run(run.id, started_at=1.79e9, ended_at=1.79e9 + 600, step=1000)
        loss = 0.08 + 0.9 * np.exp(-np.arange(1, 1001) / (150 if lr > 5e-4 else 300))
        store.log_metrics(run.id, [("loss", s, float(v * (1 + 0.05 * rng.standard_normal())), 1.79e9 + s)
                                   for s, v in zip(range(1, 1001), loss)])
        for step in (500, 1000):
            path = Path(run.run_dir) / "images" / f"samples-{step:07d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            grid = image_grid(digits[rng.choice(len(digits), 16, replace=False)], nrow=4)
            Image.fromarray(grid[..., 0]).save(path)
            store.add_artifact(run.id, "image", path, key="samples", step=step)
        store.add_score(run.id, "fid", 38.2 if lr > 5e-4 else 45.9, {"n": 32, "reference": "dataset:mnist/size28"},
                        step=1000)
    return store


def _font(family: str, size: int):
    from PIL import ImageFont

    try:  # Pillow looks in the system's font folders
        return ImageFont.truetype(family.replace(" ", "") + ".ttf", size)
    except OSError:
        from matplotlib import font_manager  # ships the DejaVu fonts

        return ImageFont.truetype(font_manager.findfont(family), size)


def _needs_sans(char: str) -> bool:
    """Braille (plot lines) and a few symbols are in DejaVu Sans, not its monospace cut."""
    return 0x2800 <= ord(char) <= 0x28FF or char == "\u2b58"


def to_png(rows, width: int, height: int, path: Path) -> None:
    """Cells drawn as the terminal draws them: background, half blocks as two colours, text."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width * CELL_W, height * CELL_H), BG)
    draw, mono, sans = ImageDraw.Draw(image), _font("DejaVu Sans Mono", CELL_H - 4), _font("DejaVu Sans", CELL_H - 4)
    for y, row in enumerate(rows[:height]):
        for x, c in enumerate(row[:width]):
            box = (x * CELL_W, y * CELL_H, (x + 1) * CELL_W - 1, (y + 1) * CELL_H - 1)
            draw.rectangle(box, fill=c.bg or BG)
            if c.char == "\u2580":  # upper half block: the top pixel's colour over the bottom's
                draw.rectangle((box[0], box[1], box[2], box[1] + CELL_H // 2 - 1), fill=c.fg or FG)
            elif c.char.strip():
                draw.text((box[0], box[1] + 1), c.char, fill=c.fg or FG, font=sans if _needs_sans(c.char) else mono)
    image.save(path)


def main() -> None:
    from tmux_screen import TmuxTUI

    folder = Path(tempfile.mkdtemp())
    os.environ["TUIGEN_DB"] = f"sqlite:///{folder / 'runs.db'}"
    example_store(folder).close()
    tui = TmuxTUI(folder, *SIZE)

    def shoot(name: str) -> None:
        time.sleep(0.8)  # the last frame drawn
        path = OUT / f"tmux-{name}.png"
        to_png(tui.cells(), *SIZE, path)
        print(f"wrote {path}")

    try:
        tui.wait_text(r"ddpm-lr2e-4 .*FID")
        shoot("runs")
        tui.keys("Enter")
        tui.wait_text(r"Artifacts")
        tui.keys("6")
        tui.wait_text(r"\(2/2;")
        shoot("artifacts")
        tui.keys("Escape")
        tui.wait_text(r"tuigen — 2 runs")
        tui.keys("Space", "Down", "Space", "v")
        tui.wait_text(r"sample grids at step 1000")
        shoot("compare")
        tui.keys("q")
    finally:
        tui.close()


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    main()
