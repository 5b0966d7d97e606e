"""The TUI as a person uses it over SSH: a real terminal (tmux) with half-block pictures, keys
only, and what is on screen read back from `capture-pane` (pictures cell by cell, colours
included), at 80x24 and 120x36."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tmux_screen import TmuxTUI

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

RED, BLUE = (255, 0, 0), (0, 0, 255)
T0 = 1_790_000_000.0


def _grid(run_dir: str, step: int) -> Path:
    """A 42x42 px grid, left half red and right half blue: crisp edges show the scaling filter."""
    pixels = np.zeros((42, 42, 3), np.uint8)
    pixels[:, :21], pixels[:, 21:] = RED, BLUE
    path = Path(run_dir) / "images" / f"samples-{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _ddpm(store, name: str, lr: float, steps=(10, 20, 30)) -> int:
    """A finished ddpm run with curves, a config, a log, an event and one 42 px grid per step."""
    cfg = {"dataset": "mnist", "image_size": 16, "lr": lr, "train_num_steps": 30}
    run = store.create_run("ddpm", json.dumps(cfg), name=name, dataset="mnist", total_steps=30, status="completed")
    store.update_run(run.id, started_at=T0, ended_at=T0 + 30, step=30)
    store.log_metrics(run.id, [(k, s, v / s, T0 + s) for s in range(1, 31) for k, v in (("loss", 1.0), ("lr", lr))])
    for step in steps:
        store.add_artifact(run.id, "image", _grid(run.run_dir, step), key="samples", step=step)
    store.add_event(run.id, "possible mode collapse: diversity ratio 0.1", "warning")
    Path(run.run_dir, "output.log").write_text("tuigen worker: run started\nstep=30 loss=0.05\n")
    store.add_score(run.id, "fid", 40.0 + lr * 1000, {"n": 32, "reference": "dataset:mnist/size16"}, step=30)
    return run.id


@pytest.fixture
def runs(store):
    """Newest first on screen: `grid42` (row 1), then two runs differing only in lr."""
    return {"lr-a": _ddpm(store, "lr-a", 1e-3), "lr-b": _ddpm(store, "lr-b", 2e-3),
            "grid42": _ddpm(store, "grid42", 5e-4)}


def picture_box(tui: TmuxTUI, top: int = 0) -> tuple[int, int, int, int] | None:
    """(left, top, width, height) in cells of the red/blue picture on screen (rows from `top`)."""
    hits = [(x, y) for y, row in enumerate(tui.cells()) if y >= top for x, c in enumerate(row)
            if c.char == "\u2580" and {c.fg, c.bg} <= {RED, BLUE}]
    if not hits:
        return None
    xs, ys = [x for x, _ in hits], [y for _, y in hits]
    return min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1


def blended_cells(tui: TmuxTUI, box) -> int:
    """Cells inside `box` that are neither pure red nor pure blue (a smoothing filter's edge)."""
    left, top, w, h = box
    rows = tui.cells()[top:top + h]
    return sum(1 for row in rows for c in row[left:left + w] if not {c.fg, c.bg} <= {RED, BLUE})


def artifacts_pane(screen: str) -> tuple[int, int] | None:
    """(first row, rows) of the Artifacts tab's picture pane: below the 3-row image bar (its
    label reads 'step N  (i/n; ...'), above the checkpoints line. None while not drawn."""
    lines = screen.splitlines()
    bar = next((i for i, line in enumerate(lines) if re.search(r"step \d+\s+\(\d+/\d+;", line)), None)
    ckpt = next((i for i, line in enumerate(lines) if line.startswith("checkpoints:")), None)
    return (bar + 3, ckpt - bar - 3) if bar is not None and ckpt is not None else None


def fitted_picture(tui: TmuxTUI, width: int):
    """The picture's box once it fills the Artifacts pane of a `width`-column screen, or None."""
    screen = tui.text()
    pane = artifacts_pane(screen)
    if pane is None or max(map(len, screen.splitlines())) > width:
        return None  # mid-redraw (tmux reflows the old frame on a resize)
    box = picture_box(tui, pane[0])
    return box if box and box[3] == pane[1] and box[2] == 2 * pane[1] else None


def wait_picture(tui: TmuxTUI, what: str, predicate, top: int = 0):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        box = picture_box(tui, top)
        if box and predicate(box):
            return box
        time.sleep(0.2)
    raise AssertionError(f"picture never {what}: last box {picture_box(tui, top)}; screen:\n{tui.text()}")


def quit_app(tui: TmuxTUI) -> None:
    tui.keys("q")
    deadline = time.monotonic() + 15
    while tui.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tui.alive(), f"q did not quit; screen:\n{tui.text()}"


def test_a_42px_grid_fills_its_pane_in_half_blocks_and_z_draws_it_1_to_1(tmp_path, runs):
    tui = TmuxTUI(tmp_path, 120, 36)
    try:
        tui.wait_text(r"grid42")
        tui.keys("Enter")
        tui.wait_text(r"Artifacts")
        tui.keys("6")
        tui.wait_text(r"\(3/3;")  # follows to the newest of the run's three grids
        # fitted: all the pane's rows, twice as many columns (a square image in half-blocks)
        box = tui.wait_for(lambda s: fitted_picture(tui, 120), "the picture filling its pane")
        top, rows = artifacts_pane(tui.text())
        assert box[3] >= 0.6 * rows and rows >= 20, f"picture {box} in a pane of {rows} rows"
        assert blended_cells(tui, box) == 0, "enlarged nearest-neighbour: no blended cells"
        tui.keys("z")  # 1:1: one image pixel per half-block dot
        wait_picture(tui, "drawn 1:1", lambda b: (b[2], b[3]) == (42, 21), top)
        tui.keys("z")
        wait_picture(tui, "fitted again", lambda b: b == box, top)
        tui.resize(80, 24)  # redrawn to the new, smaller pane
        small = tui.wait_for(lambda s: fitted_picture(tui, 80), "the picture refitted at 80x24")
        assert small[3] < box[3]
        quit_app(tui)
    finally:
        tui.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_every_screen_by_its_key(tmp_path, runs, size):
    width, height = size
    tui = TmuxTUI(tmp_path, width, height)
    try:
        tui.wait_text(r"grid42 .*FID 40\.5")  # each run's stored score by the board's rule, with its metric
        tui.keys("Enter")  # the cursor starts on the newest run
        tui.wait_text(r"run \d+ grid42")
        for key, shows, gone in (("2", r"lr\s+0\.0005", None), ("3", r"no system samples", None),
                                 ("4", r"step=30 loss=0\.05", None), ("5", r"possible mode collapse", None),
                                 ("1", r"loss", "step=30"), ("6", r"\(3/3;", None)):
            tui.keys(key)  # each tab by its number, its own content on screen
            tui.wait_for(lambda s: re.search(shows, s) and not (gone and gone in s), f"tab {key}: {shows}")
        tui.wait_for(lambda s: fitted_picture(tui, width), "the picture filling its pane")
        runs_list = r"tuigen — 3 runs"  # the runs screen's title
        tui.keys("Escape")
        tui.wait_text(runs_list)
        tui.keys("b")  # the leaderboard ranks the three scored runs
        tui.wait_text(r"grid42[\s\S]*lr-a[\s\S]*lr-b[\s\S]*esc Back")
        tui.keys("Escape")
        tui.wait_text(runs_list)
        tui.keys("y")
        tui.wait_text(r"CPU[\s\S]*esc Back")
        tui.keys("Escape")
        tui.wait_text(runs_list)
        tui.keys("Down", "Space", "Down", "Space", "v")  # lr-b and lr-a: only lr differs
        # all at once: the diff's lr row, a curve's title, the grids
        screen = tui.wait_for(lambda s: re.search(r"lr\s+0\.001\s+0\.002", s) and "loss" in s
                              and "sample grids at step 30" in s and s, "the lr diff, curves and grids")
        grids_top = next(i for i, line in enumerate(screen.splitlines()) if "sample grids at step 30" in line)
        wait_picture(tui, "shown for both runs", lambda b: b[2] > width // 2, grids_top)  # two side by side
        tui.keys("Tab")  # moves focus, opens nothing
        time.sleep(0.5)
        assert "tuigen keys" not in tui.text() and "sample grids at step 30" in tui.text()
        tui.keys("?")
        tui.wait_text(r"tuigen keys")
        tui.keys("Escape")
        tui.wait_for(lambda s: "tuigen keys" not in s, "help closed")
        tui.keys("Escape")
        tui.wait_text(r"grid42")
        quit_app(tui)
    finally:
        tui.close()
