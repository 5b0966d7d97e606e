"""Compare two or more runs: what differs in their configs, overlaid curves, and their
sample grids side by side at the same step."""
from __future__ import annotations

import json
from collections import defaultdict

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static
from textual_plotext import PlotextPlot

from ...reports.leaderboard import varying_params
from ...viz.images import UnreadableImage, read_image
from ..data import CURVE_POINTS
from ..delivery import deliver
from ..widgets.picture import Picture
from .run_detail import thin


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("z", "toggle_fit", "Fit/1:1")]

    def __init__(self, run_ids: list[int]):
        super().__init__()
        self.run_ids = run_ids
        self.fit = True

    def compose(self) -> ComposeResult:
        # Three panes that each stay on screen at 120x36: what differs and the curves side by
        # side on top, the grids below (curves scroll inside their own pane).
        yield Header()
        yield Static(f"comparing runs {', '.join(map(str, self.run_ids))}", id="compare-header")
        yield Label(f"loading runs {', '.join(map(str, self.run_ids))}: metrics, configs and grids...",
                    id="compare-loading")
        with Horizontal(id="compare-top"):
            with Vertical(id="diff-box"):
                yield Label("[b]config: only what differs[/b]")
                yield DataTable(id="diff", show_cursor=False)
            yield VerticalScroll(Grid(classes="plots", id="compare-plots"), id="compare-curves")
        with Vertical(id="grids-box"):
            yield Label("", id="grid-step")
            yield Horizontal(id="compare-images")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, group="compare")
    def load(self) -> None:
        store = self.app.store
        runs = [store.get_run(i) for i in self.run_ids]
        configs = [json.loads(r.config or "{}") for r in runs]
        series = {r.id: defaultdict(lambda: ([], [])) for r in runs}
        for r in runs:
            for p in store.metric_curves(r.id, CURVE_POINTS)[0]:
                xs, ys = series[r.id][p.key]
                xs.append(p.step)
                ys.append(p.value)
        grids = {r.id: {a.step: a.path for a in store.artifacts(r.id, kind="image", key="samples")} for r in runs}
        common = set.intersection(*(set(g) for g in grids.values())) if grids else set()
        step = max(common) if common else None
        pictures = {r.id: _decoded(grids[r.id][step]) for r in runs} if step is not None else {}
        deliver(self, self.show, runs, configs, series, step, pictures)

    def show(self, runs, configs, series, step, pictures) -> None:
        self.query_one("#compare-loading", Label).display = False
        diff = self.query_one("#diff", DataTable)
        diff.add_columns("option", *[Text(f"run {r.id} {r.name}") for r in runs])
        keys = varying_params(configs)
        for k in keys:
            diff.add_row(Text(k), *[Text(json.dumps(c.get(k))) for c in configs])
        if not keys:
            diff.add_row("(identical configs)", *["" for _ in runs])
        shared = set.intersection(*(set(s) for s in series.values())) if series else set()
        holder = self.query_one("#compare-plots", Grid)
        for key in sorted(shared):
            plot = PlotextPlot(classes="plot")
            holder.mount(plot)
            plot.plt.title(key)
            for r in runs:
                xs, ys = thin(*series[r.id][key])
                plot.plt.plot(xs, ys, label=f"run {r.id}", marker="braille")
        images = self.query_one("#compare-images", Horizontal)
        if step is None:
            self.query_one("#grid-step", Label).update("no sample grid at a step all these runs share")
            return
        self.query_one("#grid-step", Label).update(f"[b]sample grids at step {step}[/b]")
        for r in runs:
            box = Vertical()
            images.mount(box)
            box.mount(Label(Text(f"run {r.id} {r.name}")))
            picture = pictures[r.id]
            box.mount(Picture(picture, fit=self.fit) if not isinstance(picture, str) else Label(Text(picture)))

    def action_toggle_fit(self) -> None:
        self.fit = not self.fit
        for picture in self.query(Picture):
            picture.set_fit(self.fit)


def _decoded(path: str):
    """The grid's pixels (decoded here, in the worker), or why it cannot be shown."""
    try:
        return read_image(path)
    except UnreadableImage as e:
        return f"cannot show {path}: {e}"
