"""Scatter plots to PNG (matplotlib, Agg canvas, no pyplot and no global backend switch).

matplotlib is imported inside the functions: `tuigen.viz` stays light for the CLI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_write

MARKERS = ("o", "x", "^", "s", "+", "D")


def scatter_plot(xy: np.ndarray, groups: Sequence[int], names: Sequence[str], path: str | Path, *,
                 title: str = "", markers: Sequence[int] | None = None, marker_names: Sequence[str] | None = None,
                 size: float = 6.0, dpi: int = 120) -> Path:
    """Points (N, 2) coloured by integer `groups` (legend labels `names[g]`); optionally with a
    second grouping shown as marker shapes (`markers`, legend labels `marker_names`).
    Writes a PNG atomically (temp file, then rename) and returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    xy = np.asarray(xy, dtype=np.float64)
    groups = np.asarray(groups).astype(int)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(groups):
        raise ValueError(f"scatter_plot expects (N, 2) points and N groups, got {xy.shape} and {len(groups)}")
    marks = np.zeros(len(xy), int) if markers is None else np.asarray(markers).astype(int)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    fig = Figure(figsize=(size, size))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    palette = _palette(len(names))
    for g in range(len(names)):
        for m in np.unique(marks):
            sel = (groups == g) & (marks == m)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=10, color=palette[g], marker=MARKERS[m % len(MARKERS)],
                           alpha=0.75, linewidths=0.8)
    handles = [Line2D([], [], linestyle="", marker="o", color=palette[g], label=str(names[g]))
               for g in range(len(names)) if (groups == g).any()]
    if markers is not None and marker_names:
        handles += [Line2D([], [], linestyle="", marker=MARKERS[m % len(MARKERS)], color="0.3",
                           label=str(marker_names[m])) for m in range(len(marker_names)) if (marks == m).any()]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format="png", bbox_inches="tight")
    return path


def _palette(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    if n <= 20:
        return [cmap(i % cmap.N) for i in range(n)]
    return [colormaps["hsv"](i / n) for i in range(n)]
