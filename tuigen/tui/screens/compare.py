"""Compare two or more runs: what differs in their configs, overlaid curves, and their
sample grids side by side at the same step."""
from __future__ import annotations

import json
from collections import defaultdict

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Static
from textual_plotext import PlotextPlot

from ...reports.leaderboard import varying_params
from ..delivery import deliver
from ..widgets.picture import picture_class
from .run_detail import thin


class CompareScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_ids: list[int]):
        super().__init__()
        self.run_ids = run_ids

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"comparing runs {', '.join(map(str, self.run_ids))}", id="compare-header")
        with VerticalScroll():
            yield Label("[b]config: only what differs[/b]")
            yield DataTable(id="diff", show_cursor=False)
            yield Grid(classes="plots", id="compare-plots")
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
            for p in store.metrics(r.id):
                xs, ys = series[r.id][p.key]
                xs.append(p.step)
                ys.append(p.value)
        grids = {r.id: {a.step: a.path for a in store.artifacts(r.id, kind="image", key="samples")} for r in runs}
        deliver(self, self.show, runs, configs, series, grids)

    def show(self, runs, configs, series, grids) -> None:
        diff = self.query_one("#diff", DataTable)
        diff.add_columns("option", *[f"run {r.id} {r.name}" for r in runs])
        keys = varying_params(configs)
        for k in keys:
            diff.add_row(k, *[json.dumps(c.get(k)) for c in configs])
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
        common = set.intersection(*(set(g) for g in grids.values())) if grids else set()
        step = max(common) if common else None
        images = self.query_one("#compare-images", Horizontal)
        if step is None:
            self.query_one("#grid-step", Label).update("no sample grid at a step all these runs share")
            return
        self.query_one("#grid-step", Label).update(f"[b]sample grids at step {step}[/b]")
        for r in runs:
            box = Vertical()
            images.mount(box)
            box.mount(Label(f"run {r.id} {r.name}"))
            box.mount(picture_class()(grids[r.id][step]))
