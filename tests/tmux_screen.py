"""The TUI in a real terminal (tmux), driven by keys and read back from `capture-pane`, as a
person sees it: text lines, and each cell's colours for reading pictures."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass

SGR = re.compile(r"\x1b\[([0-9;]*)m")


@dataclass
class Cell:
    char: str
    fg: tuple[int, int, int] | None
    bg: tuple[int, int, int] | None


def _apply_sgr(params: str, fg, bg):
    """The colours after one SGR sequence (24-bit colours only; the rest resets or is kept)."""
    codes = [int(c) if c else 0 for c in params.split(";")]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
            rgb = tuple(codes[i + 2:i + 5])
            fg, bg = (rgb, bg) if c == 38 else (fg, rgb)
            i += 5
            continue
        if c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
            i += 3
            continue
        if c == 0:
            fg = bg = None
        elif c == 39:
            fg = None
        elif c == 49:
            bg = None
        i += 1
    return fg, bg


def parse_cells(escaped: str) -> list[list[Cell]]:
    """`capture-pane -p -e` output as rows of cells with their 24-bit colours."""
    rows = []
    for line in escaped.split("\n"):
        fg = bg = None  # tmux -e starts every line from the default colours
        row, pos = [], 0
        for m in SGR.finditer(line):
            row += [Cell(ch, fg, bg) for ch in line[pos:m.start()]]
            fg, bg = _apply_sgr(m.group(1), fg, bg)
            pos = m.end()
        row += [Cell(ch, fg, bg) for ch in line[pos:]]
        rows.append(row)
    return rows


class TmuxTUI:
    """`tuigen` in a detached tmux session of a given size, pictures forced to half-blocks."""

    def __init__(self, cwd, width: int, height: int, images: str = "halfcell"):
        self.session = f"tuigen-{os.getpid()}-{time.monotonic_ns()}"
        env = {"TUIGEN_DB": os.environ["TUIGEN_DB"], "TUIGEN_IMAGES": images, "TERM": "xterm-256color",
               "COLORTERM": "truecolor", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd = f"cd {shlex.quote(str(cwd))} && {exports} exec {shlex.quote(sys.executable)} -m tuigen"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), cmd],
                       check=True)

    def text(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True,
                              text=True).stdout

    def cells(self) -> list[list[Cell]]:
        return parse_cells(subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", self.session],
                                          capture_output=True, text=True).stdout)

    def keys(self, *keys: str) -> None:
        for k in keys:  # one at a time, as typed: a burst can arrive as one escape sequence
            subprocess.run(["tmux", "send-keys", "-t", self.session, k], check=True)
            time.sleep(0.05)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(["tmux", "resize-window", "-t", self.session, "-x", str(width), "-y", str(height)], check=True)

    def wait_for(self, predicate, what: str, timeout: float = 30.0):
        """Poll the screen until predicate(text) is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            value = predicate(screen)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; last screen:\n{screen}")
            time.sleep(0.2)

    def wait_text(self, pattern: str, timeout: float = 30.0) -> str:
        return self.wait_for(lambda s: s if re.search(pattern, s, re.M) else None, repr(pattern), timeout)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.session], capture_output=True).returncode == 0

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)
